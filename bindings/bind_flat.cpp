// Bindings of IndexFlat and its metric / 1-D variants (index_flat.h).
#include "common.h"
#include "index_flat.h"

namespace annvil_py {

using namespace annvil;

void init_flat(py::module_& m) {
  py::class_<IndexFlat, IndexFlatCodes, std::shared_ptr<IndexFlat>>(m, "IndexFlat", py::dynamic_attr())
      .def(py::init([](int d, int metric) { return std::make_shared<IndexFlat>(d, MetricType(metric)); }), py::arg("d"),
           py::arg("metric") = int(METRIC_L2))
      .def("get_xb",
           [](py::object self) {
             // a read-only view of the stored vectors, (ntotal, d), sharing memory
             const IndexFlat& idx = self.cast<const IndexFlat&>();
             py::array_t<float> a({int64_t(idx.ntotal), int64_t(idx.d)}, idx.get_xb(), self);
             py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
             return a;
           })
      .def_property_readonly("codes",
                             [](py::object self) {
                               // Faiss's IndexFlat.codes: the stored vectors as bytes, (ntotal, 4 d), a read-only view
                               const IndexFlat& idx = self.cast<const IndexFlat&>();
                               py::array_t<uint8_t> a({int64_t(idx.ntotal), int64_t(idx.sa_code_size())},
                                                      reinterpret_cast<const uint8_t*>(idx.get_xb()), self);
                               py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
                               return a;
                             })
      .def("_compute_distance_subset", [](const IndexFlat& self, const FloatArray& x, const IdArray& labels) {
        int64_t n = rows_of(x, self.d, "queries");
        if (labels.ndim() != 2 || labels.shape(0) != n) ANNVIL_THROW(value, "labels must be (n, k)");
        int64_t k = labels.shape(1);
        py::array_t<float> out({n, k});
        float* op = out.mutable_data();
        const float* xp = x.data();
        const int64_t* lp = labels.data();
        reading(self, [&] { self.compute_distance_subset(n, xp, k, lp, op); });
        return out;
      });
  py::class_<IndexFlatL2, IndexFlat, std::shared_ptr<IndexFlatL2>>(m, "IndexFlatL2", py::dynamic_attr())
      .def(py::init<int>(), py::arg("d"));
  py::class_<IndexFlatIP, IndexFlat, std::shared_ptr<IndexFlatIP>>(m, "IndexFlatIP", py::dynamic_attr())
      .def(py::init<int>(), py::arg("d"));
  py::class_<IndexFlat1D, IndexFlatL2, std::shared_ptr<IndexFlat1D>>(m, "IndexFlat1D", py::dynamic_attr())
      .def(py::init<bool>(), py::arg("continuous_update") = true)
      .def_readwrite("continuous_update", &IndexFlat1D::continuous_update)
      .def("update_permutation", [](IndexFlat1D& self) { writing(self, [&] { self.update_permutation(); }); })
      .def_property_readonly("perm", [](const IndexFlat1D& self) {
        return py::array_t<int64_t>(int64_t(self.perm.size()), self.perm.data());
      });
}

}  // namespace annvil_py
