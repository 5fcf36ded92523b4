// The float kernels of index_ivf_pq_kernels.h (IP tables, madd, the
// sub-space assignment, the 16-bit LUT copy), written once over the
// float vocabulary of simd/ops_<isa>.h and instantiated by
// index_ivf_pq_avx2.cpp (8 centroids per register) and index_ivf_pq_avx512.cpp
// (16).  Include after one ops header; V is that header's struct V.
//
// The scalar table stays the plain loops of index_ivf_pq.cpp: these bodies
// use FMA, and the scalar level (compiled without -mfma) rounds the products
// separately, so emulating it here would change today's scalar results.
#pragma once
#include <algorithm>
#include <cfloat>
#include <cstddef>
#include <cstdint>

#include "ivf/index_ivf_pq_kernels.h"

namespace annvil {
namespace detail {
namespace ivfpq {

template <class V>
void ip_table(const float* x, const float* ct, size_t M, size_t dsub, size_t ksub, float* out) {
  constexpr size_t W = size_t(V::W);
  for (size_t m = 0; m < M; ++m) {
    const float* xm = x + m * dsub;
    const float* C = ct + m * dsub * ksub;
    float* o = out + m * ksub;
    size_t j = 0;
    for (; j + 4 * W <= ksub; j += 4 * W) {  // four independent FMA chains
      typename V::reg a0 = V::zero(), a1 = a0, a2 = a0, a3 = a0;
      for (size_t p = 0; p < dsub; ++p) {
        const typename V::reg xp = V::set1(xm[p]);
        const float* c = C + p * ksub + j;
        a0 = V::fmadd(xp, V::loadu(c), a0);
        a1 = V::fmadd(xp, V::loadu(c + W), a1);
        a2 = V::fmadd(xp, V::loadu(c + 2 * W), a2);
        a3 = V::fmadd(xp, V::loadu(c + 3 * W), a3);
      }
      V::storeu(o + j, a0);
      V::storeu(o + j + W, a1);
      V::storeu(o + j + 2 * W, a2);
      V::storeu(o + j + 3 * W, a3);
    }
    for (; j + W <= ksub; j += W) {
      typename V::reg a = V::zero();
      for (size_t p = 0; p < dsub; ++p) a = V::fmadd(V::set1(xm[p]), V::loadu(C + p * ksub + j), a);
      V::storeu(o + j, a);
    }
    for (; j < ksub; ++j) {
      float s = 0;
      for (size_t p = 0; p < dsub; ++p) s += xm[p] * C[p * ksub + j];
      o[j] = s;
    }
  }
}

template <class V>
void madd(size_t n, const float* a, float alpha, const float* b, float* out) {
  constexpr size_t W = size_t(V::W);
  const typename V::reg al = V::set1(alpha);
  size_t i = 0;
  for (; i + W <= n; i += W) V::storeu(out + i, V::fmadd(al, V::loadu(b + i), V::loadu(a + i)));
  for (; i < n; ++i) out[i] = a[i] + alpha * b[i];
}

// Each lane keeps the best of the centroids j = lane (mod W), visited in
// increasing j (so a strict < keeps the smallest index of a tie); the lanes
// are then reduced to the smallest value, ties to the smallest index.
template <class V>
void assign(size_t n, const float* x, size_t ldx, const float* ct, const float* cnorms, size_t dsub, size_t k,
            int32_t* labels, float* dis) {
  constexpr size_t W = size_t(V::W);
  if (k % W != 0 || dsub > 64) {  // tiny codebooks (nbits < 4) or wide sub-spaces: scalar
    ivfpq_kernels_scalar().assign(n, x, ldx, ct, cnorms, dsub, k, labels, dis);
    return;
  }
  const typename V::ireg step = V::iset1(int(W));
  float xm2[64];
  alignas(64) float bv[W];
  alignas(64) int32_t bi[W];
  for (size_t i = 0; i < n; ++i) {
    const float* xi = x + i * ldx;
    for (size_t p = 0; p < dsub; ++p) xm2[p] = -2.f * xi[p];
    typename V::reg best = V::set1(FLT_MAX);
    typename V::ireg besti = V::iset1(0), idx = V::iota();
    auto keep = [&](typename V::reg a) __attribute__((always_inline)) {
      V::update_min(best, besti, a, idx);
      idx = V::iadd(idx, step);
    };
    size_t j = 0;
    for (; j + 2 * W <= k; j += 2 * W) {
      typename V::reg a0 = V::loadu(cnorms + j), a1 = V::loadu(cnorms + j + W);
      for (size_t p = 0; p < dsub; ++p) {
        const typename V::reg xp = V::set1(xm2[p]);
        a0 = V::fmadd(xp, V::loadu(ct + p * k + j), a0);
        a1 = V::fmadd(xp, V::loadu(ct + p * k + j + W), a1);
      }
      keep(a0);
      keep(a1);
    }
    for (; j < k; j += W) {
      typename V::reg a0 = V::loadu(cnorms + j);
      for (size_t p = 0; p < dsub; ++p) a0 = V::fmadd(V::set1(xm2[p]), V::loadu(ct + p * k + j), a0);
      keep(a0);
    }
    V::storeu(bv, best);
    V::istoreu(bi, besti);
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

template <class V>
double lut_to_u16(const float* t, size_t M, size_t ksub, uint16_t* out, double* bias) {
  constexpr size_t W = size_t(V::W);
  if (ksub % W != 0 || M > 4096) return ivfpq_kernels_scalar().lut_to_u16(t, M, ksub, out, bias);
  float mins[4096];
  double span = 0, b = 0;
  for (size_t m = 0; m < M; ++m) {
    const float* r = t + m * ksub;
    typename V::reg lo = V::loadu(r), hi = lo;
    for (size_t j = W; j < ksub; j += W) {
      const typename V::reg v = V::loadu(r + j);
      lo = V::min(lo, v);
      hi = V::max(hi, v);
    }
    mins[m] = V::reduce_min(lo);
    b += mins[m];
    span = std::max(span, double(V::reduce_max(hi)) - double(mins[m]));
  }
  const double scale = span > 0 ? 65535.0 / span : 1.0;
  const typename V::reg sc = V::set1(float(scale)), half = V::set1(0.5f), top = V::set1(65535.f), zero = V::zero();
  for (size_t m = 0; m < M; ++m) {
    const typename V::reg mn = V::set1(mins[m]);
    for (size_t j = 0; j < ksub; j += W) {
      typename V::reg v = V::fmadd(V::sub(V::loadu(t + m * ksub + j), mn), sc, half);
      V::store_u16(out + m * ksub + j, V::min(V::max(v, zero), top));
    }
  }
  *bias = b;
  return scale;
}

}  // namespace ivfpq
}  // namespace detail
}  // namespace annvil
