// IndexPQ: PQ codes searched with per-query distance tables ("ADC").  Ids
// are positions; remove_ids shifts the later vectors down, as in Faiss
// (IndexFlatCodes).  IndexPQFastScan is in index_pq_fastscan.h.
#pragma once
#include "index_flat_codes.h"
#include "quant/pq.h"

namespace annvil {

struct TopK;

// Sort a filled heap and write one result row (k entries): D as distances
// (keys for L2, negated keys for inner product), padding -1 / missing_result_distance() (topk.h).
void pq_finalize_row(TopK& heap, size_t k, MetricType metric, float* D, idx_t* I);

struct IndexPQ : IndexFlatCodes {
  ProductQuantizer pq;  // codes: ntotal * pq.code_size bytes

  IndexPQ(int d, size_t M, size_t nbits, MetricType metric = METRIC_L2);

  void train(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  // ADC distances against the radius (L2: dist < radius; IP: ip > radius)
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  size_t memory_usage() const override;
  // same type, d, metric and trained codec (see IndexFlatCodes)
  void check_compatible_for_merge(const Index& other) const override;

  std::string type_tag() const override { return "PQ"; }
  void write_payload(Writer& w) const override;

 protected:
  void encode_vectors(idx_t n, const float* x, uint8_t* out) const override;
  void decode_vectors(idx_t n, const uint8_t* in, float* x) const override;
};

// Raise unless a and b have the same shape and centroids (their codes decode
// alike), for merges of PQ-coded indexes.
void check_same_pq(const ProductQuantizer& a, const ProductQuantizer& b);

}  // namespace annvil
