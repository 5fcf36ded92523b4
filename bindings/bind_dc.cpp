// Bindings of Faiss's DistanceComputer (index.get_distance_computer()).
#include "common.h"
#include "distances/distance_computer.h"

namespace annvil_py {

using namespace annvil;

namespace {

// Holds the index alive and runs every call under its read lock.
struct PyDistanceComputer {
  std::shared_ptr<Index> index;
  std::unique_ptr<DistanceComputer> dc;
  void need_query() const {
    if (!dc->has_query) ANNVIL_THROW(value, "call set_query(x) before computing distances");
  }
};

}  // namespace

void init_distance_computer(py::module_& m) {
  py::class_<PyDistanceComputer>(m, "DistanceComputer",
                                 "Faiss's DistanceComputer: distances from one query to stored vectors, "
                                 "computed as the index's search computes them")
      .def(
          "set_query",
          [](PyDistanceComputer& s, const py::array_t<float, py::array::c_style | py::array::forcecast>& x) {
            if (x.size() != s.index->d)
              ANNVIL_THROW(value, "set_query: expected ", s.index->d, " floats, got ", x.size());
            const float* p = x.data();
            reading(*s.index, [&] { s.dc->set_query(p); });
          },
          py::arg("x"))
      .def(
          "__call__",
          [](PyDistanceComputer& s, int64_t i) {
            s.need_query();
            return reading(*s.index, [&] { return (*s.dc)(i); });
          },
          py::arg("i"))
      .def(
          "symmetric_dis",
          [](PyDistanceComputer& s, int64_t i, int64_t j) {
            return reading(*s.index, [&] { return s.dc->symmetric_dis(i, j); });
          },
          py::arg("i"), py::arg("j"));
  m.def(
      "_get_distance_computer",
      [](const std::shared_ptr<Index>& index) {
        auto dc = reading(*index, [&] { return make_distance_computer(*index); });
        return PyDistanceComputer{index, std::move(dc)};
      },
      py::arg("index"));
}

}  // namespace annvil_py
