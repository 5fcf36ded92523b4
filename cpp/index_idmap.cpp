#include "index_idmap.h"

#include "core/io.h"

namespace annvil {

// the wrapped index computes every distance: any metric it took is fine here
IndexIDMap::IndexIDMap(IndexPtr sub)
    : Index(sub ? sub->d : 1, sub ? sub->metric_type : METRIC_L2, /*extra_metrics=*/true), index(sub) {
  if (sub) metric_arg = sub->metric_arg;
  ANNVIL_CHECK(sub != nullptr, "IndexIDMap needs an index to wrap");
  ANNVIL_CHECK(sub->ntotal == 0, "the index wrapped by IndexIDMap must be empty (it has ", sub->ntotal, " vectors)");
  is_trained = sub->is_trained;
}

void IndexIDMap::train(idx_t n, const float* x) {
  index->train(n, x);
  is_trained = index->is_trained;
}

void IndexIDMap::add(idx_t, const float*) {
  ANNVIL_THROW(runtime, "add() does not make sense with IndexIDMap: use add_with_ids(x, ids)");
}

void IndexIDMap::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  index->add(n, x);
  id_map.insert(id_map.end(), ids, ids + n);
  ntotal = index->ntotal;
}

SearchParameters IndexIDMap::translated_params(const SearchParameters* params, IDSelectorTranslated* tsel) const {
  SearchParameters p;
  p.sel = (params && params->sel) ? tsel : nullptr;
  // a selector already over positions (Faiss's IDSelectorTranslated) goes through as is
  if (params && dynamic_cast<const IDSelectorTranslated*>(params->sel)) p.sel = params->sel;
  return p;
}

void IndexIDMap::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_k(k);
  IDSelectorTranslated tsel(id_map, params ? params->sel : nullptr);
  SearchParameters p = translated_params(params, &tsel);
  index->search(n, x, k, D, I, &p);
  for (size_t i = 0; i < size_t(n) * size_t(k); ++i)
    if (I[i] >= 0) I[i] = id_map[size_t(I[i])];
}

void IndexIDMap::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                              const SearchParameters* params) const {
  IDSelectorTranslated tsel(id_map, params ? params->sel : nullptr);
  SearchParameters p = translated_params(params, &tsel);
  index->range_search(n, x, radius, result, &p);
  for (auto& l : result->labels)
    if (l >= 0) l = id_map[size_t(l)];
}

size_t IndexIDMap::remove_ids(const IDSelector& sel) {
  IDSelectorTranslated tsel(id_map, &sel);
  size_t removed = index->remove_ids(tsel);
  if (removed == 0) return 0;
  if (!index->remove_ids_shifts()) {
    ntotal = index->ntotal;
    return removed;  // positions stay valid: the removed entries are tombstones
  }
  size_t j = 0;
  for (size_t i = 0; i < id_map.size(); ++i)
    if (!sel.is_member(id_map[i])) id_map[j++] = id_map[i];
  ANNVIL_ASSERT(id_map.size() - j == removed);
  id_map.resize(j);
  ntotal = index->ntotal;
  return removed;
}

void IndexIDMap::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
  ANNVIL_CHECK(ids != nullptr || n == 0, "IndexIDMap.add_sa_codes needs the ids of the codes");
  // the wrapped index numbers the entries by position (IVF stores those
  // positions as its ids), as in add_with_ids
  index->add_sa_codes(n, codes, nullptr);
  id_map.insert(id_map.end(), ids, ids + n);
  ntotal = index->ntotal;
}

void IndexIDMap::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  auto* o = dynamic_cast<const IndexIDMap*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  index->check_compatible_for_merge(*o->index);
}

void IndexIDMap::merge_from(Index& other, idx_t add_id) {
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexIDMap&>(other);
  // Positional indexes (flat codes, HNSW) number other's entries after ours
  // by themselves; indexes that store ids (IVF) need the shift, or the
  // merged positions would collide (Faiss merges IVF positions unshifted).
  const idx_t shift = index->remove_ids_shifts() ? 0 : index->ntotal;
  index->merge_from(*o.index, shift);
  id_map.reserve(id_map.size() + o.id_map.size());
  for (idx_t id : o.id_map) id_map.push_back(id + add_id);
  o.id_map.clear();
  o.ntotal = o.index->ntotal;
  ntotal = index->ntotal;
}

void IndexIDMap::search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                                        const SearchParameters* params) const {
  check_k(k);
  IDSelectorTranslated tsel(id_map, params ? params->sel : nullptr);
  SearchParameters p = translated_params(params, &tsel);
  index->search_and_reconstruct(n, x, k, D, I, recons, &p);
  for (size_t i = 0; i < size_t(n) * size_t(k); ++i)
    if (I[i] >= 0) I[i] = id_map[size_t(I[i])];
}

void IndexIDMap::reset() {
  index->reset();
  id_map.clear();
  ntotal = 0;
}

size_t IndexIDMap::memory_usage() const {
  return sizeof(*this) + index->memory_usage() + id_map.capacity() * sizeof(idx_t);
}

void IndexIDMap::write_payload(Writer& w) const {
  write_index_header(w, *this);
  write_index_record(*index, w);
  w.write_vector(id_map);
}

IndexIDMap2::IndexIDMap2(IndexPtr sub) : IndexIDMap(std::move(sub)) {}

void IndexIDMap2::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  IndexIDMap::add_with_ids(n, x, ids);
  size_t base = id_map.size() - size_t(n);
  for (idx_t i = 0; i < n; ++i) rev_map[ids[i]] = idx_t(base + size_t(i));
}

void IndexIDMap2::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
  IndexIDMap::add_sa_codes(n, codes, ids);
  size_t base = id_map.size() - size_t(n);
  for (idx_t i = 0; i < n; ++i) rev_map[ids[i]] = idx_t(base + size_t(i));
}

void IndexIDMap2::merge_from(Index& other, idx_t add_id) {
  IndexIDMap::merge_from(other, add_id);
  construct_rev_map();
  if (auto* o = dynamic_cast<IndexIDMap2*>(&other)) o->rev_map.clear();
}

size_t IndexIDMap2::remove_ids(const IDSelector& sel) {
  size_t removed = IndexIDMap::remove_ids(sel);
  if (removed) construct_rev_map();
  return removed;
}

void IndexIDMap2::reset() {
  IndexIDMap::reset();
  rev_map.clear();
}

void IndexIDMap2::construct_rev_map() {
  rev_map.clear();
  for (size_t i = 0; i < id_map.size(); ++i) rev_map[id_map[i]] = idx_t(i);
}

void IndexIDMap2::check_consistency() const {
  ANNVIL_CHECK(rev_map.size() == id_map.size(), "IndexIDMap2: ", rev_map.size(), " reverse entries for ", id_map.size(),
               " ids (duplicate ids?)");
  for (size_t i = 0; i < id_map.size(); ++i) {
    auto it = rev_map.find(id_map[i]);
    ANNVIL_CHECK(it != rev_map.end() && it->second == idx_t(i), "IndexIDMap2: id ", id_map[i], " at position ", i,
                 " is not mapped back to it");
  }
}

void IndexIDMap2::reconstruct(idx_t key, float* out) const {
  auto it = rev_map.find(key);
  ANNVIL_CHECK(it != rev_map.end(), "id ", key, " is not in the index");
  index->reconstruct(it->second, out);
}

namespace {
template <class T>
IndexPtr read_idmap(Reader& r) {
  IndexHeader h = read_header_fields(r);
  IndexPtr sub = read_index_record(r);
  if (sub->d != h.d) r.corrupt("IDMap dimension differs from its index");
  // the constructor wants an empty index; restore the count afterwards
  idx_t sub_n = sub->ntotal;
  sub->ntotal = 0;
  auto idx = std::make_shared<T>(sub);
  sub->ntotal = sub_n;
  r.read_vector(idx->id_map);
  if (idx->id_map.size() != size_t(sub_n) || h.ntotal != sub_n) r.corrupt("IDMap size does not match its index");
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  if constexpr (std::is_same<T, IndexIDMap2>::value) idx->construct_rev_map();
  return idx;
}
ANNVIL_REGISTER_INDEX("IDMap", read_idmap<IndexIDMap>);
ANNVIL_REGISTER_INDEX("IDMap2", read_idmap<IndexIDMap2>);
}  // namespace

}  // namespace annvil
