// Scalar-quantizer distance kernels, AVX-512 (this file alone gets -mavx512*).
// Bytes are widened to 16 int32 lanes and converted to float; halves through
// vcvtph2ps; tails use masked loads, so no scalar remainder loop.
#include <immintrin.h>

#include "quant/sq.h"

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

// Four codes per pass: one accumulator per code (independent FMA chains),
// each query chunk loaded once for the four.  `Load(ptr, p, rem)` widens 16
// components of a code starting at component p (rem < 16: masked tail).
template <bool L2, class Load>
void ny4(const float* a, const float* b, const uint8_t* c, size_t stride, size_t d, size_t n, float* out,
         Load load) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint8_t* c0 = c + i * stride;
    const uint8_t* c1 = c0 + stride;
    const uint8_t* c2 = c1 + stride;
    const uint8_t* c3 = c2 + stride;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t p = 0; p < d; p += 16) {
      const size_t r = d - p < 16 ? d - p : 16;
      __m512 av = r == 16 ? _mm512_loadu_ps(a + p) : f16_partial(a + p, r);
      __m512 bv = L2 && b ? (r == 16 ? _mm512_loadu_ps(b + p) : f16_partial(b + p, r)) : av;
      auto step = [&](const uint8_t* cc, __m512& s) {
        __m512 v = load(cc, p, r);
        if (L2) {
          __m512 t = b ? _mm512_fnmadd_ps(bv, v, av) : _mm512_sub_ps(av, v);
          s = _mm512_fmadd_ps(t, t, s);
        } else {
          s = _mm512_fmadd_ps(av, v, s);
        }
      };
      step(c0, s0);
      step(c1, s1);
      step(c2, s2);
      step(c3, s3);
    }
    out[i] = _mm512_reduce_add_ps(s0);
    out[i + 1] = _mm512_reduce_add_ps(s1);
    out[i + 2] = _mm512_reduce_add_ps(s2);
    out[i + 3] = _mm512_reduce_add_ps(s3);
  }
  for (; i < n; ++i) {
    const uint8_t* cc = c + i * stride;
    __m512 s = _mm512_setzero_ps();
    for (size_t p = 0; p < d; p += 16) {
      const size_t r = d - p < 16 ? d - p : 16;
      __m512 av = r == 16 ? _mm512_loadu_ps(a + p) : f16_partial(a + p, r);
      __m512 v = load(cc, p, r);
      if (L2) {
        __m512 t = b ? _mm512_fnmadd_ps(r == 16 ? _mm512_loadu_ps(b + p) : f16_partial(b + p, r), v, av)
                     : _mm512_sub_ps(av, v);
        s = _mm512_fmadd_ps(t, t, s);
      } else {
        s = _mm512_fmadd_ps(av, v, s);
      }
    }
    out[i] = _mm512_reduce_add_ps(s);
  }
}

// functors rather than function pointers, so that the loads inline into ny4
struct LoadU8 {
  __m512 operator()(const uint8_t* c, size_t p, size_t r) const { return r == 16 ? u8x16(c + p) : u8x16_partial(c + p, r); }
};
struct LoadF16 {
  __m512 operator()(const uint8_t* c, size_t p, size_t r) const {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(c);
    return r == 16 ? h16(h + p) : h16_partial(h + p, r);
  }
};

void u8_dot_ny(const float* a, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<false>(a, nullptr, c, stride, d, n, out, LoadU8{});
}
void u8_l2_ny(const float* a, const float* b, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<true>(a, b, c, stride, d, n, out, LoadU8{});
}
void f16_dot_ny(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<false>(q, nullptr, c, stride, d, n, out, LoadF16{});
}
void f16_l2_ny(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<true>(q, nullptr, c, stride, d, n, out, LoadF16{});
}

void u8_decode(const float* a, const float* b, const uint8_t* c, size_t d, float* out) {
  size_t i = 0;
  for (; i + 16 <= d; i += 16)
    _mm512_storeu_ps(out + i, _mm512_fmadd_ps(_mm512_loadu_ps(b + i), u8x16(c + i), _mm512_loadu_ps(a + i)));
  if (i < d) {
    __mmask16 m = __mmask16((1u << (d - i)) - 1);
    _mm512_mask_storeu_ps(out + i, m,
                          _mm512_fmadd_ps(f16_partial(b + i, d - i), u8x16_partial(c + i, d - i), f16_partial(a + i, d - i)));
  }
}

void f16_decode(const float* a, const uint16_t* h, size_t d, float* out) {
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    __m512 v = h16(h + i);
    if (a) v = _mm512_add_ps(v, _mm512_loadu_ps(a + i));
    _mm512_storeu_ps(out + i, v);
  }
  if (i < d) {
    __mmask16 m = __mmask16((1u << (d - i)) - 1);
    __m512 v = h16_partial(h + i, d - i);
    if (a) v = _mm512_add_ps(v, f16_partial(a + i, d - i));
    _mm512_mask_storeu_ps(out + i, m, v);
  }
}

}  // namespace

const SQKernels& detail::sq_kernels_avx512() {
  static const SQKernels k{u8_dot,    u8_l2,    f16_dot,    f16_l2,    u8_dot_ny,
                           u8_l2_ny, f16_dot_ny, f16_l2_ny, u8_decode, f16_decode};
  return k;
}

}  // namespace annvil
