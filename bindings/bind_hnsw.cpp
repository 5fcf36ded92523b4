// Bindings of the hnsw family (filled in by its implementation).
#include "common.h"

namespace annvil_py {

void init_hnsw(py::module_& m) { (void)m; }

}  // namespace annvil_py
