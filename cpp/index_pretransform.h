// IndexPreTransform: a chain of vector transforms (vector_transform.h) in
// front of any index, Faiss semantics.
#pragma once
#include <string>
#include <vector>

#include "core/index.h"
#include "quant/vector_transform.h"

namespace annvil {

struct IndexPreTransform : Index {
  std::vector<VectorTransformPtr> chain;
  IndexPtr index;

  explicit IndexPreTransform(IndexPtr index);
  IndexPreTransform(VectorTransformPtr vt, IndexPtr index);
  void prepend_transform(VectorTransformPtr vt);

  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  bool remove_ids_shifts() const override { return index->remove_ids_shifts(); }
  void reset() override;
  size_t memory_usage() const override;

  // codes of the wrapped index for the transformed vectors (as Faiss)
  size_t sa_code_size() const override { return index->sa_code_size(); }
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // identical transform chains (same types and parameters), compatible indexes
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;
  void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                              const SearchParameters* params = nullptr) const override;

  // n * d -> n * index->d through the whole chain
  std::vector<float> apply_chain(idx_t n, const float* x) const;
  // n * index->d -> n * d
  void reverse_chain(idx_t n, const float* xt, float* x) const;

  std::string type_tag() const override { return "PreTransform"; }
  void write_payload(Writer& w) const override;

 private:
  void refresh();
};

}  // namespace annvil
