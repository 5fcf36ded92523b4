// IndexBinaryIVF: training by k-means on the +-1 expansion, assignment,
// probed-list scans, the direct map and the index-file payload.
#include "binary/index_binary_ivf.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/topk.h"
#include "core/io.h"
#include "ivf/ivf_stats.h"
#include "core/parallel.h"

namespace annvil {

namespace {
constexpr size_t kBlock = 256;  // codes per kernel call
inline int64_t lo_build(size_t list, size_t offset) { return int64_t(list) << 32 | int64_t(offset); }
inline size_t lo_list(int64_t lo) { return size_t(lo >> 32); }
inline size_t lo_offset(int64_t lo) { return size_t(lo & 0xffffffff); }
}  // namespace

IndexBinaryIVF::IndexBinaryIVF(IndexBinaryPtr q, int d_, size_t nlist_)
    : IndexBinary(d_), quantizer(std::move(q)), nlist(nlist_) {
  ANNVIL_CHECK(quantizer != nullptr, "IndexBinaryIVF needs a binary quantizer");
  ANNVIL_CHECK(quantizer->d == d, "the quantizer has d=", quantizer->d, " but the index has d=", d);
  ANNVIL_CHECK(nlist > 0 && nlist < (size_t(1) << 31), "nlist must be in [1, 2^31), got ", nlist);
  invlists = std::make_shared<InvertedLists>(nlist, size_t(code_size));
  is_trained = quantizer->is_trained && size_t(quantizer->ntotal) == nlist;
  cp.niter = 10;
}

void IndexBinaryIVF::check_quantizer() const {
  ANNVIL_CHECK(size_t(quantizer->ntotal) == nlist, "the coarse quantizer holds ", quantizer->ntotal,
               " centroids but the index has nlist=", nlist, " (was the quantizer modified after training?)");
}

void IndexBinaryIVF::train(idx_t n, const uint8_t* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  if (!(quantizer->is_trained && size_t(quantizer->ntotal) == nlist)) {
    ANNVIL_CHECK(size_t(n) >= nlist, "IVF training needs at least nlist=", nlist, " vectors, got ", n,
                 ": pass more training vectors or use fewer lists");
    std::vector<float> xf(size_t(n) * d);
    binary_to_real(size_t(n), size_t(d), x, xf.data());
    ClusteringParameters p = cp;
    p.metric = METRIC_L2;
    Clustering clus(d, int(nlist), p);
    clus.train(n, xf.data());
    std::vector<uint8_t> centroids(nlist * size_t(code_size));
    real_to_binary(nlist, size_t(d), clus.centroids.data(), centroids.data());
    // only now touch the quantizer, so that a failed clustering leaves it as it was
    quantizer->reset();
    quantizer->add(idx_t(nlist), centroids.data());
    quantizer->is_trained = true;
  }
  is_trained = true;
}

void IndexBinaryIVF::add(idx_t n, const uint8_t* x) { add_with_ids(n, x, nullptr); }

void IndexBinaryIVF::add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  check_quantizer();
  if (n == 0) return;
  if (direct_map_type == DIRECT_MAP_ARRAY && ids)
    for (idx_t i = 0; i < n; ++i)
      ANNVIL_CHECK(ids[i] == ntotal + i, "an array direct map needs sequential ids (ntotal, ntotal + 1...); use ",
                   "set_direct_map_type(DirectMap.Hashtable) for arbitrary ids");
  std::vector<idx_t> list_nos(static_cast<size_t>(n));
  std::vector<int32_t> dis(static_cast<size_t>(n));
  quantizer->search(n, x, 1, dis.data(), list_nos.data());
  std::vector<idx_t> seq;
  if (!ids) {
    seq.resize(size_t(n));
    for (idx_t i = 0; i < n; ++i) seq[size_t(i)] = ntotal + i;
    ids = seq.data();
  }
  add_preassigned(n, x, list_nos.data(), ids);
}

void IndexBinaryIVF::add_preassigned(idx_t n, const uint8_t* x, const idx_t* list_nos, const idx_t* ids) {
  for (idx_t i = 0; i < n; ++i)
    ANNVIL_CHECK(list_nos[i] < idx_t(nlist), "list number ", list_nos[i], " out of range [0, ", nlist, ")");
  for (idx_t i = 0; i < n; ++i) {
    const idx_t l = list_nos[i];
    if (l < 0) continue;  // the quantizer found no list: not added, as Faiss
    const size_t off = invlists->add_entries(size_t(l), 1, ids + i, x + size_t(i) * code_size);
    const int64_t lo = lo_build(size_t(l), off);
    if (direct_map_type == DIRECT_MAP_ARRAY) {
      if (size_t(ids[i]) >= direct_map_array.size()) direct_map_array.resize(size_t(ids[i]) + 1, -1);
      direct_map_array[size_t(ids[i])] = lo;
    } else if (direct_map_type == DIRECT_MAP_HASHTABLE) {
      direct_map_hash[ids[i]] = lo;
    }
    ++ntotal;
  }
}

void IndexBinaryIVF::resolve_params(const SearchParameters* params, size_t* np, size_t* mc) const {
  *np = nprobe;
  *mc = max_codes;
  if (auto* p = dynamic_cast<const SearchParametersIVF*>(params)) {
    if (p->nprobe) *np = p->nprobe;
    if (p->max_codes) *mc = p->max_codes;
  }
  ANNVIL_CHECK(*np > 0, "nprobe is 0: set index.nprobe to at least 1 (or pass SearchParametersIVF(nprobe=...))");
  *np = std::min(*np, nlist);
}

void IndexBinaryIVF::coarse_search(idx_t n, const uint8_t* x, size_t np, const SearchParameters* params,
                                   std::vector<idx_t>& keys) const {
  keys.resize(size_t(n) * np);
  std::vector<int32_t> cdis(size_t(n) * np);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  if (n > 0) quantizer->search(n, x, idx_t(np), cdis.data(), keys.data(), quantizer_params_of(params));
  indexIVF_stats.quantization_ns +=
      uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count());
}

namespace {
// Scan one query's probed lists in order, at most mc codes in all (0: no
// limit), calling emit(dis, id) for every scanned code that the selector
// admits; adds the probed lists and scanned codes to *lists / *ndis.
template <class Emit>
void scan_probed(const InvertedLists& il, size_t nlist, const uint8_t* q, size_t cs, const idx_t* keys, size_t np,
                 size_t mc, const IDSelector* sel, const HammingKernels& K, int32_t* buf, uint64_t* lists,
                 uint64_t* ndis, Emit&& emit) {
  size_t visited = 0;
  for (size_t p = 0; p < np; ++p) {
    const idx_t l = keys[p];
    if (l < 0 || size_t(l) >= nlist) continue;
    ++*lists;
    size_t ls = il.list_size(size_t(l));
    if (mc) ls = std::min(ls, mc - visited);
    visited += ls;
    const uint8_t* codes = il.get_codes(size_t(l));
    const idx_t* ids = il.get_ids(size_t(l));
    if (sel) {
      for (size_t j = 0; j < ls; ++j) {
        if (!sel->is_member(ids[j])) continue;
        ++*ndis;
        emit(K.distance(q, codes + j * cs, cs), ids[j]);
      }
    } else {
      *ndis += ls;
      for (size_t b0 = 0; b0 < ls; b0 += kBlock) {
        const size_t m = std::min(kBlock, ls - b0);
        K.to_many(q, codes + b0 * cs, m, cs, buf);
        for (size_t j = 0; j < m; ++j) emit(buf[j], ids[b0 + j]);
      }
    }
    if (mc && visited >= mc) break;
  }
}
}  // namespace

void IndexBinaryIVF::search_preassigned(idx_t n, const uint8_t* x, idx_t k, const idx_t* keys, size_t np, size_t mc,
                                        const IDSelector* sel, int32_t* D, idx_t* I) const {
  const HammingKernels& K = hamming_kernels();
  const size_t cs = size_t(code_size);
  TopKArray heaps(static_cast<size_t>(n), static_cast<size_t>(k));
  uint64_t lists = 0, ndis = 0;
  ParallelErrors errors;  // selectors may throw
#pragma omp parallel if (n > 1) reduction(+ : lists, ndis)
  {
    int32_t buf[kBlock];
#pragma omp for schedule(dynamic, 4)
    for (idx_t i = 0; i < n; ++i)
      errors.run([&] {
        TopK& h = heaps[size_t(i)];
        scan_probed(*invlists, nlist, x + size_t(i) * cs, cs, keys + size_t(i) * np, np, mc, sel, K, buf, &lists, &ndis,
                    [&](int32_t dis, idx_t id) {
                      if (float(dis) <= h.threshold()) h.push(float(dis), id);
                    });
      });
  }
  errors.rethrow();
  indexIVF_stats.add(uint64_t(n), lists, ndis);
  for (idx_t i = 0; i < n; ++i) {
    TopK& h = heaps[size_t(i)];
    h.sort();
    for (idx_t j = 0; j < k; ++j) {
      const size_t o = size_t(i) * size_t(k) + size_t(j);
      D[o] = size_t(j) < h.size ? int32_t(h.keys[j]) : kHammingMissing;
      I[o] = size_t(j) < h.size ? h.ids[j] : -1;
    }
  }
}

void IndexBinaryIVF::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                            const SearchParameters* params) const {
  check_k(k);
  check_trained();
  check_quantizer();
  if (n <= 0) return;
  size_t np, mc;
  resolve_params(params, &np, &mc);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const idx_t bs = 8192;  // queries in chunks: coarse results and heaps stay bounded
  std::vector<idx_t> keys;
  for (idx_t i0 = 0; i0 < n; i0 += bs) {
    const idx_t m = std::min(bs, n - i0);
    const uint8_t* xq = x + size_t(i0) * code_size;
    coarse_search(m, xq, np, params, keys);
    search_preassigned(m, xq, k, keys.data(), np, mc, params ? params->sel : nullptr, D + size_t(i0) * k,
                       I + size_t(i0) * k);
  }
  indexIVF_stats.search_ns += uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count());
}

void IndexBinaryIVF::range_search_preassigned(idx_t n, const uint8_t* x, int radius, const idx_t* keys, size_t np,
                                              size_t mc, const IDSelector* sel, BinaryRangeResult* result) const {
  const HammingKernels& K = hamming_kernels();
  const size_t cs = size_t(code_size);
  BinaryHits hits(static_cast<size_t>(n));
  uint64_t lists = 0, ndis = 0;
  ParallelErrors errors;  // allocation of hits, selectors
#pragma omp parallel if (n > 1) reduction(+ : lists, ndis)
  {
    int32_t buf[kBlock];
#pragma omp for schedule(dynamic, 4)
    for (idx_t i = 0; i < n; ++i)
      errors.run([&] {
        auto& out = hits[size_t(i)];
        scan_probed(*invlists, nlist, x + size_t(i) * cs, cs, keys + size_t(i) * np, np, mc, sel, K, buf, &lists, &ndis,
                    [&](int32_t dis, idx_t id) {
                      if (dis < radius) out.emplace_back(dis, id);
                    });
      });
  }
  errors.rethrow();
  indexIVF_stats.add(uint64_t(n), lists, ndis);
  fill_binary_range_result(hits, result);
}

void IndexBinaryIVF::range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                                  const SearchParameters* params) const {
  check_trained();
  check_quantizer();
  size_t np, mc;
  resolve_params(params, &np, &mc);
  std::vector<idx_t> keys;
  coarse_search(n, x, np, params, keys);
  range_search_preassigned(n, x, radius, keys.data(), np, mc, params ? params->sel : nullptr, result);
}

void IndexBinaryIVF::reconstruct(idx_t key, uint8_t* out) const {
  int64_t lo = -1;
  if (direct_map_type == DIRECT_MAP_ARRAY) {
    if (key >= 0 && size_t(key) < direct_map_array.size()) lo = direct_map_array[size_t(key)];
  } else if (direct_map_type == DIRECT_MAP_HASHTABLE) {
    auto it = direct_map_hash.find(key);
    if (it != direct_map_hash.end()) lo = it->second;
  } else {
    ANNVIL_THROW(runtime, "IndexBinaryIVF.reconstruct needs a direct map: call index.make_direct_map() first ",
                 "(or set_direct_map_type(DirectMap.Hashtable) when ids are not sequential)");
  }
  ANNVIL_CHECK(lo >= 0, "id ", key, " is not in the index");
  std::memcpy(out, invlists->get_codes(lo_list(lo)) + lo_offset(lo) * code_size, size_t(code_size));
}

void IndexBinaryIVF::reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  std::memset(out, 0, size_t(ni) * code_size);
  for (size_t l = 0; l < nlist; ++l) {
    const idx_t* ids = invlists->get_ids(l);
    for (size_t o = 0; o < invlists->list_size(l); ++o)
      if (ids[o] >= i0 && ids[o] < i0 + ni)
        std::memcpy(out + size_t(ids[o] - i0) * code_size, invlists->get_codes(l) + o * code_size, size_t(code_size));
  }
}

void IndexBinaryIVF::rebuild_direct_map() {
  direct_map_array.clear();
  direct_map_hash.clear();
  if (direct_map_type == DIRECT_MAP_NONE) return;
  if (direct_map_type == DIRECT_MAP_ARRAY) direct_map_array.assign(size_t(ntotal), -1);
  for (size_t l = 0; l < nlist; ++l) {
    const idx_t* ids = invlists->get_ids(l);
    for (size_t o = 0; o < invlists->list_size(l); ++o) {
      const int64_t lo = lo_build(l, o);
      if (direct_map_type == DIRECT_MAP_ARRAY) {
        ANNVIL_CHECK(ids[o] >= 0 && ids[o] < ntotal && direct_map_array[size_t(ids[o])] == -1,
                     "an array direct map needs the ids 0 .. ntotal - 1 (found id ", ids[o],
                     "); use set_direct_map_type(DirectMap.Hashtable)");
        direct_map_array[size_t(ids[o])] = lo;
      } else {
        direct_map_hash[ids[o]] = lo;
      }
    }
  }
}

void IndexBinaryIVF::set_direct_map_type(int type) {
  ANNVIL_CHECK(type == DIRECT_MAP_NONE || type == DIRECT_MAP_ARRAY || type == DIRECT_MAP_HASHTABLE,
               "unknown direct map type ", type, " (DirectMap.NoMap, .Array or .Hashtable)");
  const int old = direct_map_type;
  direct_map_type = type;
  try {
    rebuild_direct_map();
  } catch (...) {
    direct_map_type = old;
    rebuild_direct_map();
    throw;
  }
}

void IndexBinaryIVF::make_direct_map(bool on) { set_direct_map_type(on ? DIRECT_MAP_ARRAY : DIRECT_MAP_NONE); }

size_t IndexBinaryIVF::get_list_size(size_t l) const {
  invlists->check_list(l);
  return invlists->list_size(l);
}

size_t IndexBinaryIVF::remove_ids(const IDSelector& sel) {
  ANNVIL_CHECK(direct_map_type != DIRECT_MAP_ARRAY,
               "remove_ids is not supported with an array direct map; use set_direct_map_type(DirectMap.Hashtable)");
  const size_t removed = invlists->remove_ids(sel);
  ntotal -= idx_t(removed);
  if (removed) rebuild_direct_map();
  return removed;
}

void IndexBinaryIVF::merge_from(IndexBinaryIVF& other, idx_t add_id) {
  ANNVIL_CHECK(&other != this, "cannot merge an index into itself");
  ANNVIL_CHECK(other.d == d && other.nlist == nlist, "merge_from: the indexes differ in d or nlist");
  ANNVIL_CHECK(direct_map_type == DIRECT_MAP_NONE && other.direct_map_type == DIRECT_MAP_NONE,
               "merge_from is not supported with direct maps");
  invlists->merge_from(*other.invlists, add_id);
  ntotal += other.ntotal;
  other.ntotal = 0;
}

void IndexBinaryIVF::reset() {
  invlists->reset();
  direct_map_array.clear();
  direct_map_hash.clear();
  ntotal = 0;
}

size_t IndexBinaryIVF::memory_usage() const {
  return sizeof(*this) + quantizer->memory_usage() + invlists->memory_usage() +
         direct_map_array.capacity() * sizeof(int64_t) + direct_map_hash.size() * 32;
}

void IndexBinaryIVF::write_payload(Writer& w) const {
  write_binary_header(w, *this);
  write_index_binary_record(*quantizer, w);
  w.write<uint64_t>(nlist);
  w.write<uint64_t>(nprobe);
  w.write<uint64_t>(max_codes);
  w.write<int32_t>(direct_map_type);
  std::vector<uint64_t> sizes(nlist);
  std::vector<idx_t> ids;
  std::vector<uint8_t> codes;
  for (size_t l = 0; l < nlist; ++l) {
    sizes[l] = invlists->list_size(l);
    ids.insert(ids.end(), invlists->ids[l].begin(), invlists->ids[l].end());
    codes.insert(codes.end(), invlists->codes[l].begin(), invlists->codes[l].end());
  }
  w.write_vector(sizes);
  w.write_vector(ids);
  w.write_vector(codes);
}

namespace {
IndexBinaryPtr read_ivf(Reader& r) {
  BinaryHeader h = read_binary_header(r);
  IndexBinaryPtr q = read_index_binary_record(r);
  if (q->d != h.d) r.corrupt("binary IVF quantizer dimension differs from the index");
  const size_t nlist = r.read_count(size_t(1) << 31, "nlist");
  if (nlist == 0) r.corrupt("nlist is 0");
  auto idx = std::make_shared<IndexBinaryIVF>(q, h.d, nlist);
  idx->nprobe = r.read_count(size_t(1) << 40, "nprobe");
  idx->max_codes = r.read_count(size_t(1) << 62, "max_codes");
  const int32_t dm = r.read<int32_t>();
  if (dm < DIRECT_MAP_NONE || dm > DIRECT_MAP_HASHTABLE) r.corrupt("bad direct map type");
  std::vector<uint64_t> sizes;
  std::vector<idx_t> ids;
  std::vector<uint8_t> codes;
  r.read_vector(sizes);
  r.read_vector(ids);
  r.read_vector(codes);
  if (sizes.size() != nlist) r.corrupt("wrong number of inverted lists");
  size_t tot = 0;
  for (auto s : sizes) {
    if (s > ids.size()) r.corrupt("inverted list size out of range");
    tot += s;
  }
  const size_t cs = size_t(idx->code_size);
  if (tot != ids.size() || tot != size_t(h.ntotal) || codes.size() != tot * cs)
    r.corrupt("inverted list sizes do not match ntotal");
  size_t o = 0;
  for (size_t l = 0; l < nlist; ++l) {
    idx->invlists->add_entries(l, sizes[l], ids.data() + o, codes.data() + o * cs);
    o += sizes[l];
  }
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  try {
    idx->set_direct_map_type(dm);
  } catch (const Error&) {
    r.corrupt("ids do not fit the stored direct map type");
  }
  return idx;
}
ANNVIL_REGISTER_INDEX_BINARY("BinaryIVF", read_ivf);
}  // namespace

}  // namespace annvil
