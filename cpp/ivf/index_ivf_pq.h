// IndexIVFPQ: IVF whose lists hold product-quantizer codes of the residuals
// x - centroid (or of x itself when by_residual is false), Faiss semantics.
//
// Search is asymmetric ("ADC"): per query and probed list, a look-up table of
// M * ksub floats turns the distance to a code into M table reads (see pq.h).
// Keys are "smaller is better" (index_ivf.h): L2 distances, or negated inner
// products.  The tables per mode:
//   L2, by_residual, precomputed table (default after training, see below):
//       key = coarse_dis + sum_m (P[list][m][c_m] - 2 <x_m, r_{m,c_m}>)
//   L2, by_residual, no precomputed table:
//       key = sum_m |(x - y_C)_m - r_{m,c_m}|^2     (table of the residual query)
//   IP, by_residual:  key = -(coarse_dis + sum_m <x_m, r_{m,c_m}>)
//   no residual:      key = sum_m |x_m - r_{m,c_m}|^2  or  -sum_m <x_m, r_{m,c_m}>
// In the IP and no-residual modes the table depends on the query only, so it
// is computed once per query and shared by all probed lists.  With the
// precomputed table, sum_m P[list][m][c_m] is query-independent too: it is
// kept per stored vector (list_terms), so that L2 also scans with one table
// per query.
//
// Scanning (nbits = 8): the per-query float table (M * 256 * 4 bytes, as big
// as L1) gets a 16-bit copy; codes are summed in 16 bits (AVX-512 gathers)
// and only those that can beat the current threshold, given a bound on the
// rounding error, are re-scored with the float table, so results are those
// of the float scan.  Large k collects approximate keys and re-scores the
// survivors once at the end (ApproxReservoir, core/topk.h).
//
// IndexIVFPQFastScan (index_ivf_pq_fastscan.h) reuses the training and the
// precomputed table defined here.
#pragma once
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>
#include <mutex>
#include <vector>

#include "core/topk.h"
#include "ivf/index_ivf.h"
#include "quant/pq.h"
#include "quant/pq_tables.h"

namespace annvil {

// ---- pieces shared by IndexIVFPQ and IndexIVFPQFastScan ----------------------------
// Faiss's use_precomputed_table values: -1 never, 0 off (train() switches it
// to 1 when the table fits in max_bytes), 1 on.
constexpr size_t kPrecomputedTableMaxBytes = size_t(1) << 31;

// P[l][m][j] = |r_{m,j}|^2 + 2 <y_C(l)_m, r_{m,j}> for each list l (the
// quantizer's centroid y_C(l)) and PQ centroid r_{m,j}: nlist * M * ksub floats.
void ivfpq_compute_precomputed_table(const Index& quantizer, size_t nlist, const ProductQuantizer& pq,
                                     std::vector<float>& table);

// Train `pq` the way Faiss's IVF-PQ indexes do: at most
// pq.cp.max_points_per_centroid * ksub of the n vectors (a seeded random
// subset), assigned to their list and turned into residuals when by_residual.
void ivfpq_train_pq(const IndexIVF& ivf, idx_t n, const float* x, ProductQuantizer& pq);
// The whole training of an IVF-PQ index: checks, the coarse quantizer through
// IndexIVF::train (with skip_encoder_training set meanwhile), then pq; the
// caller refreshes its derived tables.
void ivfpq_train(IndexIVF& ivf, ProductQuantizer& pq, bool& skip_encoder_training, idx_t n, const float* x);

// A scanner's per-query tables (qtab, ltab: M * ksub each); returns the LUT to
// use: qtab (L2 distances, or negated inner products), or ltab for L2 with
// residuals, which set_list fills per list (qtab then holds <x, r> when the
// precomputed table is used).
const float* ivfpq_query_tables(const ProductQuantizer& pq, const PQCodebooks& cb, const float* q, bool l2,
                                bool residual, bool precomputed, float* qtab, float* ltab);
// Codes of n vectors for an IVF index with this pq: residuals to the lists'
// centroids when ivf.by_residual; entries with list_nos[i] < 0 get zero codes.
void ivfpq_encode(const IndexIVF& ivf, const ProductQuantizer& pq, const PQCodebooks& cb, idx_t n, const float* x,
                  const idx_t* list_nos, uint8_t* codes);

// The nprobe nearest lists of n queries (dis, keys: n * nprobe, best first),
// as quantizer.search would give them.  For a flat quantizer the full
// query x centroid matrix is computed with the panel kernels and the nprobe
// best are selected per query (cheaper than heaps of nprobe entries, which
// dominate from nprobe ~48 on); other quantizers (or small nprobe) search.
void ivfpq_coarse_search(const Index& quantizer, size_t nlist, idx_t n, const float* x, size_t nprobe, float* dis,
                         idx_t* keys);
// IndexIVF::search with ivfpq_coarse_search for the coarse level.
void ivfpq_search(const IndexIVF& ivf, idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                  const SearchParameters* params);

// key offset: the coarse term added to a list's table sum (see the header
// comment); 0 when the table already includes it or there is none.
inline float ivfpq_list_bias(MetricType metric, bool by_residual, bool precomputed, float coarse_dis) {
  if (!by_residual) return 0.f;
  if (metric == METRIC_INNER_PRODUCT) return -coarse_dis;
  return precomputed ? coarse_dis : 0.f;
}

// ---- IndexIVFPQ ------------------------------------------------------------------
struct IndexIVFPQ : IndexIVF {
  ProductQuantizer pq;
  int use_precomputed_table = 0;         // see above; set to 1 by train() for L2 + by_residual
  std::vector<float> precomputed_table;  // nlist * M * ksub when use_precomputed_table == 1
  size_t precomputed_table_max_bytes = kPrecomputedTableMaxBytes;
  PQCodebookCache codebooks;  // kernel layout of pq, rebuilt when pq changes
  // With the precomputed table (L2, nbits = 8): for each stored code c of
  // list l, T = sum_m P[l][m][c_m], the query-independent part of its
  // distance (4 bytes per vector), so that a search needs only the per-query
  // table (16-bit screened) instead of building P[l] - 2 <x, r> per probed
  // list.  Kept in step by add / remove / reset / merge_from_pq /
  // precompute_table; a list whose terms are missing (size mismatch, e.g.
  // after IndexIVF::merge_from) is scanned the table way.  Not serialized.
  std::vector<std::vector<float>> list_terms;

  IndexIVFPQ(IndexPtr quantizer, int d, size_t nlist, size_t M, size_t nbits = 8, MetricType metric = METRIC_L2);

  void train(idx_t n, const float* x) override;
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override {
    ivfpq_search(*this, n, x, k, D, I, params);
  }
  // IndexIVF::merge_from, then the terms of the new entries
  void merge_from_pq(IndexIVF& other, idx_t add_id = 0);
  void merge_from(Index& other, idx_t add_id = 0) override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // (re)compute list_terms: all of them, or only for entries added since
  void update_terms(bool all);
  void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
  void decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const override;
  std::unique_ptr<InvertedListScanner> get_scanner() const override;
  bool encoder_needs_training() const override { return !skip_encoder_training_; }
  // query by query: the per-query table is the costly part, computed once per query
  bool use_grouped_search() const override { return false; }
  void search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D,
                          idx_t* I, size_t nprobe, size_t max_codes, const IDSelector* sel) const override;
  using IndexIVF::check_compatible_for_merge;
  void check_compatible_for_merge(const IndexIVF& other) const override;

  // (Re)build or drop the precomputed table according to use_precomputed_table
  // (0 becomes 1 when the mode allows it and the table fits).
  void precompute_table();
  // true when searches use the precomputed table
  bool uses_precomputed_table() const {
    return use_precomputed_table == 1 && by_residual && metric_type == METRIC_L2 && !precomputed_table.empty();
  }

  size_t memory_usage() const override {
    size_t t = 0;
    for (auto& v : list_terms) t += v.capacity() * sizeof(float);
    return IndexIVF::memory_usage() + precomputed_table.capacity() * sizeof(float) +
           pq.centroids.capacity() * sizeof(float) + t;
  }

  std::string type_tag() const override { return "IVFPQ"; }
  void write_payload(Writer& w) const override;

 private:
  bool skip_encoder_training_ = false;  // set while IndexIVF::train trains the coarse level only
};

}  // namespace annvil
