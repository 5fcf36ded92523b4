// Exact search over raw float32 vectors (Faiss's IndexFlat / IndexFlatL2 /
// IndexFlatIP).  Storage is the vectors themselves, n * d floats held as the
// codes of IndexFlatCodes (index_flat_codes.h): no norms
// are cached (the panel kernels compute them per base block), so memory is
// the raw data plus a few bytes.
#pragma once
#include "index_flat_codes.h"

namespace annvil {

// codes: the vectors themselves, code_size = 4 d bytes per vector, read in
// place as floats (get_xb()).
struct IndexFlat : IndexFlatCodes {
  IndexFlat(int d, MetricType metric = METRIC_L2);

  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  size_t memory_usage() const override;

  // distances from query i to the listed base rows: out[i * nl + j]
  void compute_distance_subset(idx_t n, const float* x, idx_t nl, const idx_t* labels, float* out) const;
  // Faiss's permute_entries: new vector i = old vector perm[i]; perm: ntotal
  // ids, checked to be a permutation
  void permute_entries(const idx_t* perm);

  // ntotal * d floats
  const float* get_xb() const { return reinterpret_cast<const float*>(codes.data()); }

  std::string type_tag() const override { return "Flat"; }
  void write_payload(Writer& w) const override;

 protected:
  void encode_vectors(idx_t n, const float* x, uint8_t* out) const override;
  void decode_vectors(idx_t n, const uint8_t* in, float* x) const override;
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
