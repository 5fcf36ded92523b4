// Kernels for HNSW's lossless half-precision vector storage (HnswF16Kernels,
// hnsw.h), written once over the vector ops `V` and compiled by
// hnsw_f16_scalar.cpp, hnsw_f16_avx2.cpp and hnsw_f16_avx512.cpp, each with
// its own flags (simd/isa.h); defines hnsw_f16_kernels_<isa>().  The query-to-stored
// distances (float x half) are not here: they are the SQ table's f16_dot /
// f16_l2 of the same level (sq_impl.h), the tree's one float x half kernel.
// Tails go through the zero-padded partial loads (0 - 0 and 0 * 0 add 0).
#include "hnsw/hnsw.h"
#include "quant/sq.h"
#include "simd/isa.h"

namespace annvil {
namespace {

using V = simd::ANNVIL_ISA::V;

inline float ip_hh(const uint16_t* x, const uint16_t* y, size_t d) {
  typename V::reg a0 = V::zero();
  size_t p = 0;
  for (; p + V::W <= d; p += V::W) a0 = V::fmadd(V::loadh(x + p), V::loadh(y + p), a0);
  if (p < d) a0 = V::fmadd(V::loadh_partial(x + p, d - p), V::loadh_partial(y + p, d - p), a0);
  return V::reduce(a0);
}

inline float l2_hh(const uint16_t* x, const uint16_t* y, size_t d) {
  typename V::reg a0 = V::zero();
  size_t p = 0;
  for (; p + V::W <= d; p += V::W) {
    auto t = V::sub(V::loadh(x + p), V::loadh(y + p));
    a0 = V::fmadd(t, t, a0);
  }
  if (p < d) {
    auto t = V::sub(V::loadh_partial(x + p, d - p), V::loadh_partial(y + p, d - p));
    a0 = V::fmadd(t, t, a0);
  }
  return V::reduce(a0);
}

// Encode n floats as halves; false as soon as one is not exactly
// representable (out is then partially written).
inline bool encode_exact(const float* x, size_t n, uint16_t* out) {
  size_t i = 0;
  for (; i + V::W <= n; i += V::W)
    if (!V::store_half_exact(x + i, out + i)) return false;
  for (; i < n; ++i)
    if (!V::float_to_half_exact(x[i], out + i)) return false;
  return true;
}

inline void decode(const uint16_t* x, size_t n, float* out) {
  size_t i = 0;
  for (; i + V::W <= n; i += V::W) V::storeu(out + i, V::loadh(x + i));
  if (i < n) V::store_partial(out + i, V::loadh_partial(x + i, n - i), n - i);
}

}  // namespace

const HnswF16Kernels& ANNVIL_ISA_FN(hnsw_f16_kernels_)() {
  const SQKernels& sq = detail::ANNVIL_ISA_FN(sq_kernels_)();
  static const HnswF16Kernels k{sq.f16_dot, sq.f16_l2, ip_hh, l2_hh, encode_exact, decode};
  return k;
}

}  // namespace annvil
