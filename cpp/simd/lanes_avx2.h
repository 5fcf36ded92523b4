// Integer SIMD lanes, AVX2: one 256-bit register = two 128-bit lanes (the
// vocabulary is described in lanes_scalar.h).  Include only from translation
// units compiled with -mavx2 (the *_avx2.cpp files).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace annvil {
namespace simd {
namespace avx2 {

#include "simd/lanes_x86_128-inl.h"

struct U8x {
  using reg = __m256i;
  static constexpr size_t kBytes = 32;
  static reg load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static reg splat(uint8_t v) { return _mm256_set1_epi8(char(v)); }
  static reg bit_and(reg a, reg b) { return _mm256_and_si256(a, b); }
  static reg shuffle(reg lut, reg idx) { return _mm256_shuffle_epi8(lut, idx); }
};

struct U16x {
  using reg = __m256i;
  static reg zero() { return _mm256_setzero_si256(); }
  static reg add(reg a, reg b) { return _mm256_add_epi16(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_epi16(a, b); }
  template <int S>
  static reg srli(reg a) {
    return _mm256_srli_epi16(a, S);
  }
  template <int S>
  static reg slli(reg a) {
    return _mm256_slli_epi16(a, S);
  }
  // the sum of the two 128-bit lanes
  static U16x8::reg fold(reg v) { return _mm_add_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)); }
};

struct IntLanes {
  using U8 = U8x;
  using U16 = U16x;
  using U16h = U16x8;
  static constexpr size_t kBytes = U8x::kBytes;
  static constexpr int kRegisters = 16;
};

// The float ops of the IVF-PQ table kernels (ivf/index_ivf_pq_kernels-inl.h),
// 8 float / int32 lanes.  Named apart from the float vocabulary of
// ops_avx2.h; they can fold into it.
struct PQF32x {
  using reg = __m256;
  static constexpr size_t kLanes = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg splat(float v) { return _mm256_set1_ps(v); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  // lanes folded left to right with op
  template <class Op>
  static float reduce(reg v, Op op) {
    alignas(32) float t[kLanes];
    _mm256_store_ps(t, v);
    float r = t[0];
    for (size_t i = 1; i < kLanes; ++i) r = op(r, t[i]);
    return r;
  }
  static float reduce_min(reg v) { return reduce(v, [](float a, float b) { return std::min(a, b); }); }
  static float reduce_max(reg v) { return reduce(v, [](float a, float b) { return std::max(a, b); }); }
  // truncated to uint16; lanes must lie in [0, 65535] (the signed conversion is then exact)
  static void store_u16(uint16_t* p, reg v) {
    const __m256i iv = _mm256_cvttps_epi32(v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                     _mm_packus_epi32(_mm256_castsi256_si128(iv), _mm256_extracti128_si256(iv, 1)));
  }
};

struct PQI32x {
  using reg = __m256i;
  static reg zero() { return _mm256_setzero_si256(); }
  static reg splat(int32_t v) { return _mm256_set1_epi32(v); }
  static reg iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
  static reg add(reg a, reg b) { return _mm256_add_epi32(a, b); }
  static void store(int32_t* p, reg v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
};

struct PQFloatLanes {
  using F32 = PQF32x;
  using I32 = PQI32x;
  // lanes where a < best (ordered, quiet): best = a, besti = idx
  static void keep_less(__m256 a, __m256i idx, __m256& best, __m256i& besti) {
    const __m256 c = _mm256_cmp_ps(a, best, _CMP_LT_OQ);
    best = _mm256_blendv_ps(best, a, c);
    besti = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(besti), _mm256_castsi256_ps(idx), c));
  }
};

}  // namespace avx2
}  // namespace simd
}  // namespace annvil
