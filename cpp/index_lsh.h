// Locality-sensitive hashing indexes.
//
// IndexLSH (Faiss's IndexLSH): one binary code of nbits per vector, bit j
// set when component j of the preprocessed vector is >= 0 (Faiss's
// fvecs2bitvecs layout: bit j is bit j % 8 of byte j / 8).  Preprocessing:
//   rotate_data:      y = R x with R = RandomRotationMatrix(d, nbits).init(5)
//                     (the same matrix as Faiss's, so the same codes);
//                     nbits > d uses a tight frame (see vector_transform.h)
//   otherwise:        y = the first nbits components of x (nbits <= d)
//   train_thresholds: y_j -= t_j, t_j the median of y_j over the training set
// Search ranks the stored codes by Hamming distance to the query's code
// (distances are the integer bit counts, as floats); sa_decode maps bits to
// +-1 (+ thresholds, then R^T).  Ids are positions (remove_ids shifts).
//
// IndexLSHMultiTable: the textbook multi-table scheme with multi-probe and
// exact re-ranking (Indyk-Motwani / Charikar's sign random projections,
// Lv et al.'s multi-probe LSH).  ntables hash tables, each hashing a
// (centred) vector to nbits sign bits of random orthonormal projections;
// a query probes, in every table, its own bucket and the nprobe - 1 buckets
// of smallest perturbation score (sum of the squared projections of the
// flipped bits, generated in increasing order with a heap over shift /
// expand operations), and the union of the candidates is re-ranked with
// exact distances (L2 or inner product) on the stored vectors.
//   table t: keys sorted ascending with their positions (CSR by key, with a
//   dense offset array for nbits <= 20)
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "core/index.h"
#include "core/storage.h"
#include "quant/vector_transform.h"

namespace annvil {

struct IndexLSH : Index {
  int nbits;
  bool rotate_data;
  bool train_thresholds;
  size_t code_size;
  RandomRotationMatrix rrot;      // d -> nbits (used when rotate_data)
  std::vector<float> thresholds;  // nbits (when train_thresholds)
  Storage<uint8_t> codes;         // ntotal * code_size

  IndexLSH(int d, int nbits, bool rotate_data = true, bool train_thresholds = false);

  // n * d -> n * nbits values whose signs are the bits
  std::vector<float> apply_preprocess(idx_t n, const float* x) const;
  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;

  size_t sa_code_size() const override { return code_size; }
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // same nbits, rotation and thresholds; add_id must be 0 (ids are positions)
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;

  // Fold the thresholds into the bias of vt (the transform in front of this
  // index, d_out == nbits) and stop subtracting them here (Faiss's API).
  void transfer_thresholds(LinearTransform& vt);

  std::string type_tag() const override { return "LSH"; }
  void write_payload(Writer& w) const override;
};

// x: n * d floats -> n * ((d + 7) / 8) bytes (Faiss's fvecs2bitvecs); and back to +-1
void fvecs2bitvecs(const float* x, uint8_t* b, size_t d, size_t n);
void bitvecs2fvecs(const uint8_t* b, float* x, size_t d, size_t n);

struct IndexLSHMultiTable : Index {
  int ntables;
  int nbits;       // bits per table, 1..32
  int nprobe = 1;  // buckets probed per table (1: only the query's own)
  int seed = 1234;
  std::vector<float> mean;  // d, subtracted before hashing (train)
  std::vector<float> proj;  // (ntables * nbits) x d: rows of table t from RandomRotationMatrix(d, nbits).init(seed + t)
  Storage<float> xb;        // ntotal * d, for the exact re-ranking
  std::vector<std::vector<uint32_t>> keys;  // per table, sorted
  std::vector<std::vector<int32_t>> pos;    // per table, positions in key order
  // nbits <= 20: per table 2^nbits + 1 offsets, bucket `key` = [off[key], off[key + 1])
  // of keys / pos (one lookup per probe instead of a binary search)
  std::vector<std::vector<uint32_t>> offsets;

  IndexLSHMultiTable(int d, int ntables, int nbits, MetricType metric = METRIC_L2);

  void train(idx_t n, const float* x) override;  // the mean of x
  void add(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;
  // the hash keys (ntables per vector) of n vectors: n * ntables
  void hash(idx_t n, const float* x, uint32_t* out) const;
  // mean number of distinct candidates re-ranked per query of the last
  // search (a diagnostic for the recall / speed trade-off)
  mutable std::atomic<double> last_candidates{0.0};

  std::string type_tag() const override { return "LSHMultiTable"; }
  void write_payload(Writer& w) const override;

  void rebuild_tables();    // from xb (after reading or removing)
  void init_projections();  // proj from seed

 private:
  void insert(idx_t n0, idx_t n, const uint32_t* h);
};

struct SearchParametersLSHMultiTable : SearchParameters {
  int nprobe = 0;  // 0: the index's
};

}  // namespace annvil
