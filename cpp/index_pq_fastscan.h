// IndexPQFastScan: 4-bit PQ codes in 32-vector blocks searched with quantised
// LUTs and byte shuffles (see quant/pq_fastscan.h).  Ids are positions;
// remove_ids shifts the later vectors down, as in Faiss.
//
// It is an IndexFlatCodes whose `codes` have another layout: not ntotal rows
// of code_size bytes but pq4_codes_bytes(ntotal, M, bbs) bytes of packed
// blocks.  The standalone codec (sa_encode / sa_decode, code_size bytes per
// vector) is the plain PQ code, as IndexPQ's, and comes from the base; every
// method that reads or writes `codes` row by row is overridden here (add,
// add_sa_codes, reconstruct, reconstruct_n, remove_ids, merge_from), since
// a row has to be unpacked from, or packed into, its block.
#pragma once
#include "index_pq.h"

namespace annvil {

struct IndexPQFastScan : IndexFlatCodes {
  ProductQuantizer pq;      // nbits == 4
  size_t bbs = kBlockSize;  // vectors per block: a multiple of 32
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
  void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  size_t memory_usage() const override;
  // codes: n plain PQ codes (sa_encode's), repacked into the blocks
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // same type, d, metric and trained codec
  void check_compatible_for_merge(const Index& other) const override;
  // add_id is accepted and ignored, as in Faiss: the ids are positions
  void merge_from(Index& other, idx_t add_id = 0) override;

  // The float LUT the search quantises: M * 16 values, smaller = better
  // (L2 distances, or negated inner products).
  void compute_float_lut(const float* x, float* lut) const;

  std::string type_tag() const override { return "PQFastScan"; }
  void write_payload(Writer& w) const override;

  // the implems other than the SIMD scan (pq_fastscan_search.cpp)
  void search_reference(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const IDSelector* sel) const;

 protected:
  void encode_vectors(idx_t n, const float* x, uint8_t* out) const override;
  void decode_vectors(idx_t n, const uint8_t* in, float* x) const override;

 private:
  void add_indices(idx_t n, const uint8_t* idx);  // n * M sub-quantizer indices
  // the sub-quantizer indices of the stored vectors not in `sel` (all when
  // null), n_kept * M bytes
  std::vector<uint8_t> kept_indices(const IDSelector* sel, idx_t* n_kept) const;
};

}  // namespace annvil
