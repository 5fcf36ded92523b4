// GPU hook: reports whether the CUDA kernels were built and how many devices
// the runtime sees.  Without a CUDA build, get_num_gpus() is 0.
#include "common.h"

#ifdef ANNVIL_HAVE_CUDA
#include "gpu_runtime.h"
#endif

namespace annvil_py {

void init_gpu(py::module_& m) {
#ifdef ANNVIL_HAVE_CUDA
  m.attr("HAVE_CUDA") = true;
  m.def("get_num_gpus", [] { return annvil::gpu::device_count(); });
#else
  m.attr("HAVE_CUDA") = false;
  m.def("get_num_gpus", [] { return 0; });
#endif
}

}  // namespace annvil_py
