// Scalar-quantizer distance kernels, AVX-512 (this file alone gets -mavx512*).
// Bytes are widened to 16 int32 lanes and converted to float; halves through
// vcvtph2ps; tails use masked loads, so no scalar remainder loop.
#include <immintrin.h>

#include "sq.h"

namespace annvil {
namespace {

inline __m512 u8x16(const uint8_t* c) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c))));
}
inline __m512 u8x16_partial(const uint8_t* c, size_t n) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(__mmask16((1u << n) - 1), c)));
}
inline __m512 h16(const uint16_t* h) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h))); }
inline __m512 h16_partial(const uint16_t* h, size_t n) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(__mmask16((1u << n) - 1), h));
}
inline __m512 f16_partial(const float* p, size_t n) { return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p); }

float u8_dot(const float* a, const uint8_t* c, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), u8x16(c + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), u8x16(c + i + 16), s1);
  }
  if (i + 16 <= d) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), u8x16(c + i), s0);
    i += 16;
  }
  if (i < d) s1 = _mm512_fmadd_ps(f16_partial(a + i, d - i), u8x16_partial(c + i, d - i), s1);
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float u8_l2(const float* a, const float* b, const uint8_t* c, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m512 t0 = _mm512_fnmadd_ps(_mm512_loadu_ps(b + i), u8x16(c + i), _mm512_loadu_ps(a + i));
    __m512 t1 = _mm512_fnmadd_ps(_mm512_loadu_ps(b + i + 16), u8x16(c + i + 16), _mm512_loadu_ps(a + i + 16));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
  }
  if (i + 16 <= d) {
    __m512 t0 = _mm512_fnmadd_ps(_mm512_loadu_ps(b + i), u8x16(c + i), _mm512_loadu_ps(a + i));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    i += 16;
  }
  if (i < d) {
    size_t r = d - i;
    __m512 t = _mm512_fnmadd_ps(f16_partial(b + i, r), u8x16_partial(c + i, r), f16_partial(a + i, r));
    s1 = _mm512_fmadd_ps(t, t, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float f16_dot(const float* q, const uint16_t* h, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), h16(h + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), h16(h + i + 16), s1);
  }
  if (i + 16 <= d) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), h16(h + i), s0);
    i += 16;
  }
  if (i < d) s1 = _mm512_fmadd_ps(f16_partial(q + i, d - i), h16_partial(h + i, d - i), s1);
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float f16_l2(const float* q, const uint16_t* h, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), h16(h + i));
    __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), h16(h + i + 16));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
  }
  if (i + 16 <= d) {
    __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), h16(h + i));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    i += 16;
  }
  if (i < d) {
    __m512 t = _mm512_sub_ps(f16_partial(q + i, d - i), h16_partial(h + i, d - i));
    s1 = _mm512_fmadd_ps(t, t, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

}  // namespace

const SQKernels& detail::sq_kernels_avx512() {
  static const SQKernels k{u8_dot, u8_l2, f16_dot, f16_l2};
  return k;
}

}  // namespace annvil
