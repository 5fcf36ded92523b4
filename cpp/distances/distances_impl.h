// Kernel bodies shared by the SIMD levels, over the vector ops `V`
// (simd/ops_<isa>.h).  Compiled by distances_avx2.cpp and distances_avx512.cpp
// (simd/isa.h), each with its own flags; each defines ANNVIL_PANEL_MR (the
// panel's base rows per block, the one per-ISA tuning: it is bounded by the
// register count) before including this file, which defines
// detail::kernels_<isa>() with the extra metrics of distances_extra_impl.h.
// The scalar reference (distances_scalar.cpp) has its own loops.
//
// Used from `V`: reg, W, zero, load (aligned), loadu, load_partial(p, n), set1,
// add, sub, fmadd(a,b,c)=a*b+c, store, storeu, reduce, lt_mask(a, b) (bitmask
// of lanes a < b), ireg, iset1, istoreu, update_min.
#include <cmath>
#include <limits>
#include <type_traits>

#include "distances/distances.h"
#include "simd/isa.h"

namespace annvil {
namespace {

using V = simd::ANNVIL_ISA::V;
constexpr int NR = 2 * V::W;  // queries per panel: two registers
constexpr int MR = ANNVIL_PANEL_MR;

// ---- one query against one or several rows ---------------------------------
inline float ip_one(const float* x, const float* y, size_t d) {
  typename V::reg a0 = V::zero(), a1 = V::zero();
  size_t p = 0;
  for (; p + 2 * V::W <= d; p += 2 * V::W) {
    a0 = V::fmadd(V::loadu(x + p), V::loadu(y + p), a0);
    a1 = V::fmadd(V::loadu(x + p + V::W), V::loadu(y + p + V::W), a1);
  }
  for (; p + V::W <= d; p += V::W) a0 = V::fmadd(V::loadu(x + p), V::loadu(y + p), a0);
  if (p < d) a1 = V::fmadd(V::load_partial(x + p, d - p), V::load_partial(y + p, d - p), a1);
  return V::reduce(V::add(a0, a1));
}

inline float l2_one(const float* x, const float* y, size_t d) {
  typename V::reg a0 = V::zero(), a1 = V::zero();
  size_t p = 0;
  for (; p + 2 * V::W <= d; p += 2 * V::W) {
    auto t0 = V::sub(V::loadu(x + p), V::loadu(y + p));
    auto t1 = V::sub(V::loadu(x + p + V::W), V::loadu(y + p + V::W));
    a0 = V::fmadd(t0, t0, a0);
    a1 = V::fmadd(t1, t1, a1);
  }
  for (; p + V::W <= d; p += V::W) {
    auto t = V::sub(V::loadu(x + p), V::loadu(y + p));
    a0 = V::fmadd(t, t, a0);
  }
  if (p < d) {
    auto t = V::sub(V::load_partial(x + p, d - p), V::load_partial(y + p, d - p));
    a1 = V::fmadd(t, t, a1);
  }
  return V::reduce(V::add(a0, a1));
}

// Four rows at a time: the query chunk is loaded once for four rows, and four
// independent accumulator chains hide the FMA latency.  Memory-bound by design.
template <bool L2>
inline void ny_kernel(const float* x, const float* y, size_t d, size_t ny, float* out) {
  size_t i = 0;
  for (; i + 4 <= ny; i += 4) {
    const float* y0 = y + i * d;
    const float* y1 = y0 + d;
    const float* y2 = y1 + d;
    const float* y3 = y2 + d;
    typename V::reg a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    size_t p = 0;
    auto step = [&](typename V::reg xv, typename V::reg v0, typename V::reg v1, typename V::reg v2,
                    typename V::reg v3) {
      if (L2) {
        v0 = V::sub(xv, v0);
        v1 = V::sub(xv, v1);
        v2 = V::sub(xv, v2);
        v3 = V::sub(xv, v3);
        a0 = V::fmadd(v0, v0, a0);
        a1 = V::fmadd(v1, v1, a1);
        a2 = V::fmadd(v2, v2, a2);
        a3 = V::fmadd(v3, v3, a3);
      } else {
        a0 = V::fmadd(xv, v0, a0);
        a1 = V::fmadd(xv, v1, a1);
        a2 = V::fmadd(xv, v2, a2);
        a3 = V::fmadd(xv, v3, a3);
      }
    };
    // the next four rows are the next 4d floats: prefetch them a group ahead
    const float* pf = y0 + 8 * d;
    for (; p + V::W <= d; p += V::W) {
      if (i + 12 <= ny) {
        __builtin_prefetch(pf + p);
        __builtin_prefetch(pf + d + p);
        __builtin_prefetch(pf + 2 * d + p);
        __builtin_prefetch(pf + 3 * d + p);
      }
      step(V::loadu(x + p), V::loadu(y0 + p), V::loadu(y1 + p), V::loadu(y2 + p), V::loadu(y3 + p));
    }
    if (p < d) {
      size_t r = d - p;
      step(V::load_partial(x + p, r), V::load_partial(y0 + p, r), V::load_partial(y1 + p, r),
           V::load_partial(y2 + p, r), V::load_partial(y3 + p, r));
    }
    out[i] = V::reduce(a0);
    out[i + 1] = V::reduce(a1);
    out[i + 2] = V::reduce(a2);
    out[i + 3] = V::reduce(a3);
  }
  // the last rows with the same single-chain sum as the four-row groups, so
  // that a row's value does not depend on its position in y (an IVF list
  // split over shards ranks its ties as the whole list did)
  for (; i < ny; ++i) {
    const float* yi = y + i * d;
    typename V::reg a = V::zero();
    size_t p = 0;
    for (; p + V::W <= d; p += V::W) {
      auto xv = V::loadu(x + p), v = V::loadu(yi + p);
      if (L2) {
        v = V::sub(xv, v);
        a = V::fmadd(v, v, a);
      } else {
        a = V::fmadd(xv, v, a);
      }
    }
    if (p < d) {
      size_t r = d - p;
      auto xv = V::load_partial(x + p, r), v = V::load_partial(yi + p, r);
      if (L2) {
        v = V::sub(xv, v);
        a = V::fmadd(v, v, a);
      } else {
        a = V::fmadd(xv, v, a);
      }
    }
    out[i] = V::reduce(a);
  }
}

void l2sqr_ny_simd(const float* x, const float* y, size_t d, size_t ny, float* out) {
  ny_kernel<true>(x, y, d, ny, out);
}
void ip_ny_simd(const float* x, const float* y, size_t d, size_t ny, float* out) { ny_kernel<false>(x, y, d, ny, out); }
void norms_simd(const float* x, size_t d, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = ip_one(x + i * d, x + i * d, d);
}
float l2_simd(const float* x, const float* y, size_t d) { return l2_one(x, y, d); }
float ip_simd(const float* x, const float* y, size_t d) { return ip_one(x, y, d); }

// ---- the panel micro-kernel --------------------------------------------------
// acc[r][h] = <b_r, q_{h*W .. h*W+W-1}>  for R base rows and the NR-wide panel.
// Per dimension step: 2 panel loads, R broadcasts, 2R FMAs; the R x NR block of
// accumulators stays in registers for the whole dimension loop.
template <int R>
inline void micro(const float* panel, size_t d, const float* base, typename V::reg (&acc)[MR][2]) {
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = V::zero();
  const float* rows[MR];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) rows[r] = base + size_t(r) * d;
#pragma GCC unroll 4
  for (size_t p = 0; p < d; ++p) {
    auto q0 = V::load(panel + p * NR);
    auto q1 = V::load(panel + p * NR + V::W);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      auto b = V::set1(rows[r][p]);
      acc[r][0] = V::fmadd(b, q0, acc[r][0]);
      acc[r][1] = V::fmadd(b, q1, acc[r][1]);
    }
  }
}

template <int R>
inline void epilogue_scan(typename V::reg (&acc)[MR][2], const float* bterm, float alpha, int64_t row0,
                          PanelSink* sink) {
  auto va = V::set1(alpha);
  float* thr = sink->thresholds;
  auto t0 = V::load(thr);
  auto t1 = V::load(thr + V::W);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    auto bt = bterm ? V::set1(bterm[r]) : V::zero();
    auto k0 = V::fmadd(va, acc[r][0], bt);
    auto k1 = V::fmadd(va, acc[r][1], bt);
    uint64_t m = uint64_t(V::lt_mask(k0, t0)) | (uint64_t(V::lt_mask(k1, t1)) << V::W);
    if (m) {
      alignas(64) float keys[NR];
      V::store(keys, k0);
      V::store(keys + V::W, k1);
      do {
        int j = __builtin_ctzll(m);
        m &= m - 1;
        if (keys[j] < thr[j]) sink->push(j, keys[j], row0 + r);
      } while (m);
      t0 = V::load(thr);
      t1 = V::load(thr + V::W);
    }
  }
}

template <int R>
inline void block_scan(const float* panel, size_t d, const float* base, const float* bterm, float alpha, int64_t row0,
                       PanelSink* sink) {
  typename V::reg acc[MR][2];
  micro<R>(panel, d, base, acc);
  epilogue_scan<R>(acc, bterm, alpha, row0, sink);
}

// k = 1: running minimum and its local row index per panel column, in registers.
template <int R>
inline void block_top1(const float* panel, size_t d, const float* base, const float* bterm, float alpha, int local0,
                       typename V::reg& b0, typename V::reg& b1, typename V::ireg& i0, typename V::ireg& i1) {
  typename V::reg acc[MR][2];
  micro<R>(panel, d, base, acc);
  auto va = V::set1(alpha);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    auto bt = bterm ? V::set1(bterm[r]) : V::zero();
    auto row = V::iset1(local0 + r);
    V::update_min(b0, i0, V::fmadd(va, acc[r][0], bt), row);
    V::update_min(b1, i1, V::fmadd(va, acc[r][1], bt), row);
  }
}

template <int R>
inline void block_products(const float* panel, size_t d, const float* base, float* out) {
  typename V::reg acc[MR][2];
  micro<R>(panel, d, base, acc);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    V::storeu(out + r * NR, acc[r][0]);
    V::storeu(out + r * NR + V::W, acc[r][1]);
  }
}

// Dispatch a run-time tail length 1..MR-1 to the right template instance.
template <int R, class F>
inline void tail_dispatch(int rem, F&& f) {
  if constexpr (R > 0) {
    if (rem == R) {
      f(std::integral_constant<int, R>{});
      return;
    }
    tail_dispatch<R - 1>(rem, f);
  }
}

void scan_panel_simd(const float* panel, size_t d, const float* base, size_t nb, const float* bterm, float alpha,
                     int64_t row0, PanelSink* sink) {
  size_t i = 0;
  for (; i + MR <= nb; i += MR)
    block_scan<MR>(panel, d, base + i * d, bterm ? bterm + i : nullptr, alpha, row0 + int64_t(i), sink);
  if (i < nb) {
    tail_dispatch<MR - 1>(int(nb - i), [&](auto rc) {
      block_scan<decltype(rc)::value>(panel, d, base + i * d, bterm ? bterm + i : nullptr, alpha, row0 + int64_t(i),
                                      sink);
    });
  }
}

void scan_panel_top1_simd(const float* panel, size_t d, const float* base, size_t nb, const float* bterm, float alpha,
                          int64_t row0, float* best, int64_t* best_row) {
  auto b0 = V::loadu(best), b1 = V::loadu(best + V::W);
  auto i0 = V::iset1(-1), i1 = V::iset1(-1);
  size_t i = 0;
  for (; i + MR <= nb; i += MR)
    block_top1<MR>(panel, d, base + i * d, bterm ? bterm + i : nullptr, alpha, int(i), b0, b1, i0, i1);
  if (i < nb) {
    tail_dispatch<MR - 1>(int(nb - i), [&](auto rc) {
      block_top1<decltype(rc)::value>(panel, d, base + i * d, bterm ? bterm + i : nullptr, alpha, int(i), b0, b1, i0,
                                      i1);
    });
  }
  V::storeu(best, b0);
  V::storeu(best + V::W, b1);
  alignas(64) int32_t idx[NR];
  V::istoreu(idx, i0);
  V::istoreu(idx + V::W, i1);
  for (int j = 0; j < NR; ++j)
    if (idx[j] >= 0) best_row[j] = row0 + idx[j];
}

void panel_products_simd(const float* panel, size_t d, const float* base, size_t nb, float* out) {
  size_t i = 0;
  for (; i + MR <= nb; i += MR) block_products<MR>(panel, d, base + i * d, out + i * NR);
  if (i < nb) {
    tail_dispatch<MR - 1>(int(nb - i),
                          [&](auto rc) { block_products<decltype(rc)::value>(panel, d, base + i * d, out + i * NR); });
  }
}

#include "distances/distances_extra_impl.h"

}  // namespace

const Kernels& detail::ANNVIL_ISA_FN(kernels_)() {
  static const Kernels k{SimdLevel::ANNVIL_ISA,
                         NR,
                         l2_simd,
                         ip_simd,
                         l2sqr_ny_simd,
                         ip_ny_simd,
                         norms_simd,
                         scan_panel_simd,
                         scan_panel_top1_simd,
                         panel_products_simd,
                         ANNVIL_EXTRA_KERNELS};
  return k;
}

}  // namespace annvil
