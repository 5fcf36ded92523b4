// GPU runtime hooks.  Every CUDA call goes through ANNVIL_CUDA_CHECK or is
// explicitly allowed to fail (device discovery on a machine without a GPU).
#include <cuda_runtime.h>

#include "gpu_runtime.h"

namespace annvil {
namespace gpu {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error: no driver or no device is not an error here
    return 0;
  }
  return n;
}

}  // namespace gpu
}  // namespace annvil
