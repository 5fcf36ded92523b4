// IndexPreTransform: a chain of vector transforms in front of any index.
#include "index_pretransform.h"

#include <algorithm>
#include <cstring>

#include "core/io.h"

namespace annvil {

// ---------------------------------------------------------------- IndexPreTransform
IndexPreTransform::IndexPreTransform(IndexPtr idx)
    : Index(idx ? idx->d : 1, idx ? idx->metric_type : METRIC_L2, /*extra_metrics=*/true), index(idx) {
  ANNVIL_CHECK(idx != nullptr, "IndexPreTransform needs an index");
  refresh();
}

IndexPreTransform::IndexPreTransform(VectorTransformPtr vt, IndexPtr idx) : IndexPreTransform(std::move(idx)) {
  prepend_transform(std::move(vt));
}

void IndexPreTransform::prepend_transform(VectorTransformPtr vt) {
  ANNVIL_CHECK(vt != nullptr, "transform is None");
  int next_d = chain.empty() ? index->d : chain.front()->d_in;
  ANNVIL_CHECK(vt->d_out == next_d, "the transform outputs d_out=", vt->d_out, " dimensions but ",
               chain.empty() ? "the index" : "the next transform", " expects ", next_d);
  chain.insert(chain.begin(), std::move(vt));
  refresh();
}

void IndexPreTransform::refresh() {
  d = chain.empty() ? index->d : chain.front()->d_in;
  metric_type = index->metric_type;
  ntotal = index->ntotal;
  is_trained = index->is_trained;
  for (auto& t : chain) is_trained = is_trained && t->is_trained;
}

std::vector<float> IndexPreTransform::apply_chain(idx_t n, const float* x) const {
  std::vector<float> cur(x, x + size_t(n) * d), next;
  for (auto& t : chain) {
    next.resize(size_t(n) * t->d_out);
    t->apply_noalloc(n, cur.data(), next.data());
    cur.swap(next);
  }
  return cur;
}

void IndexPreTransform::reverse_chain(idx_t n, const float* xt, float* x) const {
  std::vector<float> cur(xt, xt + size_t(n) * index->d), next;
  for (size_t i = chain.size(); i-- > 0;) {
    next.resize(size_t(n) * chain[i]->d_in);
    chain[i]->reverse_transform(n, cur.data(), next.data());
    cur.swap(next);
  }
  std::memcpy(x, cur.data(), sizeof(float) * cur.size());
}

void IndexPreTransform::train(idx_t n, const float* x) {
  std::vector<float> cur(x, x + size_t(n) * d), next;
  for (auto& t : chain) {
    if (!t->is_trained) t->train(n, cur.data());
    next.resize(size_t(n) * t->d_out);
    t->apply_noalloc(n, cur.data(), next.data());
    cur.swap(next);
  }
  index->train(n, cur.data());
  refresh();
}

void IndexPreTransform::add(idx_t n, const float* x) {
  check_trained();
  auto xt = apply_chain(n, x);
  index->add(n, xt.data());
  ntotal = index->ntotal;
}

void IndexPreTransform::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  check_trained();
  auto xt = apply_chain(n, x);
  index->add_with_ids(n, xt.data(), ids);
  ntotal = index->ntotal;
}

void IndexPreTransform::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                               const SearchParameters* params) const {
  check_trained();
  auto xt = apply_chain(n, x);
  index->search(n, xt.data(), k, D, I, params);
}

void IndexPreTransform::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                                     const SearchParameters* params) const {
  check_trained();
  auto xt = apply_chain(n, x);
  index->range_search(n, xt.data(), radius, result, params);
}

void IndexPreTransform::reconstruct(idx_t key, float* out) const {
  std::vector<float> r(size_t(index->d));
  index->reconstruct(key, r.data());
  reverse_chain(1, r.data(), out);
}

void IndexPreTransform::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  std::vector<float> r(size_t(ni) * index->d);
  index->reconstruct_n(i0, ni, r.data());
  reverse_chain(ni, r.data(), out);
}

void IndexPreTransform::sa_encode(idx_t n, const float* x, uint8_t* codes) const {
  check_trained();
  auto xt = apply_chain(n, x);
  index->sa_encode(n, xt.data(), codes);
}

void IndexPreTransform::sa_decode(idx_t n, const uint8_t* codes, float* x) const {
  check_trained();
  std::vector<float> xt(size_t(n) * size_t(index->d));
  index->sa_decode(n, codes, xt.data());
  reverse_chain(n, xt.data(), x);
}

void IndexPreTransform::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
  check_trained();
  index->add_sa_codes(n, codes, ids);
  ntotal = index->ntotal;
}

void IndexPreTransform::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  auto* o = dynamic_cast<const IndexPreTransform*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  ANNVIL_CHECK(o->chain.size() == chain.size(), "cannot merge IndexPreTransforms with different transform chains");
  for (size_t i = 0; i < chain.size(); ++i) {
    try {
      chain[i]->check_identical(*o->chain[i]);
    } catch (const Error& e) {
      ANNVIL_THROW(value, "cannot merge IndexPreTransforms: transform ", i, " (", chain[i]->type_tag(),
                   ") differs (train one index and clone it): ", e.what());
    }
  }
  index->check_compatible_for_merge(*o->index);
}

void IndexPreTransform::merge_from(Index& other, idx_t add_id) {
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexPreTransform&>(other);
  index->merge_from(*o.index, add_id);
  ntotal = index->ntotal;
  o.ntotal = o.index->ntotal;
}

void IndexPreTransform::search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                                               const SearchParameters* params) const {
  check_trained();
  auto xt = apply_chain(n, x);
  std::vector<float> rt(size_t(n) * size_t(k) * size_t(index->d));
  index->search_and_reconstruct(n, xt.data(), k, D, I, rt.data(), params);
  reverse_chain(n * k, rt.data(), recons);
}

size_t IndexPreTransform::remove_ids(const IDSelector& sel) {
  size_t r = index->remove_ids(sel);
  ntotal = index->ntotal;
  return r;
}

void IndexPreTransform::reset() {
  index->reset();
  ntotal = 0;
}

size_t IndexPreTransform::memory_usage() const { return sizeof(*this) + index->memory_usage(); }

void IndexPreTransform::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write<uint64_t>(uint64_t(chain.size()));
  for (auto& t : chain) write_transform_record(*t, w);
  write_index_record(*index, w);
}

namespace {
IndexPtr read_pretransform(Reader& r) {
  IndexHeader h = read_header_fields(r);
  size_t nchain = r.read_count(1024, "transform chain length");
  std::vector<VectorTransformPtr> chain;
  for (size_t i = 0; i < nchain; ++i) chain.push_back(read_transform_record(r));
  IndexPtr sub = read_index_record(r);
  auto idx = std::make_shared<IndexPreTransform>(sub);
  try {
    for (size_t i = chain.size(); i-- > 0;) idx->prepend_transform(chain[i]);
  } catch (const Error&) {
    r.corrupt("transform chain dimensions do not match");
  }
  if (idx->d != h.d || idx->ntotal != h.ntotal) r.corrupt("pre-transform index does not match its parts");
  return idx;
}
ANNVIL_REGISTER_INDEX("PreTransform", read_pretransform);
}  // namespace

}  // namespace annvil
