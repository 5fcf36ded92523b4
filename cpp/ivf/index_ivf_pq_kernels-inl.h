// The float kernels of index_ivf_pq_kernels.h (IP tables, madd, the
// sub-space assignment, the 16-bit LUT copy), written once over the
// PQF32x / PQI32x lanes of simd/lanes_<isa>.h and instantiated by
// index_ivf_pq_avx2.cpp (8 centroids per register) and index_ivf_pq_avx512.cpp
// (16).  Include after one lanes header; L is that header's PQFloatLanes.
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

template <class L>
void ip_table(const float* x, const float* ct, size_t M, size_t dsub, size_t ksub, float* out) {
  using F = typename L::F32;
  constexpr size_t W = F::kLanes;
  for (size_t m = 0; m < M; ++m) {
    const float* xm = x + m * dsub;
    const float* C = ct + m * dsub * ksub;
    float* o = out + m * ksub;
    size_t j = 0;
    for (; j + 4 * W <= ksub; j += 4 * W) {  // four independent FMA chains
      typename F::reg a0 = F::zero(), a1 = a0, a2 = a0, a3 = a0;
      for (size_t p = 0; p < dsub; ++p) {
        const typename F::reg xp = F::splat(xm[p]);
        const float* c = C + p * ksub + j;
        a0 = F::fmadd(xp, F::load(c), a0);
        a1 = F::fmadd(xp, F::load(c + W), a1);
        a2 = F::fmadd(xp, F::load(c + 2 * W), a2);
        a3 = F::fmadd(xp, F::load(c + 3 * W), a3);
      }
      F::store(o + j, a0);
      F::store(o + j + W, a1);
      F::store(o + j + 2 * W, a2);
      F::store(o + j + 3 * W, a3);
    }
    for (; j + W <= ksub; j += W) {
      typename F::reg a = F::zero();
      for (size_t p = 0; p < dsub; ++p) a = F::fmadd(F::splat(xm[p]), F::load(C + p * ksub + j), a);
      F::store(o + j, a);
    }
    for (; j < ksub; ++j) {
      float s = 0;
      for (size_t p = 0; p < dsub; ++p) s += xm[p] * C[p * ksub + j];
      o[j] = s;
    }
  }
}

template <class L>
void madd(size_t n, const float* a, float alpha, const float* b, float* out) {
  using F = typename L::F32;
  constexpr size_t W = F::kLanes;
  const typename F::reg al = F::splat(alpha);
  size_t i = 0;
  for (; i + W <= n; i += W) F::store(out + i, F::fmadd(al, F::load(b + i), F::load(a + i)));
  for (; i < n; ++i) out[i] = a[i] + alpha * b[i];
}

// Each lane keeps the best of the centroids j = lane (mod W), visited in
// increasing j (so a strict < keeps the smallest index of a tie); the lanes
// are then reduced to the smallest value, ties to the smallest index.
template <class L>
void assign(size_t n, const float* x, size_t ldx, const float* ct, const float* cnorms, size_t dsub, size_t k,
            int32_t* labels, float* dis) {
  using F = typename L::F32;
  using I = typename L::I32;
  constexpr size_t W = F::kLanes;
  if (k % W != 0 || dsub > 64) {  // tiny codebooks (nbits < 4) or wide sub-spaces: scalar
    ivfpq_kernels_scalar().assign(n, x, ldx, ct, cnorms, dsub, k, labels, dis);
    return;
  }
  const typename I::reg step = I::splat(int32_t(W));
  float xm2[64];
  alignas(64) float bv[W];
  alignas(64) int32_t bi[W];
  for (size_t i = 0; i < n; ++i) {
    const float* xi = x + i * ldx;
    for (size_t p = 0; p < dsub; ++p) xm2[p] = -2.f * xi[p];
    typename F::reg best = F::splat(FLT_MAX);
    typename I::reg besti = I::zero(), idx = I::iota();
    auto keep = [&](typename F::reg a) __attribute__((always_inline)) {
      L::keep_less(a, idx, best, besti);
      idx = I::add(idx, step);
    };
    size_t j = 0;
    for (; j + 2 * W <= k; j += 2 * W) {
      typename F::reg a0 = F::load(cnorms + j), a1 = F::load(cnorms + j + W);
      for (size_t p = 0; p < dsub; ++p) {
        const typename F::reg xp = F::splat(xm2[p]);
        a0 = F::fmadd(xp, F::load(ct + p * k + j), a0);
        a1 = F::fmadd(xp, F::load(ct + p * k + j + W), a1);
      }
      keep(a0);
      keep(a1);
    }
    for (; j < k; j += W) {
      typename F::reg a0 = F::load(cnorms + j);
      for (size_t p = 0; p < dsub; ++p) a0 = F::fmadd(F::splat(xm2[p]), F::load(ct + p * k + j), a0);
      keep(a0);
    }
    F::store(bv, best);
    I::store(bi, besti);
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

template <class L>
double lut_to_u16(const float* t, size_t M, size_t ksub, uint16_t* out, double* bias) {
  using F = typename L::F32;
  constexpr size_t W = F::kLanes;
  if (ksub % W != 0 || M > 4096) return ivfpq_kernels_scalar().lut_to_u16(t, M, ksub, out, bias);
  float mins[4096];
  double span = 0, b = 0;
  for (size_t m = 0; m < M; ++m) {
    const float* r = t + m * ksub;
    typename F::reg lo = F::load(r), hi = lo;
    for (size_t j = W; j < ksub; j += W) {
      const typename F::reg v = F::load(r + j);
      lo = F::min(lo, v);
      hi = F::max(hi, v);
    }
    mins[m] = F::reduce_min(lo);
    b += mins[m];
    span = std::max(span, double(F::reduce_max(hi)) - double(mins[m]));
  }
  const double scale = span > 0 ? 65535.0 / span : 1.0;
  const typename F::reg sc = F::splat(float(scale)), half = F::splat(0.5f), top = F::splat(65535.f),
                        zero = F::zero();
  for (size_t m = 0; m < M; ++m) {
    const typename F::reg mn = F::splat(mins[m]);
    for (size_t j = 0; j < ksub; j += W) {
      typename F::reg v = F::fmadd(F::sub(F::load(t + m * ksub + j), mn), sc, half);
      F::store_u16(out + m * ksub + j, F::min(F::max(v, zero), top));
    }
  }
  *bias = b;
  return scale;
}

}  // namespace ivfpq
}  // namespace detail
}  // namespace annvil
