// Bindings of the pq family (filled in by its implementation).
#include "common.h"

namespace annvil_py {

void init_pq(py::module_& m) { (void)m; }

}  // namespace annvil_py
