// IndexPQ (codes searched with per-query distance tables, "ADC") and
// IndexPQFastScan (4-bit codes in 32-vector blocks searched with quantised
// LUTs and byte shuffles, see pq_fastscan.h).  Ids are positions; remove_ids
// shifts the later vectors down, as in Faiss.
#pragma once
#include "core/index.h"
#include "quant/pq.h"
#include "core/storage.h"

namespace annvil {

struct TopK;

// Sort a filled heap and write one result row (k entries): D as distances
// (keys for L2, negated keys for inner product), padding -1 / missing_result_distance() (topk.h).
void pq_finalize_row(TopK& heap, size_t k, MetricType metric, float* D, idx_t* I);

struct IndexPQ : Index {
  ProductQuantizer pq;
  Storage<uint8_t> codes;  // ntotal * pq.code_size

  IndexPQ(int d, size_t M, size_t nbits, MetricType metric = METRIC_L2);

  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  // ADC distances against the radius (L2: dist < radius; IP: ip > radius)
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;

  // standalone codes: sa_code_size() bytes per vector (see index.h)
  size_t sa_code_size() const override;
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // same type, d, metric and trained codec; add_id must be 0 (ids are positions)
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;

  std::string type_tag() const override { return "PQ"; }
  void write_payload(Writer& w) const override;
};

struct IndexPQFastScan : Index {
  ProductQuantizer pq;      // nbits == 4
  size_t bbs = kBlockSize;  // vectors per block: a multiple of 32
  Storage<uint8_t> codes;   // pq4_codes_bytes(ntotal, M, bbs) bytes, see pq_fastscan.h
  // Faiss's kernel selectors, kept for the drop-in API and serialized.
  // implem: 0 auto, 12..15 the SIMD scan (one kernel here); 2 float LUT
  // (exactly IndexPQ's search), 3 / 4 uint8 LUT with a scalar scan (the
  // reference the SIMD scan must agree with; 1 is Faiss's "not implemented"
  // and searches as 2).  qbs: Faiss's query-block schedule, accepted, unused.
  int implem = 0;
  int qbs = 0;

  static constexpr size_t kBlockSize = 32;

  IndexPQFastScan(int d, size_t M, size_t nbits = 4, MetricType metric = METRIC_L2, size_t bbs = 32);
  // Same quantizer and vectors as an IndexPQ with nbits = 4 (codes repacked).
  explicit IndexPQFastScan(const IndexPQ& orig, size_t bbs = 32);

  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;
  // standalone codes (plain PQ codes, as IndexPQ's): sa_code_size() bytes per vector (see index.h)
  size_t sa_code_size() const override;
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // same type, d, metric and trained codec; add_id must be 0 (ids are positions)
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;

  // The float LUT the search quantises: M * 16 values, smaller = better
  // (L2 distances, or negated inner products).
  void compute_float_lut(const float* x, float* lut) const;

  std::string type_tag() const override { return "PQFastScan"; }
  void write_payload(Writer& w) const override;

  // the implems other than the SIMD scan (pq_fastscan_search.cpp)
  void search_reference(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const IDSelector* sel) const;

 private:
  void add_indices(idx_t n, const uint8_t* idx);  // n * M sub-quantizer indices
};

}  // namespace annvil
