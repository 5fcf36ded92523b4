// AVX-512 kernels for HNSW's half-precision storage (see hnsw_f16_impl.h).
#include <immintrin.h>

#include "hnsw/hnsw.h"

namespace annvil {
namespace {

struct H {
  using reg = __m512;
  static constexpr size_t W = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg loadf(const float* p) { return _mm512_loadu_ps(p); }
  static reg loadh(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void storef(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static float reduce(reg v) { return _mm512_reduce_add_ps(v); }
  static float half_to_float(uint16_t h) { return _cvtsh_ss(h); }
  static uint16_t float_to_half(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
  static bool encode_block(const float* x, uint16_t* out) {
    reg v = _mm512_loadu_ps(x);
    __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (_mm512_cmp_ps_mask(_mm512_cvtph_ps(h), v, _CMP_EQ_OQ) != 0xFFFF) return false;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), h);
    return true;
  }
};

#include "hnsw/hnsw_f16_impl.h"

}  // namespace

const HnswF16Kernels& hnsw_f16_kernels_avx512() {
  static const HnswF16Kernels k = make_kernels();
  return k;
}

}  // namespace annvil
