// Exact search over raw float32 vectors (Faiss's IndexFlat / IndexFlatL2 /
// IndexFlatIP).  Storage is the vectors themselves, n * d floats: no norms
// are cached (the panel kernels compute them per base block), so memory is
// the raw data plus a few bytes.
#pragma once
#include "core/index.h"
#include "core/storage.h"

namespace annvil {

struct IndexFlat : Index {
  Storage<float> xb;  // ntotal * d

  IndexFlat(int d, MetricType metric = METRIC_L2);

  void add(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
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
  // same type, d, metric and add_id must be 0 (ids are positions)
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;

  // distances from query i to the listed base rows: out[i * nl + j]
  void compute_distance_subset(idx_t n, const float* x, idx_t nl, const idx_t* labels, float* out) const;

  const float* get_xb() const { return xb.data(); }

  std::string type_tag() const override { return "Flat"; }
  void write_payload(Writer& w) const override;
};

struct IndexFlatL2 : IndexFlat {
  explicit IndexFlatL2(int d) : IndexFlat(d, METRIC_L2) {}
  std::string type_tag() const override { return "FlatL2"; }
};

// Faiss's IndexFlat1D: scalars kept with their sorted order (perm), so a
// query is a binary search then a walk outwards.  Distances are |x - y|
// (not squared), missing results -1 / +inf, as in Faiss.  With
// continuous_update false, call update_permutation() between adds and searches.
struct IndexFlat1D : IndexFlatL2 {
  bool continuous_update = true;
  std::vector<idx_t> perm;  // ntotal ids by increasing value

  explicit IndexFlat1D(bool continuous_update_ = true) : IndexFlatL2(1), continuous_update(continuous_update_) {}
  void update_permutation();
  void add(idx_t n, const float* x) override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
};

struct IndexFlatIP : IndexFlat {
  explicit IndexFlatIP(int d) : IndexFlat(d, METRIC_INNER_PRODUCT) {}
  std::string type_tag() const override { return "FlatIP"; }
};

}  // namespace annvil
