// AVX2 kernels of index_ivf_pq_kernels.h: 8 centroids per register.
#include <immintrin.h>

#include <algorithm>
#include <cfloat>

#include "ivf/index_ivf_pq_kernels.h"

namespace annvil {
namespace detail {

namespace {

constexpr size_t W = 8;

void ip_table(const float* x, const float* ct, size_t M, size_t dsub, size_t ksub, float* out) {
  for (size_t m = 0; m < M; ++m) {
    const float* xm = x + m * dsub;
    const float* C = ct + m * dsub * ksub;
    float* o = out + m * ksub;
    size_t j = 0;
    for (; j + 4 * W <= ksub; j += 4 * W) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (size_t p = 0; p < dsub; ++p) {
        const __m256 xp = _mm256_set1_ps(xm[p]);
        const float* c = C + p * ksub + j;
        a0 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(c), a0);
        a1 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(c + W), a1);
        a2 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(c + 2 * W), a2);
        a3 = _mm256_fmadd_ps(xp, _mm256_loadu_ps(c + 3 * W), a3);
      }
      _mm256_storeu_ps(o + j, a0);
      _mm256_storeu_ps(o + j + W, a1);
      _mm256_storeu_ps(o + j + 2 * W, a2);
      _mm256_storeu_ps(o + j + 3 * W, a3);
    }
    for (; j + W <= ksub; j += W) {
      __m256 a = _mm256_setzero_ps();
      for (size_t p = 0; p < dsub; ++p) a = _mm256_fmadd_ps(_mm256_set1_ps(xm[p]), _mm256_loadu_ps(C + p * ksub + j), a);
      _mm256_storeu_ps(o + j, a);
    }
    for (; j < ksub; ++j) {
      float s = 0;
      for (size_t p = 0; p < dsub; ++p) s += xm[p] * C[p * ksub + j];
      o[j] = s;
    }
  }
}

void madd(size_t n, const float* a, float alpha, const float* b, float* out) {
  const __m256 al = _mm256_set1_ps(alpha);
  size_t i = 0;
  for (; i + W <= n; i += W)
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(al, _mm256_loadu_ps(b + i), _mm256_loadu_ps(a + i)));
  for (; i < n; ++i) out[i] = a[i] + alpha * b[i];
}

void assign(size_t n, const float* x, size_t ldx, const float* ct, const float* cnorms, size_t dsub, size_t k,
            int32_t* labels, float* dis) {
  if (k % W != 0 || dsub > 64) {
    ivfpq_kernels_scalar().assign(n, x, ldx, ct, cnorms, dsub, k, labels, dis);
    return;
  }
  const __m256i step = _mm256_set1_epi32(int(W));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  float xm2[64];
  alignas(32) float bv[W];
  alignas(32) int32_t bi[W];
  for (size_t i = 0; i < n; ++i) {
    const float* xi = x + i * ldx;
    for (size_t p = 0; p < dsub; ++p) xm2[p] = -2.f * xi[p];
    __m256 best = _mm256_set1_ps(FLT_MAX);
    __m256i besti = _mm256_setzero_si256();
    __m256i idx = lane;
    for (size_t j = 0; j < k; j += W) {
      __m256 a0 = _mm256_loadu_ps(cnorms + j);
      for (size_t p = 0; p < dsub; ++p)
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(xm2[p]), _mm256_loadu_ps(ct + p * k + j), a0);
      __m256 c0 = _mm256_cmp_ps(a0, best, _CMP_LT_OQ);
      best = _mm256_blendv_ps(best, a0, c0);
      besti = _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(besti), _mm256_castsi256_ps(idx), c0));
      idx = _mm256_add_epi32(idx, step);
    }
    _mm256_store_ps(bv, best);
    _mm256_store_si256(reinterpret_cast<__m256i*>(bi), besti);
    float mn = bv[0];
    int32_t mi = bi[0];
    for (size_t l = 1; l < W; ++l)
      if (bv[l] < mn || (bv[l] == mn && bi[l] < mi)) {
        mn = bv[l];
        mi = bi[l];
      }
    labels[i] = mi;
    dis[i] = mn;
  }
}

double lut_to_u16(const float* t, size_t M, size_t ksub, uint16_t* out, double* bias) {
  if (ksub % W != 0 || M > 4096) return ivfpq_kernels_scalar().lut_to_u16(t, M, ksub, out, bias);
  float mins[4096];
  alignas(32) float lo8[W], hi8[W];
  double span = 0, b = 0;
  for (size_t m = 0; m < M; ++m) {
    const float* r = t + m * ksub;
    __m256 lo = _mm256_loadu_ps(r), hi = lo;
    for (size_t j = W; j < ksub; j += W) {
      const __m256 v = _mm256_loadu_ps(r + j);
      lo = _mm256_min_ps(lo, v);
      hi = _mm256_max_ps(hi, v);
    }
    _mm256_store_ps(lo8, lo);
    _mm256_store_ps(hi8, hi);
    float l = lo8[0], h = hi8[0];
    for (size_t i = 1; i < W; ++i) {
      l = std::min(l, lo8[i]);
      h = std::max(h, hi8[i]);
    }
    mins[m] = l;
    b += l;
    span = std::max(span, double(h) - double(l));
  }
  const double scale = span > 0 ? 65535.0 / span : 1.0;
  const __m256 sc = _mm256_set1_ps(float(scale)), half = _mm256_set1_ps(0.5f), top = _mm256_set1_ps(65535.f),
               zero = _mm256_setzero_ps();
  for (size_t m = 0; m < M; ++m) {
    const __m256 mn = _mm256_set1_ps(mins[m]);
    for (size_t j = 0; j < ksub; j += W) {
      __m256 v = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(t + m * ksub + j), mn), sc, half);
      v = _mm256_min_ps(_mm256_max_ps(v, zero), top);
      __m256i iv = _mm256_cvttps_epi32(v);  // values in [0, 65535]: signed conversion is exact
      __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(iv), _mm256_extracti128_si256(iv, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + m * ksub + j), p);
    }
  }
  *bias = b;
  return scale;
}

}  // namespace

const IVFPQKernels& ivfpq_kernels_avx2() {
  static const IVFPQKernels k{&ip_table, &madd, &assign, &lut_to_u16, nullptr, nullptr};
  return k;
}

}  // namespace detail
}  // namespace annvil
