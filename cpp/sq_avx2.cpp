// Scalar-quantizer distance kernels, AVX2 + FMA + F16C (this file alone gets
// those flags).  8 components per step; the remainder (< 8) is scalar.
#include <immintrin.h>

#include "sq.h"

namespace annvil {
namespace {

inline __m256 u8x8(const uint8_t* c) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
}
inline __m256 h8(const uint16_t* h) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h))); }
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float u8_dot(const float* a, const uint8_t* c, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), u8x8(c + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), u8x8(c + i + 8), s1);
  }
  if (i + 8 <= d) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), u8x8(c + i), s0);
    i += 8;
  }
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < d; ++i) s += a[i] * float(c[i]);
  return s;
}

float u8_l2(const float* a, const float* b, const uint8_t* c, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    __m256 t0 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i), u8x8(c + i), _mm256_loadu_ps(a + i));
    __m256 t1 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i + 8), u8x8(c + i + 8), _mm256_loadu_ps(a + i + 8));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
  }
  if (i + 8 <= d) {
    __m256 t0 = _mm256_fnmadd_ps(_mm256_loadu_ps(b + i), u8x8(c + i), _mm256_loadu_ps(a + i));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    i += 8;
  }
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < d; ++i) {
    float t = a[i] - b[i] * float(c[i]);
    s += t * t;
  }
  return s;
}

float f16_dot(const float* q, const uint16_t* h, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), h8(h + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), h8(h + i + 8), s1);
  }
  if (i + 8 <= d) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), h8(h + i), s0);
    i += 8;
  }
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < d; ++i) s += q[i] * half_to_float(h[i]);
  return s;
}

float f16_l2(const float* q, const uint16_t* h, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), h8(h + i));
    __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), h8(h + i + 8));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
  }
  if (i + 8 <= d) {
    __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), h8(h + i));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    i += 8;
  }
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < d; ++i) {
    float t = q[i] - half_to_float(h[i]);
    s += t * t;
  }
  return s;
}

}  // namespace

const SQKernels& detail::sq_kernels_avx2() {
  static const SQKernels k{u8_dot, u8_l2, f16_dot, f16_l2};
  return k;
}

}  // namespace annvil
