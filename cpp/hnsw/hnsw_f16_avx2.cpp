// AVX2 + F16C kernels for HNSW's half-precision storage (see hnsw_f16_impl.h).
#include <immintrin.h>

#include "hnsw/hnsw.h"

namespace annvil {
namespace {

struct H {
  using reg = __m256;
  static constexpr size_t W = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg loadf(const float* p) { return _mm256_loadu_ps(p); }
  static reg loadh(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void storef(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static float reduce(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
  static float half_to_float(uint16_t h) { return _cvtsh_ss(h); }
  static uint16_t float_to_half(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
  static bool encode_block(const float* x, uint16_t* out) {
    reg v = _mm256_loadu_ps(x);
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_cvtph_ps(h), v, _CMP_EQ_OQ)) != 0xFF) return false;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), h);
    return true;
  }
};

#include "hnsw/hnsw_f16_impl.h"

}  // namespace

const HnswF16Kernels& hnsw_f16_kernels_avx2() {
  static const HnswF16Kernels k = make_kernels();
  return k;
}

}  // namespace annvil
