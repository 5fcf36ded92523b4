// U16x8 (8 uint16 lanes, one SSE register) for the x86 lane headers.  No
// include guard and no namespace on purpose: lanes_avx2.h and lanes_avx512.h
// each include it inside their own namespace, so that the inline functions
// of an AVX-512 translation unit and of an AVX2 one are distinct symbols (one
// shared definition compiled under two sets of flags would break the ODR, and
// the linker could hand AVX-512 code to an AVX2-only CPU).  Include
// <immintrin.h> first.

struct U16x8 {
  using reg = __m128i;
  static reg splat(uint16_t v) { return _mm_set1_epi16(short(v)); }
  // (a0, b0, a1, b1, a2, b2, a3, b3) and the same for lanes 4..7
  static reg interleave_lo(reg a, reg b) { return _mm_unpacklo_epi16(a, b); }
  static reg interleave_hi(reg a, reg b) { return _mm_unpackhi_epi16(a, b); }
  static void store(uint16_t* p, reg v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  // bit i set when lane i of (a, b) (a: lanes 0..7, b: 8..15) is <= t's lane:
  // v <= t  <=>  min(v, t) == v  (unsigned), packed to bytes for movemask
  static uint32_t le_mask(reg a, reg b, reg t) {
    const __m128i c0 = _mm_cmpeq_epi16(_mm_min_epu16(a, t), a);
    const __m128i c1 = _mm_cmpeq_epi16(_mm_min_epu16(b, t), b);
    return uint32_t(_mm_movemask_epi8(_mm_packs_epi16(c0, c1)));
  }
};
