// Bindings of IndexPreTransform (cpp/index_pretransform.h).
#include "common.h"
#include "index_pretransform.h"

namespace annvil_py {

using namespace annvil;

void init_pretransform(py::module_& m) {
  py::class_<IndexPreTransform, Index, std::shared_ptr<IndexPreTransform>>(m, "IndexPreTransform", py::dynamic_attr())
      .def(py::init<VectorTransformPtr, IndexPtr>(), py::arg("ltrans"), py::arg("index"))
      .def(py::init<IndexPtr>(), py::arg("index"))
      .def_readonly("index", &IndexPreTransform::index)
      .def_property_readonly("_chain", [](const IndexPreTransform& s) { return s.chain; })
      .def("prepend_transform", &IndexPreTransform::prepend_transform, py::arg("ltrans"))
      .def("_apply_chain", [](const IndexPreTransform& self, const FloatArray& x) {
        int64_t n = rows_of(x, self.d, "vectors");
        std::vector<float> out;
        const float* xp = x.data();
        {
          py::gil_scoped_release release;
          out = self.apply_chain(n, xp);
        }
        py::array_t<float> a({n, int64_t(self.index->d)});
        std::copy(out.begin(), out.end(), a.mutable_data());
        return a;
      });
}

}  // namespace annvil_py
