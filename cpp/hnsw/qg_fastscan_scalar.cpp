// Scan of one IndexQG vertex block, portable (no intrinsics; the scalar level and non-x86 builds): the body of
// quant/pq_fastscan_impl.h over simd/lanes_scalar.h.
#include "simd/lanes_scalar.h"

#include "hnsw/index_qg.h"
#include "quant/pq_fastscan_impl.h"

namespace annvil {
namespace detail {

const QGKernels& qg_kernels_scalar() {
  static const QGKernels k{&fastscan::accumulate_blocks<simd::scalar::IntLanes>};
  return k;
}

}  // namespace detail
}  // namespace annvil
