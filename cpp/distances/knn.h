// Exact k-NN, range search and distance matrices over row-major float32 data,
// built on the panel kernels of distances.h and the heaps of topk.h.  The full
// distance matrix is never materialised by knn/range: blocks of base rows are
// scanned against packed query panels and candidates go straight to heaps.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/index.h"

namespace annvil {

// D, I: nq * k.  `labels` (nb entries) maps rows to returned ids (identity if
// null); `sel` filters on the label.  Missing results: -1 and missing_result_distance() (+-FLT_MAX, topk.h).
// Every metric of metric.h; metric_arg is p for METRIC_Lp.
void knn_exact(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, size_t k, MetricType metric, float* D,
               idx_t* I, const IDSelector* sel = nullptr, const idx_t* labels = nullptr, float metric_arg = 0.f);

// All base rows within `radius` (distances: dist < radius; similarities
// (inner product, Jaccard): sim > radius).
void range_exact(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, float radius, MetricType metric,
                 RangeSearchResult* result, const IDSelector* sel = nullptr, const idx_t* labels = nullptr,
                 float metric_arg = 0.f);

// out: nq * nb matrix of distances (squared for L2) or similarities.
void pairwise_distances(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, MetricType metric, float* out,
                        float metric_arg = 0.f);

// Squared L2 norms of n rows.
void compute_norms(size_t n, const float* x, size_t d, float* out);

// Index of the first non-finite value in x[0 .. n), or -1.
int64_t find_non_finite(size_t n, const float* x);
// First row of x (n * d finite floats) whose squared L2 norm overflows
// float32 (its distances would be inf), or -1.
int64_t find_norm_overflow(size_t n, const float* x, size_t d);

// Normalise n rows to unit L2 norm in place (zero rows stay zero).
void normalize_rows(size_t n, float* x, size_t d);

}  // namespace annvil
