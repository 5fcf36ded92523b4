// Fast-scan accumulation, AVX2 (compiled with -mavx2): the body of
// quant/pq_fastscan_impl.h over simd/lanes_avx2.h.
#include "simd/lanes_avx2.h"

#include "quant/pq_fastscan_impl.h"
#include "quant/pq_fastscan.h"

namespace annvil {
namespace detail {

const PQ4Kernels& pq4_kernels_avx2() {
  using L = simd::avx2::IntLanes;
  static const PQ4Kernels k{&fastscan::accumulate<L>, &fastscan::accumulate_multi<L>};
  return k;
}

}  // namespace detail
}  // namespace annvil
