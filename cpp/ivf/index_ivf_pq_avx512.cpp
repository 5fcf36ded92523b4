// AVX-512 kernels of index_ivf_pq_kernels.h: 16 centroids per register.
#include <immintrin.h>

#include <cfloat>
#include <algorithm>
#include <climits>
#include <cstring>

#include "ivf/index_ivf_pq_kernels.h"

namespace annvil {
namespace detail {

namespace {

constexpr size_t W = 16;

void ip_table(const float* x, const float* ct, size_t M, size_t dsub, size_t ksub, float* out) {
  for (size_t m = 0; m < M; ++m) {
    const float* xm = x + m * dsub;
    const float* C = ct + m * dsub * ksub;
    float* o = out + m * ksub;
    size_t j = 0;
    for (; j + 4 * W <= ksub; j += 4 * W) {  // four independent FMA chains
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (size_t p = 0; p < dsub; ++p) {
        const __m512 xp = _mm512_set1_ps(xm[p]);
        const float* c = C + p * ksub + j;
        a0 = _mm512_fmadd_ps(xp, _mm512_loadu_ps(c), a0);
        a1 = _mm512_fmadd_ps(xp, _mm512_loadu_ps(c + W), a1);
        a2 = _mm512_fmadd_ps(xp, _mm512_loadu_ps(c + 2 * W), a2);
        a3 = _mm512_fmadd_ps(xp, _mm512_loadu_ps(c + 3 * W), a3);
      }
      _mm512_storeu_ps(o + j, a0);
      _mm512_storeu_ps(o + j + W, a1);
      _mm512_storeu_ps(o + j + 2 * W, a2);
      _mm512_storeu_ps(o + j + 3 * W, a3);
    }
    for (; j + W <= ksub; j += W) {
      __m512 a = _mm512_setzero_ps();
      for (size_t p = 0; p < dsub; ++p) a = _mm512_fmadd_ps(_mm512_set1_ps(xm[p]), _mm512_loadu_ps(C + p * ksub + j), a);
      _mm512_storeu_ps(o + j, a);
    }
    for (; j < ksub; ++j) {
      float s = 0;
      for (size_t p = 0; p < dsub; ++p) s += xm[p] * C[p * ksub + j];
      o[j] = s;
    }
  }
}

void madd(size_t n, const float* a, float alpha, const float* b, float* out) {
  const __m512 al = _mm512_set1_ps(alpha);
  size_t i = 0;
  for (; i + W <= n; i += W)
    _mm512_storeu_ps(out + i, _mm512_fmadd_ps(al, _mm512_loadu_ps(b + i), _mm512_loadu_ps(a + i)));
  for (; i < n; ++i) out[i] = a[i] + alpha * b[i];
}

void assign(size_t n, const float* x, size_t ldx, const float* ct, const float* cnorms, size_t dsub, size_t k,
            int32_t* labels, float* dis) {
  if (k % W != 0 || dsub > 64) {  // tiny codebooks (nbits < 4) or wide sub-spaces: scalar
    ivfpq_kernels_scalar().assign(n, x, ldx, ct, cnorms, dsub, k, labels, dis);
    return;
  }
  const __m512i step = _mm512_set1_epi32(int(W));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  float xm2[64];
  for (size_t i = 0; i < n; ++i) {
    const float* xi = x + i * ldx;
    for (size_t p = 0; p < dsub && p < 64; ++p) xm2[p] = -2.f * xi[p];
    __m512 best = _mm512_set1_ps(FLT_MAX);
    __m512i besti = _mm512_setzero_si512();
    __m512i idx = lane;
    size_t j = 0;
    for (; j + 2 * W <= k; j += 2 * W) {
      __m512 a0 = _mm512_loadu_ps(cnorms + j), a1 = _mm512_loadu_ps(cnorms + j + W);
      for (size_t p = 0; p < dsub; ++p) {
        const __m512 xp = _mm512_set1_ps(xm2[p]);
        a0 = _mm512_fmadd_ps(xp, _mm512_loadu_ps(ct + p * k + j), a0);
        a1 = _mm512_fmadd_ps(xp, _mm512_loadu_ps(ct + p * k + j + W), a1);
      }
      __mmask16 c0 = _mm512_cmp_ps_mask(a0, best, _CMP_LT_OQ);
      best = _mm512_mask_mov_ps(best, c0, a0);
      besti = _mm512_mask_mov_epi32(besti, c0, idx);
      idx = _mm512_add_epi32(idx, step);
      __mmask16 c1 = _mm512_cmp_ps_mask(a1, best, _CMP_LT_OQ);
      best = _mm512_mask_mov_ps(best, c1, a1);
      besti = _mm512_mask_mov_epi32(besti, c1, idx);
      idx = _mm512_add_epi32(idx, step);
    }
    for (; j < k; j += W) {
      __m512 a0 = _mm512_loadu_ps(cnorms + j);
      for (size_t p = 0; p < dsub; ++p)
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(xm2[p]), _mm512_loadu_ps(ct + p * k + j), a0);
      __mmask16 c0 = _mm512_cmp_ps_mask(a0, best, _CMP_LT_OQ);
      best = _mm512_mask_mov_ps(best, c0, a0);
      besti = _mm512_mask_mov_epi32(besti, c0, idx);
      idx = _mm512_add_epi32(idx, step);
    }
    const float mn = _mm512_reduce_min_ps(best);
    const __mmask16 eq = _mm512_cmp_ps_mask(best, _mm512_set1_ps(mn), _CMP_EQ_OQ);
    const int bi = _mm512_mask_reduce_min_epi32(eq, besti);
    labels[i] = eq ? bi : 0;
    dis[i] = mn;
  }
}

double lut_to_u16(const float* t, size_t M, size_t ksub, uint16_t* out, double* bias) {
  if (ksub % W != 0 || M > 4096) return ivfpq_kernels_scalar().lut_to_u16(t, M, ksub, out, bias);
  float mins[4096];
  double span = 0, b = 0;
  for (size_t m = 0; m < M; ++m) {
    const float* r = t + m * ksub;
    __m512 lo = _mm512_loadu_ps(r), hi = lo;
    for (size_t j = W; j < ksub; j += W) {
      const __m512 v = _mm512_loadu_ps(r + j);
      lo = _mm512_min_ps(lo, v);
      hi = _mm512_max_ps(hi, v);
    }
    mins[m] = _mm512_reduce_min_ps(lo);
    b += mins[m];
    span = std::max(span, double(_mm512_reduce_max_ps(hi)) - double(mins[m]));
  }
  const double scale = span > 0 ? 65535.0 / span : 1.0;
  const __m512 sc = _mm512_set1_ps(float(scale)), half = _mm512_set1_ps(0.5f), top = _mm512_set1_ps(65535.f),
               zero = _mm512_setzero_ps();
  for (size_t m = 0; m < M; ++m) {
    const __m512 mn = _mm512_set1_ps(mins[m]);
    for (size_t j = 0; j < ksub; j += W) {
      __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(t + m * ksub + j), mn), sc, half);
      v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + m * ksub + j),
                          _mm512_cvtusepi32_epi16(_mm512_cvttps_epu32(v)));
    }
  }
  *bias = b;
  return scale;
}

// 16 sub-quantizers per gather: their code bytes widened to 32-bit indices
// into the 16 table rows, one masked 16-bit read each.
void sums_u16(const uint8_t* codes, size_t n, size_t M, const uint16_t* lut, uint32_t* out) {
  const __m512i lane256 = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(256));
  const __m512i low16 = _mm512_set1_epi32(0xffff);
  const size_t ng = M / 16;
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const uint8_t* c0 = codes + i * M;
    const uint8_t* c1 = c0 + M;
    _mm_prefetch(reinterpret_cast<const char*>(c0 + 8 * M), _MM_HINT_T0);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0;
    __m512i off = lane256;
    for (size_t g = 0; g < ng; ++g) {
      __m512i i0 = _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c0 + 16 * g))), off);
      __m512i i1 = _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c1 + 16 * g))), off);
      a0 = _mm512_add_epi32(a0, _mm512_and_si512(_mm512_i32gather_epi32(i0, lut, 2), low16));
      a1 = _mm512_add_epi32(a1, _mm512_and_si512(_mm512_i32gather_epi32(i1, lut, 2), low16));
      off = _mm512_add_epi32(off, _mm512_set1_epi32(16 * 256));
    }
    out[i] = uint32_t(_mm512_reduce_add_epi32(a0));
    out[i + 1] = uint32_t(_mm512_reduce_add_epi32(a1));
  }
  for (; i < n; ++i) {
    const uint8_t* c0 = codes + i * M;
    __m512i a0 = _mm512_setzero_si512();
    __m512i off = lane256;
    for (size_t g = 0; g < ng; ++g) {
      __m512i i0 = _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c0 + 16 * g))), off);
      a0 = _mm512_add_epi32(a0, _mm512_and_si512(_mm512_i32gather_epi32(i0, lut, 2), low16));
      off = _mm512_add_epi32(off, _mm512_set1_epi32(16 * 256));
    }
    out[i] = uint32_t(_mm512_reduce_add_epi32(a0));
  }
}

void lut_to_u8(const float* t, size_t M, uint8_t* out, float* scale, float* bias) {
  float mins[4096];
  if (M > 4096) M = 4096;  // callers keep M small (fast-scan M <= d)
  double max_span = 0, sum_span = 0, b = 0;
  for (size_t m = 0; m < M; ++m) {
    const __m512 v = _mm512_loadu_ps(t + 16 * m);
    const float lo = _mm512_reduce_min_ps(v), hi = _mm512_reduce_max_ps(v);
    mins[m] = lo;
    b += lo;
    max_span = std::max(max_span, double(hi - lo));
    sum_span += double(hi - lo);
  }
  double sc = max_span > 0 ? 255.0 / max_span : 1.0;
  if (sum_span * sc > 65535.0) sc = 65535.0 / sum_span;
  const __m512 s = _mm512_set1_ps(float(sc)), top = _mm512_set1_ps(255.f), zero = _mm512_setzero_ps();
  for (size_t m = 0; m < M; ++m) {
    __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(t + 16 * m), _mm512_set1_ps(mins[m])), s);
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * m), _mm512_cvtusepi32_epi8(_mm512_cvttps_epu32(v)));
  }
  if (M & 1) std::memset(out + 16 * M, 0, 16);
  *scale = float(sc);
  *bias = float(b);
}

}  // namespace

const IVFPQKernels& ivfpq_kernels_avx512() {
  static const IVFPQKernels k{&ip_table, &madd, &assign, &lut_to_u16, &sums_u16, &lut_to_u8};
  return k;
}

}  // namespace detail
}  // namespace annvil
