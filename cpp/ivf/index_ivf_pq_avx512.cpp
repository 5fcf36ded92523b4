// AVX-512 kernels of index_ivf_pq_kernels.h (16 centroids per register):
// the bodies of ivf/index_ivf_pq_kernels_impl.h over simd/ops_avx512.h, plus
// two kernels only AVX-512 has (the AVX2 table leaves them null): 16-bit code
// sums through 16-lane gathers, and the fast-scan LUT quantiser on one
// 16-float row per register.
#include "simd/ops_avx512.h"

#include <algorithm>
#include <cstring>

#include "ivf/index_ivf_pq_kernels_impl.h"

namespace annvil {
namespace detail {

namespace {

// 16 sub-quantizers per gather: their code bytes widened to 32-bit indices
// into the 16 table rows, one masked 16-bit read each.
void sums_u16(const uint8_t* codes, size_t n, size_t M, const uint16_t* lut, uint32_t* out) {
  const __m512i lane256 = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(256));
  const __m512i low16 = _mm512_set1_epi32(0xffff);
  const size_t ng = M / 16;
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const uint8_t* c0 = codes + i * M;
    const uint8_t* c1 = c0 + M;
    _mm_prefetch(reinterpret_cast<const char*>(c0 + 8 * M), _MM_HINT_T0);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0;
    __m512i off = lane256;
    for (size_t g = 0; g < ng; ++g) {
      __m512i i0 =
          _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c0 + 16 * g))), off);
      __m512i i1 =
          _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c1 + 16 * g))), off);
      a0 = _mm512_add_epi32(a0, _mm512_and_si512(_mm512_i32gather_epi32(i0, lut, 2), low16));
      a1 = _mm512_add_epi32(a1, _mm512_and_si512(_mm512_i32gather_epi32(i1, lut, 2), low16));
      off = _mm512_add_epi32(off, _mm512_set1_epi32(16 * 256));
    }
    out[i] = uint32_t(_mm512_reduce_add_epi32(a0));
    out[i + 1] = uint32_t(_mm512_reduce_add_epi32(a1));
  }
  for (; i < n; ++i) {
    const uint8_t* c0 = codes + i * M;
    __m512i a0 = _mm512_setzero_si512();
    __m512i off = lane256;
    for (size_t g = 0; g < ng; ++g) {
      __m512i i0 =
          _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c0 + 16 * g))), off);
      a0 = _mm512_add_epi32(a0, _mm512_and_si512(_mm512_i32gather_epi32(i0, lut, 2), low16));
      off = _mm512_add_epi32(off, _mm512_set1_epi32(16 * 256));
    }
    out[i] = uint32_t(_mm512_reduce_add_epi32(a0));
  }
}

void lut_to_u8(const float* t, size_t M, uint8_t* out, float* scale, float* bias) {
  float mins[4096];
  if (M > 4096) M = 4096;  // callers keep M small (fast-scan M <= d)
  double max_span = 0, sum_span = 0, b = 0;
  for (size_t m = 0; m < M; ++m) {
    const __m512 v = _mm512_loadu_ps(t + 16 * m);
    const float lo = _mm512_reduce_min_ps(v), hi = _mm512_reduce_max_ps(v);
    mins[m] = lo;
    b += lo;
    max_span = std::max(max_span, double(hi - lo));
    sum_span += double(hi - lo);
  }
  double sc = max_span > 0 ? 255.0 / max_span : 1.0;
  if (sum_span * sc > 65535.0) sc = 65535.0 / sum_span;
  const __m512 s = _mm512_set1_ps(float(sc)), top = _mm512_set1_ps(255.f), zero = _mm512_setzero_ps();
  for (size_t m = 0; m < M; ++m) {
    __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(t + 16 * m), _mm512_set1_ps(mins[m])), s);
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * m), _mm512_cvtusepi32_epi8(_mm512_cvttps_epu32(v)));
  }
  if (M & 1) std::memset(out + 16 * M, 0, 16);
  *scale = float(sc);
  *bias = float(b);
}

}  // namespace

const IVFPQKernels& ivfpq_kernels_avx512() {
  using L = simd::avx512::V;
  static const IVFPQKernels k{&ivfpq::ip_table<L>,   &ivfpq::madd<L>, &ivfpq::assign<L>,
                              &ivfpq::lut_to_u16<L>, &sums_u16,       &lut_to_u8};
  return k;
}

}  // namespace detail
}  // namespace annvil
