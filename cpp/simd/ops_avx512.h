// AVX-512 (F, BW, DQ, VL) + FMA + F16C vector ops (16 float lanes), the same
// names as ops_scalar.h.  Include only from translation units compiled with
// those flags (the *_avx512.cpp files; CMakeLists.txt sets them).  Tails use
// the mask registers (masked loads and stores, no read past the end).  The
// integer lanes of the 4-bit LUT kernels are in lanes_avx512.h.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "simd/ops_avx2.h"  // X86Lane (this file's flags include AVX2's)

namespace annvil {
namespace simd {
namespace avx512 {
namespace {

struct V : avx2::X86Lane {  // half_to_float, float_to_half_exact, popcount64
  using reg = __m512;
  using ireg = __m512i;
  static constexpr int W = 16;
  static __mmask16 lane_mask(size_t n) { return __mmask16((1u << n) - 1); }  // lanes < n (n <= 16)
  // float lanes
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_load_ps(p); }
  static reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static reg load_partial(const float* p, size_t n) { return _mm512_maskz_loadu_ps(lane_mask(n), p); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static void store(float* p, reg v) { _mm512_store_ps(p, v); }
  static void storeu(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static void store_partial(float* p, reg v, size_t n) { _mm512_mask_storeu_ps(p, lane_mask(n), v); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }    // a * b + c
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a * b
  static reg abs(reg a) { return _mm512_abs_ps(a); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static float reduce(reg v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(reg v) { return _mm512_reduce_max_ps(v); }
  static float reduce_min(reg v) { return _mm512_reduce_min_ps(v); }
  // truncated to uint16; lanes must lie in [0, 65535]
  static void store_u16(uint16_t* p, reg v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtusepi32_epi16(_mm512_cvttps_epu32(v)));
  }
  static uint32_t lt_mask(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static ireg iset1(int v) { return _mm512_set1_epi32(v); }
  static void istoreu(int32_t* p, ireg v) { _mm512_storeu_si512(p, v); }
  static ireg iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static ireg iadd(ireg a, ireg b) { return _mm512_add_epi32(a, b); }
  // best = min(best, cand) lane-wise (strict: ties keep best), idx follows
  static void update_min(reg& best, ireg& idx, reg cand, ireg cidx) {
    __mmask16 m = _mm512_cmp_ps_mask(cand, best, _CMP_LT_OQ);
    best = _mm512_mask_blend_ps(m, best, cand);
    idx = _mm512_mask_blend_epi32(m, idx, cidx);
  }
  // widening loads: 16 bytes / 16 halves to floats
  static reg loadu8(const uint8_t* c) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c))));
  }
  static reg loadu8_partial(const uint8_t* c, size_t n) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lane_mask(n), c)));
  }
  static reg loadh(const uint16_t* h) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
  }
  static reg loadh_partial(const uint16_t* h, size_t n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lane_mask(n), h));
  }
  // W floats to halves; false (out untouched) unless every one is exact
  static bool store_half_exact(const float* x, uint16_t* out) {
    reg v = _mm512_loadu_ps(x);
    __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (_mm512_cmp_ps_mask(_mm512_cvtph_ps(h), v, _CMP_EQ_OQ) != 0xFFFF) return false;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), h);
    return true;
  }
};

}  // namespace
}  // namespace avx512
}  // namespace simd
}  // namespace annvil
