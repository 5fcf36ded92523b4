// CUDA-free declarations of the GPU runtime hooks; kernels live in cuda/*.cu.
#pragma once

namespace annvil {
namespace gpu {

// Number of CUDA devices visible (0 when the driver or a device is missing).
int device_count();

}  // namespace gpu
}  // namespace annvil
