// AVX2 + FMA + F16C vector ops (8 float lanes), the same names as
// ops_scalar.h.  Include only from translation units compiled with those
// flags (the *_avx2.cpp files; CMakeLists.txt sets them).  The integer lanes
// of the 4-bit LUT kernels are in lanes_avx2.h.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace annvil {
namespace simd {
namespace avx2 {
namespace {

// The one-lane operations of every x86 level (ops_avx512.h reuses them).
struct X86Lane {
  // one lane of fp16 (F16C)
  static float half_to_float(uint16_t h) { return _cvtsh_ss(h); }
  static bool float_to_half_exact(float f, uint16_t* out) {
    uint16_t h = _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
    if (_cvtsh_ss(h) != f) return false;
    *out = h;
    return true;
  }
  // popcount: the POPCNT instruction (-mpopcnt).  No vector popcount: AVX2
  // has none, and VPOPCNTDQ is not in the AVX-512 set annvil requires.
  static int popcount64(uint64_t v) { return int(_mm_popcnt_u64(v)); }
};

struct V : X86Lane {
  using reg = __m256;
  using ireg = __m256i;
  static constexpr int W = 8;
  // lanes < n set (n <= 8), for the masked loads / stores of a tail
  static __m256i lane_mask(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // float lanes
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_load_ps(p); }
  static reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  // lanes < n are loaded, the rest are zero (no read past p + n)
  static reg load_partial(const float* p, size_t n) { return _mm256_maskload_ps(p, lane_mask(n)); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static void store(float* p, reg v) { _mm256_store_ps(p, v); }
  static void storeu(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static void store_partial(float* p, reg v, size_t n) { _mm256_maskstore_ps(p, lane_mask(n), v); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }    // a * b + c
  static reg fnmadd(reg a, reg b, reg c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a * b
  static reg abs(reg a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), a); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static float reduce(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduce_max(reg v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduce_min(reg v) {
    __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    s = _mm_min_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // truncated to uint16; lanes must lie in [0, 65535] (the signed conversion is then exact)
  static void store_u16(uint16_t* p, reg v) {
    const __m256i iv = _mm256_cvttps_epi32(v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                     _mm_packus_epi32(_mm256_castsi256_si128(iv), _mm256_extracti128_si256(iv, 1)));
  }
  static uint32_t lt_mask(reg a, reg b) { return uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_LT_OQ))); }
  static ireg iset1(int v) { return _mm256_set1_epi32(v); }
  static void istoreu(int32_t* p, ireg v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static ireg iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }  // lane i holds i
  static ireg iadd(ireg a, ireg b) { return _mm256_add_epi32(a, b); }
  // best = min(best, cand) lane-wise (strict: ties keep best), idx follows
  static void update_min(reg& best, ireg& idx, reg cand, ireg cidx) {
    reg m = _mm256_cmp_ps(cand, best, _CMP_LT_OQ);
    best = _mm256_blendv_ps(best, cand, m);
    idx = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(idx), _mm256_castsi256_ps(cidx), m));
  }
  // widening loads: 8 bytes / 8 halves to floats.  AVX2 has no byte- or
  // word-masked load, so the partial forms copy the n valid elements into a
  // zeroed register first (no read past the end of a code).
  static reg u8_to_float(__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)); }
  static reg loadu8(const uint8_t* c) { return u8_to_float(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))); }
  static reg loadu8_partial(const uint8_t* c, size_t n) {
    uint64_t w = 0;
    std::memcpy(&w, c, n);
    return u8_to_float(_mm_cvtsi64_si128(int64_t(w)));
  }
  static reg loadh(const uint16_t* h) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h))); }
  static reg loadh_partial(const uint16_t* h, size_t n) {
    alignas(16) uint16_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, h, 2 * n);
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
  }
  // W floats to halves; false (out untouched) unless every one is exact
  static bool store_half_exact(const float* x, uint16_t* out) {
    reg v = _mm256_loadu_ps(x);
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_cvtph_ps(h), v, _CMP_EQ_OQ)) != 0xFF) return false;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), h);
    return true;
  }
};

}  // namespace
}  // namespace avx2
}  // namespace simd
}  // namespace annvil
