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

#include "simd/lanes_x86_128_impl.h"

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

}  // namespace avx2
}  // namespace simd
}  // namespace annvil
