// Scalar-quantizer distance kernels, AVX2 + FMA + F16C (this file alone gets
// those flags).  8 components per step; the remainder (< 8) is scalar.
#include <immintrin.h>

#include "quant/sq.h"

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

// Four codes per pass (see sq_avx512.cpp); components past the last multiple
// of 8 are finished in scalar code.
template <bool L2, class Load, class Scalar>
void ny4(const float* a, const float* b, const uint8_t* c, size_t stride, size_t d, size_t n, float* out, Load load,
         Scalar comp) {
  const size_t d8 = d & ~size_t(7);
  size_t i = 0;
  auto tail = [&](const uint8_t* cc) {
    float s = 0;
    for (size_t p = d8; p < d; ++p) {
      float v = comp(cc, p);
      if (L2) {
        float t = b ? a[p] - b[p] * v : a[p] - v;
        s += t * t;
      } else {
        s += a[p] * v;
      }
    }
    return s;
  };
  for (; i + 4 <= n; i += 4) {
    const uint8_t* cs[4] = {c + i * stride, c + (i + 1) * stride, c + (i + 2) * stride, c + (i + 3) * stride};
    __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (size_t p = 0; p < d8; p += 8) {
      __m256 av = _mm256_loadu_ps(a + p);
      __m256 bv = L2 && b ? _mm256_loadu_ps(b + p) : av;
      for (int r = 0; r < 4; ++r) {
        __m256 v = load(cs[r], p);
        if (L2) {
          __m256 t = b ? _mm256_fnmadd_ps(bv, v, av) : _mm256_sub_ps(av, v);
          s[r] = _mm256_fmadd_ps(t, t, s[r]);
        } else {
          s[r] = _mm256_fmadd_ps(av, v, s[r]);
        }
      }
    }
    for (int r = 0; r < 4; ++r) out[i + r] = hsum(s[r]) + tail(cs[r]);
  }
  for (; i < n; ++i) {
    const uint8_t* cc = c + i * stride;
    __m256 s = _mm256_setzero_ps();
    for (size_t p = 0; p < d8; p += 8) {
      __m256 av = _mm256_loadu_ps(a + p);
      __m256 v = load(cc, p);
      if (L2) {
        __m256 t = b ? _mm256_fnmadd_ps(_mm256_loadu_ps(b + p), v, av) : _mm256_sub_ps(av, v);
        s = _mm256_fmadd_ps(t, t, s);
      } else {
        s = _mm256_fmadd_ps(av, v, s);
      }
    }
    out[i] = hsum(s) + tail(cc);
  }
}

// functors rather than function pointers, so that the loads inline into ny4
struct LoadU8 {
  __m256 operator()(const uint8_t* c, size_t p) const { return u8x8(c + p); }
};
struct LoadF16 {
  __m256 operator()(const uint8_t* c, size_t p) const { return h8(reinterpret_cast<const uint16_t*>(c) + p); }
};
struct CompU8 {
  float operator()(const uint8_t* c, size_t p) const { return float(c[p]); }
};
struct CompF16 {
  float operator()(const uint8_t* c, size_t p) const { return half_to_float(reinterpret_cast<const uint16_t*>(c)[p]); }
};

void u8_dot_ny(const float* a, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<false>(a, nullptr, c, stride, d, n, out, LoadU8{}, CompU8{});
}
void u8_l2_ny(const float* a, const float* b, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<true>(a, b, c, stride, d, n, out, LoadU8{}, CompU8{});
}
void f16_dot_ny(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<false>(q, nullptr, c, stride, d, n, out, LoadF16{}, CompF16{});
}
void f16_l2_ny(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<true>(q, nullptr, c, stride, d, n, out, LoadF16{}, CompF16{});
}

void u8_decode(const float* a, const float* b, const uint8_t* c, size_t d, float* out) {
  size_t i = 0;
  for (; i + 8 <= d; i += 8)
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(_mm256_loadu_ps(b + i), u8x8(c + i), _mm256_loadu_ps(a + i)));
  for (; i < d; ++i) out[i] = a[i] + b[i] * float(c[i]);
}

void f16_decode(const float* a, const uint16_t* h, size_t d, float* out) {
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    __m256 v = h8(h + i);
    if (a) v = _mm256_add_ps(v, _mm256_loadu_ps(a + i));
    _mm256_storeu_ps(out + i, v);
  }
  for (; i < d; ++i) out[i] = (a ? a[i] : 0.f) + half_to_float(h[i]);
}

}  // namespace

const SQKernels& detail::sq_kernels_avx2() {
  static const SQKernels k{u8_dot,    u8_l2,    f16_dot,    f16_l2,    u8_dot_ny,
                           u8_l2_ny, f16_dot_ny, f16_l2_ny, u8_decode, f16_decode};
  return k;
}

}  // namespace annvil
