// Fast-scan accumulation, AVX-512BW (compiled with -mavx512bw): the body of
// quant/pq_fastscan_impl.h over simd/lanes_avx512.h.
#include "simd/lanes_avx512.h"

#include "quant/pq_fastscan_impl.h"
#include "quant/pq_fastscan.h"

namespace annvil {
namespace detail {

const PQ4Kernels& pq4_kernels_avx512() {
  using L = simd::avx512::IntLanes;
  static const PQ4Kernels k{&fastscan::accumulate<L>, &fastscan::accumulate_multi<L>};
  return k;
}

}  // namespace detail
}  // namespace annvil
