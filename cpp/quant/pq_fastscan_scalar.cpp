// Fast-scan accumulation, portable (no intrinsics; the scalar level and non-x86 builds): the body of
// quant/pq_fastscan_impl.h over simd/lanes_scalar.h.
#include "simd/lanes_scalar.h"

#include "quant/pq_fastscan_impl.h"
#include "quant/pq_fastscan.h"

namespace annvil {
namespace detail {

const PQ4Kernels& pq4_kernels_scalar() {
  using L = simd::scalar::IntLanes;
  static const PQ4Kernels k{&fastscan::accumulate<L>, &fastscan::accumulate_multi<L>};
  return k;
}

}  // namespace detail
}  // namespace annvil
