// AVX2 kernels of index_ivf_pq_kernels.h (8 centroids per register): the
// bodies of ivf/index_ivf_pq_kernels_impl.h over simd/ops_avx2.h.  No 16-bit
// code sums and no fast-scan LUT quantiser here (AVX2 has no gather worth it;
// nullptr: the callers' scalar paths).
#include "simd/ops_avx2.h"

#include "ivf/index_ivf_pq_kernels_impl.h"

namespace annvil {
namespace detail {

const IVFPQKernels& ivfpq_kernels_avx2() {
  using L = simd::avx2::V;
  static const IVFPQKernels k{&ivfpq::ip_table<L>,   &ivfpq::madd<L>, &ivfpq::assign<L>,
                              &ivfpq::lut_to_u16<L>, nullptr,         nullptr};
  return k;
}

}  // namespace detail
}  // namespace annvil
