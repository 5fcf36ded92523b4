// IndexIDMap / IndexIDMap2: user-chosen int64 ids over any index whose own ids
// are positions (Faiss semantics).  IDMap2 adds the reverse map needed for
// reconstruct(id).
#pragma once
#include <unordered_map>
#include <vector>

#include "core/index.h"

namespace annvil {

// Applies a selector on user ids to positions of the wrapped index.
struct IDSelectorTranslated : IDSelector {
  const idx_t* id_map;
  size_t n;
  const IDSelector* sel;
  IDSelectorTranslated(const std::vector<idx_t>& m, const IDSelector* s) : id_map(m.data()), n(m.size()), sel(s) {}
  bool is_member(idx_t pos) const override { return pos >= 0 && size_t(pos) < n && sel->is_member(id_map[pos]); }
};

// Faiss's user-facing IDSelectorTranslated(id_map, sel): owns a copy of the
// id map (positions -> user ids, taken when it is built) and the inner
// selector.  IndexIDMap passes a translated selector on unchanged.
struct IDSelectorTranslatedOwned : IDSelectorTranslated {
  std::vector<idx_t> map;
  std::shared_ptr<IDSelector> inner;
  IDSelectorTranslatedOwned(std::vector<idx_t> m, std::shared_ptr<IDSelector> s)
      : IDSelectorTranslated(m, s.get()), map(std::move(m)), inner(std::move(s)) {
    id_map = map.data();
    n = map.size();
    sel = inner.get();
  }
};

struct IndexIDMap : Index {
  IndexPtr index;
  std::vector<idx_t> id_map;

  explicit IndexIDMap(IndexPtr sub);

  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;

  // the wrapped index's codes (positions and ids are not part of a code)
  size_t sa_code_size() const override { return index->sa_code_size(); }
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override { index->sa_encode(n, x, codes); }
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override { index->sa_decode(n, codes, x); }
  // ids: n user ids (required)
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // same IDMap type over compatible indexes; other's ids are shifted by add_id
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;
  void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                              const SearchParameters* params = nullptr) const override;

  std::string type_tag() const override { return "IDMap"; }
  void write_payload(Writer& w) const override;

 protected:
  // the wrapped index's search, with the selector translated to positions
  SearchParameters translated_params(const SearchParameters* params, IDSelectorTranslated* tsel) const;
};

struct IndexIDMap2 : IndexIDMap {
  std::unordered_map<idx_t, idx_t> rev_map;

  explicit IndexIDMap2(IndexPtr sub);
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  void merge_from(Index& other, idx_t add_id = 0) override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  void reconstruct(idx_t key, float* out) const override;
  void construct_rev_map();
  // raise unless rev_map is exactly the inverse of id_map (Faiss's check_consistency)
  void check_consistency() const;

  std::string type_tag() const override { return "IDMap2"; }
};

}  // namespace annvil
