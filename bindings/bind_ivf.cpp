// Bindings of the ivf family (filled in by its implementation).
#include "common.h"

namespace annvil_py {

void init_ivf(py::module_& m) { (void)m; }

}  // namespace annvil_py
