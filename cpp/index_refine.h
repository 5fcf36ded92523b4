// IndexRefine: search a fast approximate base index for k * k_factor
// candidates, then re-rank them with the exact distances of a second, more
// precise index (IndexRefineFlat: raw float vectors in an IndexFlat).
#pragma once
#include "core/index.h"

namespace annvil {

// Per-call parameters of IndexRefine (Faiss's IndexRefineSearchParameters):
// k_factor <= 0 keeps the index's own; base_index_params go to the base search.
struct IndexRefineSearchParameters : SearchParameters {
  float k_factor = 0.f;
  std::shared_ptr<SearchParameters> base_index_params;
};

struct IndexRefine : Index {
  IndexPtr base_index;
  IndexPtr refine_index;
  float k_factor = 1.f;

  IndexRefine(IndexPtr base, IndexPtr refine);

  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  // base range search with radius * k_factor, refined distances, filtered to radius
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;

  // a code is the base index's code followed by the refine index's (as
  // Faiss); decoding uses the refine part
  size_t sa_code_size() const override;
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // both halves compatible; merges them pairwise (Faiss has no IndexRefine merge)
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;

  std::string type_tag() const override { return "Refine"; }
  void write_payload(Writer& w) const override;
};

struct IndexRefineFlat : IndexRefine {
  // xb: the base index's vectors (base->ntotal * d floats) when it is
  // already filled, or null when it is empty
  explicit IndexRefineFlat(IndexPtr base, const float* xb = nullptr);
  IndexRefineFlat(IndexPtr base, IndexPtr refine) : IndexRefine(std::move(base), std::move(refine)) {}

  std::string type_tag() const override { return "RefineFlat"; }
};

}  // namespace annvil
