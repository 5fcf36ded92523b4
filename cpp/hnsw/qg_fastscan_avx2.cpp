// Scan of one IndexQG vertex block, AVX2 (compiled with -mavx2): the body of
// quant/pq_fastscan_impl.h over simd/lanes_avx2.h.
#include "simd/lanes_avx2.h"

#include "hnsw/index_qg.h"
#include "quant/pq_fastscan_impl.h"

namespace annvil {
namespace detail {

const QGKernels& qg_kernels_avx2() {
  static const QGKernels k{&fastscan::accumulate_blocks<simd::avx2::IntLanes>};
  return k;
}

}  // namespace detail
}  // namespace annvil
