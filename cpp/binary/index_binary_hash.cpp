// IndexBinaryHash / IndexBinaryMultiHash: bucket keys, the enumeration of
// keys within nflip bit flips, searches and index-file payloads.
#include "binary/index_binary_hash.h"

#include <algorithm>
#include <cstring>

#include "core/topk.h"
#include "core/io.h"
#include "core/parallel.h"

namespace annvil {

IndexBinaryHashStats indexBinaryHash_stats;

uint64_t binary_hash_key(const uint8_t* code, size_t first, int b) {
  uint64_t key = 0;
  for (int j = 0; j < b; ++j) {
    const size_t bit = first + size_t(j);
    key |= uint64_t((code[bit >> 3] >> (bit & 7)) & 1) << j;
  }
  return key;
}

namespace {

// Calls f(key ^ mask) for every mask of b bits with at most nflip bits set,
// by increasing number of flips (masks of r bits in Gosper's order).
template <class F>
void for_each_flip(uint64_t key, int b, int nflip, F&& f) {
  const int top = std::min(nflip, b);
  const uint64_t limit = uint64_t(1) << b;
  for (int r = 0; r <= top; ++r) {
    uint64_t m = r == 0 ? 0 : (uint64_t(1) << r) - 1;
    for (;;) {
      f(key ^ m);
      if (m == 0) break;
      // next larger integer with the same popcount
      const uint64_t c = m & (0 - m), rr = m + c;
      m = (((rr ^ m) >> 2) / c) | rr;
      if (m >= limit) break;
    }
  }
}

void check_hash_bits(int d, int b, int nhash) {
  ANNVIL_CHECK(b > 0 && b <= 63, "b (bits per hash key) must be in [1, 63], got ", b);
  ANNVIL_CHECK(nhash > 0, "nhash must be positive, got ", nhash);
  ANNVIL_CHECK(int64_t(nhash) * b <= d, "nhash * b = ", int64_t(nhash) * b, " bits do not fit in the d=", d,
               " bits of a code");
}

void write_sorted_heaps(TopKArray& heaps, int32_t* D, idx_t* I) {
  const size_t k = heaps.k;
  for (size_t q = 0; q < heaps.nq; ++q) {
    TopK& h = heaps[q];
    h.sort();
    for (size_t i = 0; i < k; ++i) {
      D[q * k + i] = i < h.size ? int32_t(h.keys[i]) : kHammingMissing;
      I[q * k + i] = i < h.size ? h.ids[i] : -1;
    }
  }
}

}  // namespace

// ---- IndexBinaryHash ----------------------------------------------------------------
IndexBinaryHash::IndexBinaryHash(int d_, int b_) : IndexBinary(d_), b(b_) { check_hash_bits(d_, b_, 1); }

void IndexBinaryHash::add(idx_t n, const uint8_t* x) {
  std::vector<idx_t> ids(static_cast<size_t>(n));
  for (idx_t i = 0; i < n; ++i) ids[size_t(i)] = ntotal + i;
  add_with_ids(n, x, ids.data());
}

void IndexBinaryHash::add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  const size_t cs = size_t(code_size);
  for (idx_t i = 0; i < n; ++i) {
    const uint8_t* c = x + size_t(i) * cs;
    Bucket& bk = invlists[binary_hash_key(c, 0, b)];
    bk.ids.push_back(ids[i]);
    bk.codes.insert(bk.codes.end(), c, c + cs);
  }
  ntotal += n;
}

namespace {
// every code in the buckets reached from q: emit(distance, id)
template <class Emit>
void scan_hash(const IndexBinaryHash& idx, const uint8_t* q, const IDSelector* sel, const HammingKernels& K,
               uint64_t* lookups, uint64_t* lists, uint64_t* ndis, Emit&& emit) {
  const size_t cs = size_t(idx.code_size);
  for_each_flip(binary_hash_key(q, 0, idx.b), idx.b, idx.nflip, [&](uint64_t key) {
    ++*lookups;
    auto it = idx.invlists.find(key);
    if (it == idx.invlists.end()) return;
    ++*lists;
    const auto& bk = it->second;
    for (size_t j = 0; j < bk.ids.size(); ++j) {
      if (sel && !sel->is_member(bk.ids[j])) continue;
      ++*ndis;
      emit(K.distance(q, bk.codes.data() + j * cs, cs), bk.ids[j]);
    }
  });
}
}  // namespace

void IndexBinaryHash::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                             const SearchParameters* params) const {
  check_k(k);
  const HammingKernels& K = hamming_kernels();
  const IDSelector* sel = params ? params->sel : nullptr;
  TopKArray heaps(static_cast<size_t>(n), static_cast<size_t>(k));
  uint64_t lookups = 0, lists = 0, ndis = 0;
  ParallelErrors errors;  // allocations, selectors
#pragma omp parallel for schedule(dynamic, 4) if (n > 1) reduction(+ : lookups, lists, ndis)
  for (idx_t i = 0; i < n; ++i)
    errors.run([&] {
      TopK& h = heaps[size_t(i)];
      scan_hash(*this, x + size_t(i) * code_size, sel, K, &lookups, &lists, &ndis,
                [&](int dis, idx_t id) { h.push(float(dis), id); });
    });
  errors.rethrow();
  indexBinaryHash_stats.add(uint64_t(n), lookups, lists, ndis);
  write_sorted_heaps(heaps, D, I);
}

void IndexBinaryHash::range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                                   const SearchParameters* params) const {
  const HammingKernels& K = hamming_kernels();
  const IDSelector* sel = params ? params->sel : nullptr;
  BinaryHits hits(static_cast<size_t>(n));
  uint64_t lookups = 0, lists = 0, ndis = 0;
  ParallelErrors errors;  // allocations, selectors
#pragma omp parallel for schedule(dynamic, 4) if (n > 1) reduction(+ : lookups, lists, ndis)
  for (idx_t i = 0; i < n; ++i)
    errors.run([&] {
      auto& out = hits[size_t(i)];
      scan_hash(*this, x + size_t(i) * code_size, sel, K, &lookups, &lists, &ndis, [&](int dis, idx_t id) {
        if (dis < radius) out.emplace_back(dis, id);
      });
    });
  errors.rethrow();
  indexBinaryHash_stats.add(uint64_t(n), lookups, lists, ndis);
  fill_binary_range_result(hits, result);
}

void IndexBinaryHash::reset() {
  invlists.clear();
  ntotal = 0;
}

size_t IndexBinaryHash::memory_usage() const {
  size_t s = sizeof(*this);
  for (const auto& [key, bk] : invlists) s += 64 + bk.ids.capacity() * sizeof(idx_t) + bk.codes.capacity();
  return s;
}

void IndexBinaryHash::write_payload(Writer& w) const {
  write_binary_header(w, *this);
  w.write<int32_t>(b);
  w.write<int32_t>(nflip);
  // buckets in key order, so that the same index always writes the same bytes
  std::vector<uint64_t> keys;
  keys.reserve(invlists.size());
  for (const auto& kv : invlists) keys.push_back(kv.first);
  std::sort(keys.begin(), keys.end());
  std::vector<uint64_t> sizes;
  std::vector<idx_t> ids;
  std::vector<uint8_t> codes;
  for (uint64_t key : keys) {
    const Bucket& bk = invlists.at(key);
    sizes.push_back(bk.ids.size());
    ids.insert(ids.end(), bk.ids.begin(), bk.ids.end());
    codes.insert(codes.end(), bk.codes.begin(), bk.codes.end());
  }
  w.write_vector(keys);
  w.write_vector(sizes);
  w.write_vector(ids);
  w.write_vector(codes);
}

// ---- IndexBinaryMultiHash -----------------------------------------------------------
IndexBinaryMultiHash::IndexBinaryMultiHash(int d_, int nhash_, int b_)
    : IndexBinary(d_), storage(std::make_shared<IndexBinaryFlat>(d_)), nhash(nhash_), b(b_) {
  check_hash_bits(d_, b_, nhash_);
  maps.resize(size_t(nhash));
}

void IndexBinaryMultiHash::add(idx_t n, const uint8_t* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  storage->add(n, x);
  for (idx_t i = 0; i < n; ++i) {
    const uint8_t* c = x + size_t(i) * code_size;
    for (int h = 0; h < nhash; ++h) maps[size_t(h)][binary_hash_key(c, size_t(h) * size_t(b), b)].push_back(ntotal + i);
  }
  ntotal += n;
}

void IndexBinaryMultiHash::candidates(const uint8_t* q, std::vector<idx_t>& out, uint64_t* lookups,
                                      uint64_t* lists) const {
  out.clear();
  for (int h = 0; h < nhash; ++h) {
    const auto& map = maps[size_t(h)];
    for_each_flip(binary_hash_key(q, size_t(h) * size_t(b), b), b, nflip, [&](uint64_t key) {
      ++*lookups;
      auto it = map.find(key);
      if (it == map.end()) return;
      ++*lists;
      out.insert(out.end(), it->second.begin(), it->second.end());
    });
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

void IndexBinaryMultiHash::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                                  const SearchParameters* params) const {
  check_k(k);
  const HammingKernels& K = hamming_kernels();
  const IDSelector* sel = params ? params->sel : nullptr;
  const size_t cs = size_t(code_size);
  const uint8_t* base = storage->xb.data();
  TopKArray heaps(static_cast<size_t>(n), static_cast<size_t>(k));
  uint64_t lookups = 0, lists = 0, ndis = 0;
  ParallelErrors errors;  // allocations, selectors
#pragma omp parallel if (n > 1) reduction(+ : lookups, lists, ndis)
  {
    std::vector<idx_t> cand;
#pragma omp for schedule(dynamic, 4)
    for (idx_t i = 0; i < n; ++i)
      errors.run([&] {
        const uint8_t* q = x + size_t(i) * cs;
        candidates(q, cand, &lookups, &lists);
        TopK& h = heaps[size_t(i)];
        for (idx_t id : cand) {
          if (sel && !sel->is_member(id)) continue;
          ++ndis;
          h.push(float(K.distance(q, base + size_t(id) * cs, cs)), id);
        }
      });
  }
  errors.rethrow();
  indexBinaryHash_stats.add(uint64_t(n), lookups, lists, ndis);
  write_sorted_heaps(heaps, D, I);
}

void IndexBinaryMultiHash::range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                                        const SearchParameters* params) const {
  const HammingKernels& K = hamming_kernels();
  const IDSelector* sel = params ? params->sel : nullptr;
  const size_t cs = size_t(code_size);
  const uint8_t* base = storage->xb.data();
  BinaryHits hits(static_cast<size_t>(n));
  uint64_t lookups = 0, lists = 0, ndis = 0;
  ParallelErrors errors;  // allocations, selectors
#pragma omp parallel if (n > 1) reduction(+ : lookups, lists, ndis)
  {
    std::vector<idx_t> cand;
#pragma omp for schedule(dynamic, 4)
    for (idx_t i = 0; i < n; ++i)
      errors.run([&] {
        const uint8_t* q = x + size_t(i) * cs;
        candidates(q, cand, &lookups, &lists);
        for (idx_t id : cand) {
          if (sel && !sel->is_member(id)) continue;
          ++ndis;
          const int dis = K.distance(q, base + size_t(id) * cs, cs);
          if (dis < radius) hits[size_t(i)].emplace_back(dis, id);
        }
      });
  }
  errors.rethrow();
  indexBinaryHash_stats.add(uint64_t(n), lookups, lists, ndis);
  fill_binary_range_result(hits, result);
}

void IndexBinaryMultiHash::reset() {
  storage->reset();
  for (auto& m : maps) m.clear();
  ntotal = 0;
}

size_t IndexBinaryMultiHash::hashtable_size() const {
  size_t s = 0;
  for (const auto& m : maps) s += m.size();
  return s;
}

size_t IndexBinaryMultiHash::memory_usage() const {
  size_t s = sizeof(*this) + storage->memory_usage();
  for (const auto& m : maps)
    for (const auto& kv : m) s += 48 + kv.second.capacity() * sizeof(idx_t);
  return s;
}

void IndexBinaryMultiHash::write_payload(Writer& w) const {
  // the tables are a function of the codes: store the codes and rebuild them
  write_binary_header(w, *this);
  w.write<int32_t>(nhash);
  w.write<int32_t>(b);
  w.write<int32_t>(nflip);
  write_index_binary_record(*storage, w);
}

namespace {
IndexBinaryPtr read_hash(Reader& r) {
  BinaryHeader h = read_binary_header(r);
  const int32_t b = r.read<int32_t>(), nflip = r.read<int32_t>();
  if (b <= 0 || b > 63 || b > h.d || nflip < 0) r.corrupt("bad binary hash parameters");
  auto idx = std::make_shared<IndexBinaryHash>(h.d, b);
  idx->nflip = nflip;
  std::vector<uint64_t> keys, sizes;
  std::vector<idx_t> ids;
  std::vector<uint8_t> codes;
  r.read_vector(keys);
  r.read_vector(sizes);
  r.read_vector(ids);
  r.read_vector(codes);
  const size_t cs = size_t(idx->code_size);
  if (keys.size() != sizes.size()) r.corrupt("binary hash bucket arrays differ in length");
  size_t tot = 0;
  for (auto s : sizes) {
    if (s > ids.size()) r.corrupt("binary hash bucket size out of range");
    tot += s;
  }
  if (tot != ids.size() || tot != size_t(h.ntotal) || codes.size() != tot * cs)
    r.corrupt("binary hash buckets do not match ntotal");
  size_t o = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] >> b) r.corrupt("binary hash key out of range");
    auto& bk = idx->invlists[keys[i]];
    bk.ids.assign(ids.begin() + ptrdiff_t(o), ids.begin() + ptrdiff_t(o + sizes[i]));
    bk.codes.assign(codes.begin() + ptrdiff_t(o * cs), codes.begin() + ptrdiff_t((o + sizes[i]) * cs));
    o += sizes[i];
  }
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  return idx;
}

IndexBinaryPtr read_multihash(Reader& r) {
  BinaryHeader h = read_binary_header(r);
  const int32_t nhash = r.read<int32_t>(), b = r.read<int32_t>(), nflip = r.read<int32_t>();
  if (b <= 0 || b > 63 || nhash <= 0 || int64_t(nhash) * b > h.d || nflip < 0)
    r.corrupt("bad binary multi-hash parameters");
  IndexBinaryPtr st = read_index_binary_record(r);
  auto flat = std::dynamic_pointer_cast<IndexBinaryFlat>(st);
  if (!flat || flat->d != h.d || flat->ntotal != h.ntotal) r.corrupt("binary multi-hash storage does not match");
  auto idx = std::make_shared<IndexBinaryMultiHash>(h.d, nhash, b);
  idx->nflip = nflip;
  idx->add(flat->ntotal, flat->xb.data());
  idx->is_trained = h.is_trained;
  return idx;
}

ANNVIL_REGISTER_INDEX_BINARY("BinaryHash", read_hash);
ANNVIL_REGISTER_INDEX_BINARY("BinaryMultiHash", read_multihash);
}  // namespace

}  // namespace annvil
