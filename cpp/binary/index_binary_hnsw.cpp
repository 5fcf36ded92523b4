// IndexBinaryHNSW: adds link codes into the graph, searches walk it.
#include "binary/index_binary_hnsw.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/io.h"
#include "core/parallel.h"

namespace annvil {

IndexBinaryHNSW::IndexBinaryHNSW(int d_, int M) : IndexBinary(d_), hnsw(M) {
  ANNVIL_CHECK(M >= 2 && M <= 4096, "HNSW M must be in [2, 4096], got ", M);
}

void IndexBinaryHNSW::add(idx_t n, const uint8_t* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative, got ", n);
  if (n == 0) return;
  ANNVIL_CHECK(ntotal + n < idx_t(std::numeric_limits<int32_t>::max()), "IndexBinaryHNSW holds at most 2^31 - 1 codes");
  auto& v = codes.mut();
  v.insert(v.end(), x, x + size_t(n) * code_size);
  hnsw.grow(size_t(n));
  std::vector<int32_t> nodes(static_cast<size_t>(n));
  for (idx_t i = 0; i < n; ++i) nodes[size_t(i)] = int32_t(ntotal + i);
  ntotal += n;
  hnsw.insert(space(), nodes);
}

void IndexBinaryHNSW::search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                             const SearchParameters* params) const {
  check_k(k);
  int ef = hnsw.efSearch;
  const IDSelector* sel = params ? params->sel : nullptr;
  if (auto p = dynamic_cast<const SearchParametersHNSW*>(params)) {
    ANNVIL_CHECK(p->efSearch >= 0, "efSearch must be positive, got ", p->efSearch);
    if (p->efSearch > 0) ef = p->efSearch;
  }
  ANNVIL_CHECK(ef > 0, "efSearch must be positive, got ", ef);
  std::fill(D, D + size_t(n) * size_t(k), kHammingMissing);
  std::fill(I, I + size_t(n) * size_t(k), idx_t(-1));
  if (n == 0 || ntotal == 0) return;
  ef = int(std::max<idx_t>(ef, k));
  const HammingSpace sp = space();
  const HnswAdmitFn admit{nullptr, sel};
  const size_t cs = size_t(code_size);
  ParallelErrors errors;  // scratch growth, selectors
#pragma omp parallel if (n > 1)
  {
    HnswScratch& S = hnsw_scratch();
#pragma omp for schedule(dynamic, 1)
    for (idx_t q = 0; q < n; ++q)
      errors.run([&] {
        const float* xq = sp.prepare(reinterpret_cast<const float*>(x + size_t(q) * cs), S.qprep);
        int32_t ep = hnsw.entry_point;
        float ep_d = sp.to_query(xq, ep);
        hnsw.descend(sp, xq, &ep, &ep_d, 0);
        if (sel)
          hnsw_search_level0(hnsw, sp, S, xq, ep, ep_d, ef, admit, S.res);
        else
          hnsw_search_level0(hnsw, sp, S, xq, ep, ep_d, ef, HnswAdmitAll{}, S.res);
        std::vector<HnswCand>& res = S.res;
        std::sort(res.begin(), res.end(),
                  [](const HnswCand& a, const HnswCand& b) { return a.d < b.d || (a.d == b.d && a.id < b.id); });
        const size_t m = std::min(res.size(), size_t(k));
        for (size_t j = 0; j < m; ++j) {
          D[size_t(q) * k + j] = int32_t(res[j].d);
          I[size_t(q) * k + j] = res[j].id;
        }
      });
  }
  errors.rethrow();
}

void IndexBinaryHNSW::range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                                   const SearchParameters* params) const {
  int ef = hnsw.efSearch;
  if (auto p = dynamic_cast<const SearchParametersHNSW*>(params))
    if (p->efSearch > 0) ef = p->efSearch;
  const idx_t k = std::max<idx_t>(1, std::min<idx_t>(ef, std::max<idx_t>(ntotal, 1)));
  std::vector<int32_t> D(size_t(n) * size_t(k));
  std::vector<idx_t> I(size_t(n) * size_t(k));
  search(n, x, k, D.data(), I.data(), params);
  BinaryHits hits(static_cast<size_t>(n));
  for (idx_t q = 0; q < n; ++q)
    for (idx_t j = 0; j < k; ++j) {
      const size_t o = size_t(q * k + j);
      if (I[o] >= 0 && D[o] < radius) hits[size_t(q)].emplace_back(D[o], I[o]);
    }
  fill_binary_range_result(hits, result);
}

void IndexBinaryHNSW::reconstruct(idx_t key, uint8_t* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "id ", key, " out of range [0, ", ntotal, ")");
  std::memcpy(out, codes.data() + size_t(key) * code_size, size_t(code_size));
}

void IndexBinaryHNSW::reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  if (ni) std::memcpy(out, codes.data() + size_t(i0) * code_size, size_t(ni) * code_size);
}

void IndexBinaryHNSW::reset() {
  codes.clear();
  hnsw.clear();
  ntotal = 0;
}

size_t IndexBinaryHNSW::memory_usage() const { return sizeof(*this) + codes.capacity_bytes() + hnsw.memory_usage(); }

void IndexBinaryHNSW::write_payload(Writer& w) const {
  write_binary_header(w, *this);
  w.write<int32_t>(hnsw.M);
  write_hnsw_graph(w, hnsw);
  w.write_storage(codes);
}

namespace {
IndexBinaryPtr read_binary_hnsw(Reader& r) {
  BinaryHeader h = read_binary_header(r);
  const int32_t M = r.read<int32_t>();
  if (M < 2 || M > 4096) r.corrupt("bad HNSW M");
  if (h.ntotal >= idx_t(std::numeric_limits<int32_t>::max())) r.corrupt("bad HNSW ntotal");
  auto idx = std::make_shared<IndexBinaryHNSW>(h.d, M);
  read_hnsw_graph(r, idx->hnsw);
  r.read_storage(idx->codes);
  const size_t N = size_t(h.ntotal);
  if (idx->codes.size() != N * size_t(idx->code_size)) r.corrupt("binary HNSW codes do not match ntotal");
  check_hnsw_graph(r, idx->hnsw, N);
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  return idx;
}
ANNVIL_REGISTER_INDEX_BINARY("BinaryHNSW", read_binary_hnsw);
}  // namespace

}  // namespace annvil
