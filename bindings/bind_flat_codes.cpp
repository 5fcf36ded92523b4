// Binding of IndexFlatCodes (index_flat_codes.h), the base of IndexFlat,
// IndexPQ and IndexScalarQuantizer, as Faiss's faiss.IndexFlatCodes: abstract
// (no constructor), so isinstance checks work and the shared attributes live here.
#include "common.h"
#include "index_flat_codes.h"

namespace annvil_py {

using namespace annvil;

void init_flat_codes(py::module_& m) {
  py::class_<IndexFlatCodes, Index, std::shared_ptr<IndexFlatCodes>>(m, "IndexFlatCodes", py::dynamic_attr())
      .def_readonly("code_size", &IndexFlatCodes::code_size)
      .def_property_readonly("codes", [](const IndexFlatCodes& self) {
        // the stored codes, (ntotal, code_size), a copy
        py::array_t<uint8_t> a({int64_t(self.ntotal), int64_t(self.code_size)});
        uint8_t* out = a.mutable_data();
        reading(self, [&] { std::copy(self.codes.data(), self.codes.data() + self.codes.size(), out); });
        return a;
      });
}

}  // namespace annvil_py
