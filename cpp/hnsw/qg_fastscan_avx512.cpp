// Scan of one IndexQG vertex block, AVX-512BW (compiled with -mavx512bw): the body of
// quant/pq_fastscan_impl.h over simd/lanes_avx512.h.
#include "simd/lanes_avx512.h"

#include "hnsw/index_qg.h"
#include "quant/pq_fastscan_impl.h"

namespace annvil {
namespace detail {

const QGKernels& qg_kernels_avx512() {
  static const QGKernels k{&fastscan::accumulate_blocks<simd::avx512::IntLanes>};
  return k;
}

}  // namespace detail
}  // namespace annvil
