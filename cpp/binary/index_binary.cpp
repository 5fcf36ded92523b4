// IndexBinary, IndexBinaryFlat, IndexBinaryIDMap(2), IndexBinaryFromFloat and
// the binary index records.
#include "binary/index_binary.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>

#include "index_idmap.h"
#include "core/io.h"

namespace annvil {

// ---- base ---------------------------------------------------------------------------
IndexBinary::IndexBinary(int d_) : d(d_), code_size(d_ / 8) {
  ANNVIL_CHECK(d_ > 0 && d_ % 8 == 0,
               "binary indexes need a dimension d (in bits) that is a positive multiple of 8, got ", d_);
}

void IndexBinary::train(idx_t, const uint8_t*) {}

void IndexBinary::add_with_ids(idx_t, const uint8_t*, const idx_t*) {
  ANNVIL_THROW(runtime, type_tag(), " does not support add_with_ids; wrap it in IndexBinaryIDMap");
}

void IndexBinary::range_search(idx_t, const uint8_t*, int, BinaryRangeResult*, const SearchParameters*) const {
  ANNVIL_THROW(runtime, type_tag(), " does not support range_search");
}

void IndexBinary::reconstruct(idx_t, uint8_t*) const {
  ANNVIL_THROW(runtime, type_tag(), " does not support reconstruct");
}

void IndexBinary::reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const {
  for (idx_t i = 0; i < ni; ++i) reconstruct(i0 + i, out + size_t(i) * code_size);
}

size_t IndexBinary::remove_ids(const IDSelector&) { ANNVIL_THROW(runtime, type_tag(), " does not support remove_ids"); }

void IndexBinary::check_trained() const {
  if (!is_trained) ANNVIL_THROW(not_trained, type_tag(), " is not trained: call train() before add() or search()");
}

void IndexBinary::check_k(idx_t k) const { ANNVIL_CHECK(k > 0, "k must be positive, got ", k); }

// ---- flat ---------------------------------------------------------------------------
IndexBinaryFlat::IndexBinaryFlat(int d_) : IndexBinary(d_) {}

void IndexBinaryFlat::add(idx_t n, const uint8_t* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  auto& v = xb.mut();
  v.insert(v.end(), x, x + size_t(n) * code_size);
  ntotal += n;
}

void IndexBinaryFlat::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                             const SearchParameters* params) const {
  check_k(k);
  hamming_knn(size_t(n), x, size_t(ntotal), xb.data(), size_t(code_size), size_t(k), D, I,
              params ? params->sel : nullptr);
}

void IndexBinaryFlat::range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                                   const SearchParameters* params) const {
  hamming_range(size_t(n), x, size_t(ntotal), xb.data(), size_t(code_size), radius, result,
                params ? params->sel : nullptr);
}

void IndexBinaryFlat::reconstruct(idx_t key, uint8_t* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "id ", key, " out of range [0, ", ntotal, ")");
  std::memcpy(out, xb.data() + size_t(key) * code_size, size_t(code_size));
}

void IndexBinaryFlat::reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  if (ni) std::memcpy(out, xb.data() + size_t(i0) * code_size, size_t(ni) * code_size);
}

size_t IndexBinaryFlat::remove_ids(const IDSelector& sel) {
  // ids are positions: the later codes shift down (Faiss semantics)
  const size_t cs = size_t(code_size);
  std::vector<uint8_t> kept;
  kept.reserve(size_t(ntotal) * cs);
  const uint8_t* src = xb.data();
  idx_t j = 0;
  for (idx_t i = 0; i < ntotal; ++i) {
    if (sel.is_member(i)) continue;
    kept.insert(kept.end(), src + size_t(i) * cs, src + size_t(i + 1) * cs);
    ++j;
  }
  const size_t removed = size_t(ntotal - j);
  if (removed == 0) return 0;
  xb.mut().swap(kept);
  ntotal = j;
  return removed;
}

void IndexBinaryFlat::reset() {
  xb.clear();
  ntotal = 0;
}

size_t IndexBinaryFlat::memory_usage() const { return sizeof(*this) + xb.capacity_bytes(); }

void IndexBinaryFlat::write_payload(Writer& w) const {
  write_binary_header(w, *this);
  w.write_storage(xb);
}

// ---- IDMap --------------------------------------------------------------------------
IndexBinaryIDMap::IndexBinaryIDMap(IndexBinaryPtr sub) : IndexBinary(sub ? sub->d : 8), index(sub) {
  ANNVIL_CHECK(sub != nullptr, "IndexBinaryIDMap needs an index to wrap");
  ANNVIL_CHECK(sub->ntotal == 0, "the index wrapped by IndexBinaryIDMap must be empty (it has ", sub->ntotal,
               " vectors)");
  is_trained = sub->is_trained;
}

void IndexBinaryIDMap::train(idx_t n, const uint8_t* x) {
  index->train(n, x);
  is_trained = index->is_trained;
}

void IndexBinaryIDMap::add(idx_t, const uint8_t*) {
  ANNVIL_THROW(runtime, "add() does not make sense with IndexBinaryIDMap: use add_with_ids(x, ids)");
}

void IndexBinaryIDMap::add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) {
  index->add(n, x);
  id_map.insert(id_map.end(), ids, ids + n);
  ntotal = index->ntotal;
}

void IndexBinaryIDMap::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                              const SearchParameters* params) const {
  check_k(k);
  IDSelectorTranslated tsel(id_map, params ? params->sel : nullptr);
  SearchParameters p;
  p.sel = (params && params->sel) ? &tsel : nullptr;
  index->search(n, x, k, D, I, &p);
  for (size_t i = 0; i < size_t(n) * size_t(k); ++i)
    if (I[i] >= 0) I[i] = id_map[size_t(I[i])];
}

void IndexBinaryIDMap::range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                                    const SearchParameters* params) const {
  IDSelectorTranslated tsel(id_map, params ? params->sel : nullptr);
  SearchParameters p;
  p.sel = (params && params->sel) ? &tsel : nullptr;
  index->range_search(n, x, radius, result, &p);
  for (auto& l : result->labels)
    if (l >= 0) l = id_map[size_t(l)];
}

size_t IndexBinaryIDMap::remove_ids(const IDSelector& sel) {
  IDSelectorTranslated tsel(id_map, &sel);
  const size_t removed = index->remove_ids(tsel);
  if (removed == 0) return 0;
  if (index->remove_ids_shifts()) {
    size_t j = 0;
    for (size_t i = 0; i < id_map.size(); ++i)
      if (!sel.is_member(id_map[i])) id_map[j++] = id_map[i];
    ANNVIL_ASSERT(id_map.size() - j == removed);
    id_map.resize(j);
  }
  ntotal = index->ntotal;
  return removed;
}

void IndexBinaryIDMap::reset() {
  index->reset();
  id_map.clear();
  ntotal = 0;
}

size_t IndexBinaryIDMap::memory_usage() const {
  return sizeof(*this) + index->memory_usage() + id_map.capacity() * sizeof(idx_t);
}

void IndexBinaryIDMap::write_payload(Writer& w) const {
  write_binary_header(w, *this);
  write_index_binary_record(*index, w);
  w.write_vector(id_map);
}

IndexBinaryIDMap2::IndexBinaryIDMap2(IndexBinaryPtr sub) : IndexBinaryIDMap(std::move(sub)) {}

void IndexBinaryIDMap2::add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) {
  IndexBinaryIDMap::add_with_ids(n, x, ids);
  const size_t base = id_map.size() - size_t(n);
  for (idx_t i = 0; i < n; ++i) rev_map[ids[i]] = idx_t(base + size_t(i));
}

size_t IndexBinaryIDMap2::remove_ids(const IDSelector& sel) {
  const size_t removed = IndexBinaryIDMap::remove_ids(sel);
  if (removed) construct_rev_map();
  return removed;
}

void IndexBinaryIDMap2::reset() {
  IndexBinaryIDMap::reset();
  rev_map.clear();
}

void IndexBinaryIDMap2::construct_rev_map() {
  rev_map.clear();
  for (size_t i = 0; i < id_map.size(); ++i) rev_map[id_map[i]] = idx_t(i);
}

void IndexBinaryIDMap2::reconstruct(idx_t key, uint8_t* out) const {
  auto it = rev_map.find(key);
  ANNVIL_CHECK(it != rev_map.end(), "id ", key, " is not in the index");
  index->reconstruct(it->second, out);
}

// ---- from float ---------------------------------------------------------------------
IndexBinaryFromFloat::IndexBinaryFromFloat(IndexPtr idx) : IndexBinary(idx ? idx->d : 8), index(std::move(idx)) {
  ANNVIL_CHECK(index != nullptr, "IndexBinaryFromFloat needs a float index to wrap");
  ntotal = index->ntotal;
  is_trained = index->is_trained;
}

void IndexBinaryFromFloat::train(idx_t n, const uint8_t* x) {
  std::vector<float> xf(size_t(n) * d);
  binary_to_real(size_t(n), size_t(d), x, xf.data());
  index->train(n, xf.data());
  is_trained = index->is_trained;
}

void IndexBinaryFromFloat::add(idx_t n, const uint8_t* x) {
  index->check_trained();
  // in blocks, so that the float copy stays small whatever n is
  constexpr idx_t bs = 32768;
  std::vector<float> xf;
  for (idx_t i0 = 0; i0 < n; i0 += bs) {
    const idx_t m = std::min(bs, n - i0);
    xf.resize(size_t(m) * d);
    binary_to_real(size_t(m), size_t(d), x + size_t(i0) * code_size, xf.data());
    index->add(m, xf.data());
  }
  ntotal = index->ntotal;
}

void IndexBinaryFromFloat::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                                  const SearchParameters* params) const {
  check_k(k);
  ANNVIL_CHECK(index->metric_type == METRIC_L2, "IndexBinaryFromFloat needs an L2 float index");
  constexpr idx_t bs = 32768;
  std::vector<float> xf, Df;
  for (idx_t i0 = 0; i0 < n; i0 += bs) {
    const idx_t m = std::min(bs, n - i0);
    xf.resize(size_t(m) * d);
    Df.resize(size_t(m) * size_t(k));
    binary_to_real(size_t(m), size_t(d), x + size_t(i0) * code_size, xf.data());
    idx_t* Ib = I + size_t(i0) * size_t(k);
    index->search(m, xf.data(), k, Df.data(), Ib, params);
    int32_t* Db = D + size_t(i0) * size_t(k);
    for (size_t j = 0; j < size_t(m) * size_t(k); ++j) {
      const float v = Df[j] / 4.0f;
      Db[j] = (Ib[j] < 0 || !(v < 2147483520.0f)) ? kHammingMissing : int32_t(v);
    }
  }
}

void IndexBinaryFromFloat::reset() {
  index->reset();
  ntotal = 0;
}

size_t IndexBinaryFromFloat::memory_usage() const { return sizeof(*this) + index->memory_usage(); }

void IndexBinaryFromFloat::write_payload(Writer& w) const {
  write_binary_header(w, *this);
  write_index_record(*index, w);
}

// ---- records ------------------------------------------------------------------------
namespace {
std::map<std::string, IndexBinaryReaderFn>& binary_registry() {
  static std::map<std::string, IndexBinaryReaderFn> r;
  return r;
}
std::mutex& binary_registry_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

void register_index_binary_type(const std::string& tag, IndexBinaryReaderFn fn) {
  std::lock_guard<std::mutex> lock(binary_registry_mutex());
  binary_registry()[tag] = std::move(fn);
}

void write_index_binary_record(const IndexBinary& index, Writer& w) {
  w.write_string(index.type_tag());
  index.write_payload(w);
}

IndexBinaryPtr read_index_binary_record(Reader& r) {
  std::string tag = r.read_string(64);
  IndexBinaryReaderFn fn;
  {
    std::lock_guard<std::mutex> lock(binary_registry_mutex());
    auto it = binary_registry().find(tag);
    if (it == binary_registry().end())
      r.corrupt("unknown binary index type tag '" + tag +
                "' (a float index file? read it with read_index, binary ones with read_index_binary)");
    fn = it->second;
  }
  return fn(r);
}

void write_binary_header(Writer& w, const IndexBinary& idx) {
  w.write<int32_t>(idx.d);
  w.write<int64_t>(idx.ntotal);
  w.write<uint8_t>(idx.is_trained ? 1 : 0);
}

BinaryHeader read_binary_header(Reader& r) {
  BinaryHeader h;
  h.d = r.read<int32_t>();
  h.ntotal = r.read<int64_t>();
  const uint8_t t = r.read<uint8_t>();
  if (h.d <= 0 || h.d % 8 != 0 || h.d > (1 << 24)) r.corrupt("bad binary dimension");
  if (h.ntotal < 0) r.corrupt("bad ntotal");
  if (t > 1) r.corrupt("bad flag");
  h.is_trained = t != 0;
  return h;
}

std::vector<uint8_t> serialize_index_binary(const IndexBinary& index) {
  return serialize_record([&](Writer& w) { write_index_binary_record(index, w); });
}

IndexBinaryPtr deserialize_index_binary(const uint8_t* data, size_t n) {
  IndexBinaryPtr idx;
  deserialize_record(data, n, [&](Reader& r) { idx = read_index_binary_record(r); });
  return idx;
}

void write_index_binary_file(const IndexBinary& index, const std::string& path) {
  write_record_file(path, [&](Writer& w) { write_index_binary_record(index, w); });
}

IndexBinaryPtr read_index_binary_file(const std::string& path, bool mmap, bool verify) {
  IndexBinaryPtr idx;
  read_record_file(path, mmap, verify, [&](Reader& r) { idx = read_index_binary_record(r); });
  return idx;
}

namespace {
IndexBinaryPtr read_flat(Reader& r) {
  BinaryHeader h = read_binary_header(r);
  auto idx = std::make_shared<IndexBinaryFlat>(h.d);
  r.read_storage(idx->xb);
  if (idx->xb.size() != size_t(h.ntotal) * size_t(idx->code_size))
    r.corrupt("binary flat storage size does not match ntotal * code_size");
  idx->ntotal = h.ntotal;
  return idx;
}

template <class T>
IndexBinaryPtr read_idmap(Reader& r) {
  BinaryHeader h = read_binary_header(r);
  IndexBinaryPtr sub = read_index_binary_record(r);
  if (sub->d != h.d) r.corrupt("IDMap dimension differs from its index");
  const idx_t sub_n = sub->ntotal;
  sub->ntotal = 0;  // the constructor wants an empty index
  auto idx = std::make_shared<T>(sub);
  sub->ntotal = sub_n;
  r.read_vector(idx->id_map);
  if (idx->id_map.size() != size_t(sub_n) || h.ntotal != sub_n) r.corrupt("IDMap size does not match its index");
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  if constexpr (std::is_same<T, IndexBinaryIDMap2>::value) idx->construct_rev_map();
  return idx;
}

IndexBinaryPtr read_from_float(Reader& r) {
  BinaryHeader h = read_binary_header(r);
  IndexPtr sub = read_index_record(r);
  if (sub->d != h.d || sub->ntotal != h.ntotal) r.corrupt("IndexBinaryFromFloat does not match its float index");
  auto idx = std::make_shared<IndexBinaryFromFloat>(sub);
  idx->is_trained = h.is_trained;
  return idx;
}

ANNVIL_REGISTER_INDEX_BINARY("BinaryFlat", read_flat);
ANNVIL_REGISTER_INDEX_BINARY("BinaryIDMap", read_idmap<IndexBinaryIDMap>);
ANNVIL_REGISTER_INDEX_BINARY("BinaryIDMap2", read_idmap<IndexBinaryIDMap2>);
ANNVIL_REGISTER_INDEX_BINARY("BinaryFromFloat", read_from_float);
}  // namespace

}  // namespace annvil
