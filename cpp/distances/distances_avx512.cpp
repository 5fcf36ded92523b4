// AVX-512 kernels (compiled with -mavx512f/bw/dq/vl -mfma only in this file).
#include <immintrin.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "distances/distances.h"

namespace annvil {
namespace {

struct V {
  using reg = __m512;
  static constexpr int W = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_load_ps(p); }
  static reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static reg load_partial(const float* p, size_t n) { return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(float* p, reg v) { _mm512_store_ps(p, v); }
  static void storeu(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static float reduce(reg v) { return _mm512_reduce_add_ps(v); }
  static uint32_t lt_mask(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  static reg abs(reg a) { return _mm512_abs_ps(a); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static float reduce_max(reg v) { return _mm512_reduce_max_ps(v); }
  using ireg = __m512i;
  static ireg iset1(int v) { return _mm512_set1_epi32(v); }
  static void istoreu(int32_t* p, ireg v) { _mm512_storeu_si512(p, v); }
  // best = min(best, cand) lane-wise (strict: ties keep best), idx follows
  static void update_min(reg& best, ireg& idx, reg cand, ireg cidx) {
    __mmask16 m = _mm512_cmp_ps_mask(cand, best, _CMP_LT_OQ);
    best = _mm512_mask_blend_ps(m, best, cand);
    idx = _mm512_mask_blend_epi32(m, idx, cidx);
  }
};
constexpr int NR = 2 * V::W;  // 32 queries per panel
constexpr int MR = 12;        // 24 accumulators + 2 panel registers + 1 broadcast of 32 zmm

#include "distances/distances_impl.h"
#include "distances/distances_extra_impl.h"

}  // namespace

const Kernels& detail::kernels_avx512() {
  static const Kernels k{SimdLevel::avx512, NR,         l2_simd,         ip_simd,           l2sqr_ny_simd,
                         ip_ny_simd,        norms_simd, scan_panel_simd, scan_panel_top1_simd, panel_products_simd,
                         ANNVIL_EXTRA_KERNELS};
  return k;
}

}  // namespace annvil
