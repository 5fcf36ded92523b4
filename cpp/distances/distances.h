// Float32 distance kernels: the one place where SIMD lives for float vectors.
//
// Each instruction set has its own translation unit (distances_scalar.cpp,
// distances_avx2.cpp, distances_avx512.cpp) compiled with its own flags; the
// SIMD ones instantiate one body (distances_impl.h, distances_extra_impl.h)
// over their ops header (simd/ops_<isa>.h).  Each fills a `Kernels` table and
// `kernels()` returns the one chosen at run time (simd/dispatch.h).
//
// The batched kernels use the outer-product ("GEMM micro-kernel") form: a
// *panel* of NR queries is packed dimension-major (panel[p * NR + j] = q_j[p]),
// and MR base rows are read in their natural row-major layout, so an MR x NR
// block of inner products stays in registers while p runs over the dimension.
// Base vectors never need repacking, which is what lets every index (flat
// storage, inverted lists, HNSW neighbourhoods) share the kernel.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/metric.h"
#include "simd/simd.h"

namespace annvil {

// Receives candidates from the panel scan.  `thresholds` holds NR keys: the
// kernel calls push() only for (row, query j) whose key is strictly below
// thresholds[j]; push() may lower thresholds[j].
struct PanelSink {
  float* thresholds = nullptr;
  // k = 1 without a selector: a sink may set these (NR entries each) instead
  // of implementing push(); the driver then calls scan_panel_top1, which keeps
  // the running minimum in registers with no callbacks at all.
  float* best = nullptr;
  int64_t* best_row = nullptr;
  virtual void push(int j, float key, int64_t row) = 0;
  virtual ~PanelSink() = default;
};

// One query row against one base row for an extra metric (metric.h);
// metric_arg is p for METRIC_Lp and ignored otherwise.
using ExtraDistFn = float (*)(const float* x, const float* y, size_t d, float metric_arg);

struct Kernels {
  SimdLevel level;
  int panel_width;  // NR: queries per packed panel

  float (*l2sqr)(const float* x, const float* y, size_t d);
  float (*inner_product)(const float* x, const float* y, size_t d);
  // out[i] = distance(x, y_i) for rows y_i = y + i * d, i < ny
  void (*l2sqr_ny)(const float* x, const float* y, size_t d, size_t ny, float* out);
  void (*inner_product_ny)(const float* x, const float* y, size_t d, size_t ny, float* out);
  // out[i] = |x_i|^2 for n rows of x (n x d)
  void (*norms_sqr)(const float* x, size_t d, size_t n, float* out);

  // For base rows b_i (nb rows of `base`, row stride d) and the packed panel:
  //   key(i, j) = bterm[i] + alpha * <b_i, q_j>      (bterm == nullptr means 0)
  // With bterm = |b|^2, alpha = -2 the key ranks by L2; with no bterm and
  // alpha = -1 it ranks by inner product.  Candidates go to sink->push with
  // row = row0 + i.
  void (*scan_panel)(const float* panel, size_t d, const float* base, size_t nb, const float* bterm, float alpha,
                     int64_t row0, PanelSink* sink);
  // The k = 1 form of scan_panel: best[j] / best_row[j] (NR entries) hold the
  // smallest key so far and its row; ties keep the earlier (smaller) row.
  void (*scan_panel_top1)(const float* panel, size_t d, const float* base, size_t nb, const float* bterm, float alpha,
                          int64_t row0, float* best, int64_t* best_row);
  // out[i * NR + j] = <b_i, q_j> for nb base rows and the packed panel.
  void (*panel_products)(const float* panel, size_t d, const float* base, size_t nb, float* out);
  // the extra metrics, indexed by extra_metric_slot() (distances_extra_impl.h)
  ExtraDistFn extra[kExtraMetrics];
};

const Kernels& kernels();  // the table for simd_level()
const Kernels& kernels_for(SimdLevel level);

// Pack nq (<= NR) query rows (row-major, stride d) into a panel of width NR,
// zero-filling the unused columns.  panel: d * NR floats.
void pack_panel(const float* xq, size_t nq, size_t d, int nr, float* panel);

namespace detail {
const Kernels& kernels_scalar();
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
}  // namespace detail

// The kernel of an extra metric in table K (throws for L2 / inner product).
ExtraDistFn extra_distance_fn(const Kernels& K, MetricType metric);
// out[i] = distance(x, y_i) for ny rows y_i = y + i * d under an extra metric.
void extra_distances_ny(ExtraDistFn fn, float metric_arg, const float* x, const float* y, size_t d, size_t ny,
                        float* out);

// Convenience wrappers over the active table.
inline float l2sqr(const float* x, const float* y, size_t d) { return kernels().l2sqr(x, y, d); }
inline float inner_product(const float* x, const float* y, size_t d) { return kernels().inner_product(x, y, d); }

}  // namespace annvil
