#include "core/index.h"
#include "core/parallel.h"

#include <algorithm>
#include <exception>
#include <limits>

#include <vector>

namespace annvil {

const char* metric_name(MetricType m) {
  switch (m) {
    case METRIC_INNER_PRODUCT:
      return "INNER_PRODUCT";
    case METRIC_L2:
      return "L2";
    case METRIC_L1:
      return "L1";
    case METRIC_Linf:
      return "Linf";
    case METRIC_Lp:
      return "Lp";
    case METRIC_Canberra:
      return "Canberra";
    case METRIC_BrayCurtis:
      return "BrayCurtis";
    case METRIC_JensenShannon:
      return "JensenShannon";
    case METRIC_Jaccard:
      return "Jaccard";
    case METRIC_NaNEuclidean:
      return "NaNEuclidean";
    case METRIC_GOWER:
      return "GOWER";
  }
  return "unknown";
}

Index::Index(int d_, MetricType metric, bool extra_metrics) : d(d_), metric_type(metric) {
  ANNVIL_CHECK(d_ > 0, "dimension d must be positive, got ", d_);
  ANNVIL_CHECK(is_known_metric(int(metric)), "unknown metric ", int(metric),
               "; use one of the METRIC_* constants (METRIC_L2 = 1, METRIC_INNER_PRODUCT = 0, ...)");
  ANNVIL_CHECK(extra_metrics || metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT, "metric ", metric_name(metric),
               " (", int(metric),
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

size_t Index::sa_code_size() const {
  ANNVIL_THROW(runtime, "standalone codec (sa_encode / sa_decode) not implemented for ", type_tag());
}

void Index::sa_encode(idx_t, const float*, uint8_t*) const { (void)sa_code_size(); }

void Index::sa_decode(idx_t, const uint8_t*, float*) const { (void)sa_code_size(); }

void Index::add_sa_codes(idx_t, const uint8_t*, const idx_t*) {
  ANNVIL_THROW(runtime, type_tag(), " does not support add_sa_codes");
}

void Index::check_compatible_for_merge(const Index&) const {
  ANNVIL_THROW(runtime, type_tag(), " does not support merge_from");
}

void Index::merge_from(Index& other, idx_t) { check_compatible_for_merge(other); }

void Index::check_same_kind(const Index& other) const {
  ANNVIL_CHECK(&other != this, "cannot merge an index into itself");
  if (other.type_tag() != type_tag())
    ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag(),
                 ": merge_from needs indexes of the same type");
  ANNVIL_CHECK(other.d == d, "cannot merge an index of dimension ", other.d, " into one of dimension ", d);
  ANNVIL_CHECK(other.metric_type == metric_type, "cannot merge an index with metric ", metric_name(other.metric_type),
               " into one with metric ", metric_name(metric_type));
}

void Index::search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                                   const SearchParameters* params) const {
  search(n, x, k, D, I, params);
  const size_t nk = size_t(n) * size_t(k);
  // reconstruct() throws for a label it cannot decode; keep the first error
  // and rethrow it outside the parallel region
  std::exception_ptr err;
  ParallelErrors perr;
#pragma omp parallel for if (nk > 1024)
  for (size_t i = 0; i < nk; ++i) ANNVIL_OMP_TRY(perr) {
      float* out = recons + i * size_t(d);
      if (I[i] < 0) {
        std::fill(out, out + d, std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      try {
        reconstruct(I[i], out);
      } catch (...) {
#pragma omp critical(annvil_search_and_reconstruct)
        if (!err) err = std::current_exception();
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
  if (err) std::rethrow_exception(err);
}

void Index::check_trained() const {
  if (!is_trained) ANNVIL_THROW(not_trained, type_tag(), " is not trained: call train() before add() or search()");
}

void Index::check_k(idx_t k) const { ANNVIL_CHECK(k > 0, "k must be positive, got ", k); }

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
