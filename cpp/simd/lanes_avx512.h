// Integer SIMD lanes, AVX-512BW: one 512-bit register = four 128-bit lanes,
// i.e. two sub-quantizer pairs of the fast-scan layout per register (the
// vocabulary is described in lanes_scalar.h).  Include only from translation
// units compiled with -mavx512bw (the *_avx512.cpp files).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace annvil {
namespace simd {
namespace avx512 {

#include "simd/lanes_x86_128_impl.h"

struct U8x {
  using reg = __m512i;
  static constexpr size_t kBytes = 64;
  static reg load(const uint8_t* p) { return _mm512_loadu_si512(p); }
  // 32 bytes into the low half, the high half zero: the odd last pair of a
  // fast-scan block (M2 % 4 == 2) without reading past it; a zero LUT half
  // then adds nothing
  static reg load_low_half(const uint8_t* p) {
    return _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static reg splat(uint8_t v) { return _mm512_set1_epi8(char(v)); }
  static reg bit_and(reg a, reg b) { return _mm512_and_si512(a, b); }
  static reg shuffle(reg lut, reg idx) { return _mm512_shuffle_epi8(lut, idx); }
};

struct U16x {
  using reg = __m512i;
  static reg zero() { return _mm512_setzero_si512(); }
  static reg add(reg a, reg b) { return _mm512_add_epi16(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_epi16(a, b); }
  template <int S>
  static reg srli(reg a) {
    return _mm512_srli_epi16(a, S);
  }
  template <int S>
  static reg slli(reg a) {
    return _mm512_slli_epi16(a, S);
  }
  // the sum of the four 128-bit lanes
  static U16x8::reg fold(reg v) {
    const __m256i h = _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    return _mm_add_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  }
};

struct IntLanes {
  using U8 = U8x;
  using U16 = U16x;
  using U16h = U16x8;
  static constexpr size_t kBytes = U8x::kBytes;
  static constexpr int kRegisters = 32;
};

}  // namespace avx512
}  // namespace simd
}  // namespace annvil
