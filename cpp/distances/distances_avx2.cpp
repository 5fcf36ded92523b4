// AVX2 + FMA kernels (compiled with -mavx2 -mfma only in this file).
#include <immintrin.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "distances/distances.h"

namespace annvil {
namespace {

struct V {
  using reg = __m256;
  static constexpr int W = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_load_ps(p); }
  static reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static reg load_partial(const float* p, size_t n) {
    // lanes < n are loaded, the rest are zero
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), idx);
    return _mm256_maskload_ps(p, mask);
  }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, reg v) { _mm256_store_ps(p, v); }
  static void storeu(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static float reduce(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static uint32_t lt_mask(reg a, reg b) { return uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_LT_OQ))); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  static reg abs(reg a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), a); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static float reduce_max(reg v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  using ireg = __m256i;
  static ireg iset1(int v) { return _mm256_set1_epi32(v); }
  static void istoreu(int32_t* p, ireg v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void update_min(reg& best, ireg& idx, reg cand, ireg cidx) {
    reg m = _mm256_cmp_ps(cand, best, _CMP_LT_OQ);
    best = _mm256_blendv_ps(best, cand, m);
    idx = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(idx), _mm256_castsi256_ps(cidx), m));
  }
};
constexpr int NR = 2 * V::W;  // 16 queries per panel
constexpr int MR = 6;         // 12 accumulators + 2 panel registers + 1 broadcast of 16 ymm

#include "distances/distances_impl.h"
#include "distances/distances_extra_impl.h"

}  // namespace

const Kernels& detail::kernels_avx2() {
  static const Kernels k{SimdLevel::avx2, NR,         l2_simd,         ip_simd,           l2sqr_ny_simd,
                         ip_ny_simd,      norms_simd, scan_panel_simd, scan_panel_top1_simd, panel_products_simd,
                         ANNVIL_EXTRA_KERNELS};
  return k;
}

}  // namespace annvil
