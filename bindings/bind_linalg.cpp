// Bindings of the dense linear algebra (cpp/quant/linalg.h): Faiss's matrix_qr.
#include "common.h"
#include "quant/linalg.h"

namespace annvil_py {

using namespace annvil;

void init_linalg(py::module_& m) {
  m.def(
      "matrix_qr",
      [](int m_, int n_, py::array_t<float, py::array::c_style> a) {
        ANNVIL_CHECK(a.size() >= int64_t(m_) * n_, "matrix_qr: the array holds ", a.size(),
                     " values, m*n=", int64_t(m_) * n_, " needed");
        matrix_qr(m_, n_, a.mutable_data());
      },
      py::arg("m"), py::arg("n"), py::arg("a"), "Faiss's matrix_qr: orthonormalise n vectors of m floats in place");
}

}  // namespace annvil_py
