#include "index.h"

#include <algorithm>

#include <vector>

namespace annvil {

const char* metric_name(MetricType m) {
  switch (m) {
    case METRIC_INNER_PRODUCT: return "INNER_PRODUCT";
    case METRIC_L2: return "L2";
    case METRIC_L1: return "L1";
    case METRIC_Linf: return "Linf";
    case METRIC_Lp: return "Lp";
    case METRIC_Canberra: return "Canberra";
    case METRIC_BrayCurtis: return "BrayCurtis";
    case METRIC_JensenShannon: return "JensenShannon";
    case METRIC_Jaccard: return "Jaccard";
    case METRIC_NaNEuclidean: return "NaNEuclidean";
    case METRIC_GOWER: return "GOWER";
  }
  return "unknown";
}

Index::Index(int d_, MetricType metric, bool extra_metrics) : d(d_), metric_type(metric) {
  ANNVIL_CHECK(d_ > 0, "dimension d must be positive, got ", d_);
  ANNVIL_CHECK(is_known_metric(int(metric)), "unknown metric ", int(metric),
               "; use one of the METRIC_* constants (METRIC_L2 = 1, METRIC_INNER_PRODUCT = 0, ...)");
  ANNVIL_CHECK(extra_metrics || metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT, "metric ",
               metric_name(metric), " (", int(metric),
               ") is not supported by this index type; use METRIC_L2 or METRIC_INNER_PRODUCT, or IndexFlat, "
               "IndexIVFFlat or IndexHNSWFlat for the other metrics");
}

void Index::train(idx_t, const float*) {}

void Index::add_with_ids(idx_t, const float*, const idx_t*) {
  ANNVIL_THROW(runtime, type_tag(), " does not support add_with_ids; wrap it in IndexIDMap");
}

void Index::range_search(idx_t, const float*, float, RangeSearchResult*, const SearchParameters*) const {
  ANNVIL_THROW(runtime, type_tag(), " does not support range_search");
}

void Index::reconstruct(idx_t, float*) const { ANNVIL_THROW(runtime, type_tag(), " does not support reconstruct"); }

void Index::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  for (idx_t i = 0; i < ni; ++i) reconstruct(i0 + i, out + size_t(i) * d);
}

size_t Index::remove_ids(const IDSelector&) { ANNVIL_THROW(runtime, type_tag(), " does not support remove_ids"); }

void Index::check_trained() const {
  if (!is_trained) ANNVIL_THROW(not_trained, type_tag(), " is not trained: call train() before add() or search()");
}

void Index::check_k(idx_t k) const {
  ANNVIL_CHECK(k > 0, "k must be positive, got ", k);
}

void fill_range_result(const std::vector<std::vector<std::pair<float, idx_t>>>& hits, bool l2,
                       RangeSearchResult* result) {
  size_t nq = hits.size();
  result->nq = nq;
  result->lims.assign(nq + 1, 0);
  for (size_t q = 0; q < nq; ++q) result->lims[q + 1] = result->lims[q] + hits[q].size();
  result->distances.resize(result->lims[nq]);
  result->labels.resize(result->lims[nq]);
  for (size_t q = 0; q < nq; ++q) {
    size_t o = result->lims[q];
    for (auto& [key, id] : hits[q]) {
      result->distances[o] = l2 ? std::max(0.f, key) : -key;
      result->labels[o++] = id;
    }
  }
}

void fill_range_result(const std::vector<std::vector<std::pair<float, idx_t>>>& hits, MetricType metric,
                       RangeSearchResult* result) {
  if (metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT) {
    fill_range_result(hits, metric == METRIC_L2, result);
    return;
  }
  const bool sim = is_similarity_metric(metric);
  size_t nq = hits.size();
  result->nq = nq;
  result->lims.assign(nq + 1, 0);
  for (size_t q = 0; q < nq; ++q) result->lims[q + 1] = result->lims[q] + hits[q].size();
  result->distances.resize(result->lims[nq]);
  result->labels.resize(result->lims[nq]);
  for (size_t q = 0; q < nq; ++q) {
    size_t o = result->lims[q];
    for (auto& [key, id] : hits[q]) {
      result->distances[o] = sim ? -key : key;
      result->labels[o++] = id;
    }
  }
}

}  // namespace annvil
