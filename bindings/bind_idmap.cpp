#include "common.h"
#include "index_idmap.h"

namespace annvil_py {

using namespace annvil;

void init_idmap(py::module_& m) {
  py::class_<IndexIDMap, Index, std::shared_ptr<IndexIDMap>>(m, "IndexIDMap", py::dynamic_attr())
      .def(py::init<IndexPtr>(), py::arg("index"))
      .def_readonly("index", &IndexIDMap::index)
      .def_property_readonly("id_map", [](const IndexIDMap& self) {
        py::array_t<int64_t> a(int64_t(self.id_map.size()));
        std::copy(self.id_map.begin(), self.id_map.end(), a.mutable_data());
        return a;
      });
  py::class_<IndexIDMap2, IndexIDMap, std::shared_ptr<IndexIDMap2>>(m, "IndexIDMap2", py::dynamic_attr())
      .def(py::init<IndexPtr>(), py::arg("index"))
      .def("construct_rev_map", &IndexIDMap2::construct_rev_map)
      .def("check_consistency", &IndexIDMap2::check_consistency);
}

}  // namespace annvil_py
