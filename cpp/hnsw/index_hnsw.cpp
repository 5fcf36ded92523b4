// IndexHNSW: vectors + HNSW graph, tombstone deletes, the filtered-search
// planner, and the index-file payload.
#include "hnsw/index_hnsw.h"
#include "core/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>

#include "core/code_rows.h"
#include "core/topk.h"
#include "hnsw/hnsw_codes.h"
#include "core/io.h"
#include "distances/knn.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace annvil {

namespace {

inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void sort_cands(std::vector<HnswCand>& v) {
  std::sort(v.begin(), v.end(),
            [](const HnswCand& a, const HnswCand& b) { return a.d < b.d || (a.d == b.d && a.id < b.id); });
}

// Move a large array into memory backed by 2 MB transparent huge pages.
// Search touches vectors and neighbour lists at random: with 4 KB pages
// nearly every access is also a TLB miss once the index outgrows the TLB's
// reach (a few MB), which costs as much as the cache miss itself.
template <class T>
void to_huge_pages(Storage<T>& s) {
  s.to_huge_pages();
}

// bytes of an array whether owned, on huge pages (a view we own) or mapped
template <class T>
size_t array_bytes(const Storage<T>& s) {
  return s.is_view() ? s.size() * sizeof(T) : s.capacity_bytes();
}

}  // namespace

IndexHNSW::IndexHNSW(int d_, int M, MetricType metric, bool extra_metrics) : Index(d_, metric, extra_metrics), hnsw(M) {
  if (is_extra_metric(metric)) allow_f16 = false;  // the half kernels are L2 / IP only
  hnsw.is_similarity = is_similarity_metric(metric);
}

void IndexHNSW::add(idx_t n, const float* x) { add_slots(n, x, nullptr); }

void IndexHNSW::add_slots(idx_t n, const float* x, idx_t* ids) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative, got ", n);
  if (n == 0) return;
  // every check first, so that a failed call leaves the index unchanged
  std::vector<int32_t> reuse;
  if (replace_deleted && n_deleted) {
    for (idx_t i = 0; i < ntotal && idx_t(reuse.size()) < n; ++i)
      if (is_deleted(i)) reuse.push_back(int32_t(i));
  }
  const idx_t n_new = n - idx_t(reuse.size());
  ANNVIL_CHECK(ntotal + n_new < idx_t(std::numeric_limits<int32_t>::max()), "IndexHNSW holds at most 2^31 - 1 vectors");

  // storage format (see index_hnsw.h): halves while everything is exact
  const HnswF16Kernels& hk = hnsw_f16_kernels();
  std::vector<uint16_t> codes;
  bool new_f16 = false;
  if (allow_f16 && (ntotal == 0 || is_f16)) {
    codes.resize(size_t(n) * d);
    new_f16 = hk.encode_exact(x, size_t(n) * d, codes.data());
    if (!new_f16) std::vector<uint16_t>().swap(codes);
  }
  if (ntotal == 0) {
    is_f16 = new_f16;
  } else if (is_f16 && !new_f16) {
    xb.clear();
    xb.append_fill(size_t(ntotal) * d, 0.f);
    hk.decode(xh.data(), size_t(ntotal) * d, xb.writable());
    xh.clear();
    is_f16 = false;
  }

  std::vector<int32_t> nodes;
  nodes.reserve(size_t(n));
  const HNSW::Mark mark = hnsw.mark();
  const idx_t n0 = ntotal;
  for (size_t i = 0; i < reuse.size(); ++i) {
    int32_t s = reuse[i];
    if (is_f16)
      std::memcpy(xh.writable() + size_t(s) * d, codes.data() + i * size_t(d), sizeof(uint16_t) * d);
    else
      std::memcpy(xb.writable() + size_t(s) * d, x + i * size_t(d), sizeof(float) * d);
    deleted[size_t(s) >> 6] &= ~(uint64_t(1) << (s & 63));
    --n_deleted;
    nodes.push_back(s);
    if (ids) ids[i] = s;
  }
  if (n_new > 0) {
    const size_t off = reuse.size() * size_t(d);
    if (is_f16)
      xh.append(codes.data() + off, size_t(n_new) * d);
    else
      xb.append(x + off, size_t(n_new) * d);
    hnsw.grow(size_t(n_new));
    for (idx_t i = 0; i < n_new; ++i) {
      nodes.push_back(int32_t(ntotal + i));
      if (ids) ids[reuse.size() + size_t(i)] = ntotal + i;
    }
    ntotal += n_new;
    deleted.resize((size_t(ntotal) + 63) / 64, 0);
  }
  try {
    hnsw.insert(space(), nodes);
  } catch (...) {
    rollback_add(mark, n0, reuse);
    if (is_f16)
      xh.truncate(size_t(n0) * d);
    else
      xb.truncate(size_t(n0) * d);
    throw;
  }
  // Large arrays already grew on huge pages (Storage::append); this moves
  // the ones that are still ordinary vectors (none after an append, but a
  // compacted index) and is a no-op otherwise.
  to_huge_pages_after_add();
}

void IndexHNSW::rollback_add(const HNSW::Mark& mark, idx_t n0, const std::vector<int32_t>& reused) {
  hnsw.rollback(mark);
  ntotal = n0;
  deleted.resize((size_t(n0) + 63) / 64);
  if (n0 % 64) deleted.back() &= (uint64_t(1) << (n0 % 64)) - 1;
  for (int32_t s : reused) {
    deleted[size_t(s) >> 6] |= uint64_t(1) << (s & 63);
    ++n_deleted;
  }
}

void IndexHNSW::to_huge_pages_after_add() {
  to_huge_pages(xb);
  to_huge_pages(xh);
  to_huge_pages(hnsw.links0);
}

void hnsw_to_huge_pages(Storage<uint8_t>& s) { to_huge_pages(s); }

void IndexHNSW::row_f32(idx_t i, float* out) const {
  if (is_f16)
    hnsw_f16_kernels().decode(xh.data() + size_t(i) * d, size_t(d), out);
  else
    std::memcpy(out, xb.data() + size_t(i) * d, sizeof(float) * d);
}

double IndexHNSW::admitted_fraction(const IDSelector* sel) const {
  if (ntotal == 0) return 0.0;
  if (!sel) return double(ntotal - idx_t(n_deleted)) / double(ntotal);
  HnswAdmitFn admit{n_deleted ? deleted.data() : nullptr, sel};
  if (ntotal <= 2048) {
    idx_t c = 0;
    for (idx_t i = 0; i < ntotal; ++i) c += admit(int32_t(i));
    return double(c) / double(ntotal);
  }
  // one random slot in each of 1024 equal strata: deterministic, and immune
  // to selections that are periodic in the id (e.g. every 10th id)
  const int S = 1024;
  int c = 0;
  for (int i = 0; i < S; ++i) {
    double u = double(mix64(uint64_t(i)) >> 11) * (1.0 / 9007199254740992.0);
    idx_t pos = std::min<idx_t>(ntotal - 1, idx_t((double(i) + u) * double(ntotal) / S));
    c += admit(int32_t(pos));
  }
  return double(c) / S;
}

void IndexHNSW::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_k(k);
  int ef = hnsw.efSearch;
  const IDSelector* sel = nullptr;
  if (params) {
    sel = params->sel;
    if (auto p = dynamic_cast<const SearchParametersHNSW*>(params)) {
      ANNVIL_CHECK(p->efSearch >= 0, "efSearch must be positive, got ", p->efSearch);
      if (p->efSearch > 0) ef = p->efSearch;
    }
  }
  ANNVIL_CHECK(ef > 0, "efSearch must be positive, got ", ef);
  const bool sim = is_similarity_metric(metric_type);
  const float pad = missing_result_distance(metric_type);
  std::fill(D, D + size_t(n) * size_t(k), pad);
  std::fill(I, I + size_t(n) * size_t(k), idx_t(-1));
  if (n == 0 || ntotal == 0) return;
  ef = int(std::max<idx_t>(ef, k));

  const bool filtered = sel != nullptr || n_deleted > 0;
  double f = 1.0;
  if (filtered) {
    f = admitted_fraction(sel);
    // Planner.  A filtered graph search keeps expanding until it holds ef'
    // admitted results (ef' = max(ef, k / f), see below), so it visits about
    // ef' / f nodes and computes up to 2M distances at each (random memory
    // access); an exact scan of the admitted vectors costs f * N distances
    // (streamed through the panel kernel, cheaper per distance).  Equating
    // 2M * ef' / f with f * N gives the crossover f^2 * N = 2M * ef': below
    // it the exact scan is both cheaper and exact, above it the graph wins.
    // For N = 1M, M = 32, ef = 64 that is f ~ 6%; small indexes (N = 10k)
    // scan up to f ~ 60%.  f is counted exactly up to 2048 slots, else
    // estimated from 1024 stratified samples (admitted_fraction).
    const double ef_eff0 = std::max<double>(ef, double(k) / std::max(f, 1e-9));
    const bool exact = filter_strategy == filter_exact ||
                       (filter_strategy == filter_auto && f * f * double(ntotal) <= 2.0 * hnsw.M * ef_eff0);
    if (exact) {
      // ---- exact scan over the admitted slots, in blocks of ~8 MB ----
      HnswAdmitFn admit{n_deleted ? deleted.data() : nullptr, sel};
      std::vector<idx_t> labels;
      for (idx_t i = 0; i < ntotal; ++i)
        if (admit(int32_t(i))) labels.push_back(i);
      if (labels.empty()) return;
      const size_t block = std::max<size_t>(1024, (size_t(2) << 20) / size_t(d));
      if (labels.size() <= block) {
        std::vector<float> sub(labels.size() * size_t(d));
        for (size_t i = 0; i < labels.size(); ++i) row_f32(labels[i], sub.data() + i * d);
        knn_exact(size_t(n), x, labels.size(), sub.data(), size_t(d), size_t(k), metric_type, D, I, nullptr,
                  labels.data(), metric_arg);
        rescore_with_space(n, x, k, D, I);
        return;
      }
      TopKArray heaps{size_t(n), size_t(k)};
      std::vector<float> sub(block * size_t(d)), Db(size_t(n) * size_t(k));
      std::vector<idx_t> Ib(size_t(n) * size_t(k));
      for (size_t b0 = 0; b0 < labels.size(); b0 += block) {
        size_t nb = std::min(block, labels.size() - b0);
        for (size_t i = 0; i < nb; ++i) row_f32(labels[b0 + i], sub.data() + i * d);
        knn_exact(size_t(n), x, nb, sub.data(), size_t(d), size_t(k), metric_type, Db.data(), Ib.data(), nullptr,
                  labels.data() + b0, metric_arg);
        for (size_t q = 0; q < size_t(n); ++q)
          for (size_t j = 0; j < size_t(k); ++j) {
            idx_t id = Ib[q * k + j];
            if (id < 0) break;
            float dv = Db[q * k + j];
            heaps[q].push(sim ? -dv : dv, id);
          }
      }
      heaps.finalize(metric_type, nullptr, D, I);
      rescore_with_space(n, x, k, D, I);
      return;
    }
    // ---- graph search admitting only allowed ids ----
    // The result list must hold ef *admitted* nodes, which already widens
    // the search as f drops; also make sure it can hold k / f candidates so
    // that k admitted results are likely among them (capped).
    ef = int(std::max<double>(ef, std::min<double>(double(k) / std::max(f, 1e-9), 4096.0)));
  }

  HnswAdmitFn admit{n_deleted ? deleted.data() : nullptr, sel};
  search_graph(n, x, k, ef, filtered, admit, D, I);
}

template <class Space>
void hnsw_rescore(const IndexHNSW& index, const Space& sp, idx_t n, const float* x, idx_t k, float* D, idx_t* I) {
  const bool sim = is_similarity_metric(index.metric_type);
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    std::vector<float> qbuf;
    std::vector<HnswCand> row;
#pragma omp for schedule(dynamic, 4)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        const float* xq = sp.prepare(x + size_t(q) * index.d, qbuf);
        row.clear();
        for (idx_t j = 0; j < k; ++j) {
          const idx_t id = I[size_t(q) * k + j];
          if (id < 0) break;
          row.push_back({sp.to_query(xq, int32_t(id)), int32_t(id)});
        }
        sort_cands(row);
        for (size_t j = 0; j < row.size(); ++j) {
          D[size_t(q) * k + j] = sim ? -row[j].d : row[j].d;
          I[size_t(q) * k + j] = row[j].id;
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}
template void hnsw_rescore<SQSpace>(const IndexHNSW&, const SQSpace&, idx_t, const float*, idx_t, float*, idx_t*);
template void hnsw_rescore<PQSpace>(const IndexHNSW&, const PQSpace&, idx_t, const float*, idx_t, float*, idx_t*);

void IndexHNSW::rescore_with_space(idx_t n, const float* x, idx_t k, float* D, idx_t* I) const {
  hnsw_rescore(*this, space(), n, x, k, D, I);
}

void IndexHNSW::search_graph(idx_t n, const float* x, idx_t k, int ef, bool filtered, const HnswAdmitFn& admit,
                             float* D, idx_t* I, HnswRangeCollect* rc) const {
  hnsw_search_batch(*this, space(), n, x, k, ef, filtered, admit, D, I, rc);
}

template <class Space>
void hnsw_search_batch(const IndexHNSW& index, const Space& sp, idx_t n, const float* x, idx_t k, int ef, bool filtered,
                       const HnswAdmitFn& admit, float* D, idx_t* I, HnswRangeCollect* rc) {
  const HNSW& hnsw = index.hnsw;
  const size_t d = size_t(index.d);
  const bool sim = is_similarity_metric(index.metric_type);
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    HnswScratch& S = hnsw_scratch();
    std::vector<HnswCand>& res = S.res;
    std::vector<float>& qprep = S.qprep;
    uint64_t nd = 0, nh = 0, nq = 0;
#pragma omp for schedule(dynamic, 1)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        S.ndis = 1;  // the entry point's distance
        S.nhops = 0;
        struct Count {
          HnswScratch& s;
          uint64_t &nd, &nh, &nq;
          ~Count() {
            nd += s.ndis;
            nh += s.nhops;
            ++nq;
          }
        } count{S, nd, nh, nq};
        const float* xq = sp.prepare(x + size_t(q) * d, qprep);
        int32_t ep = hnsw.entry_point;
        float ep_d = sp.to_query(xq, ep);
        hnsw.descend(sp, xq, &ep, &ep_d, 0);
        if (rc) {
          S.range_out = &rc->per_query[size_t(q)];
          S.range_key = rc->key_radius;
        }
        struct ClearRange {
          HnswScratch& s;
          ~ClearRange() { s.range_out = nullptr; }
        } clear_range{S};
        if (filtered)
          hnsw_search_level0(hnsw, sp, S, xq, ep, ep_d, ef, admit, res);
        else
          hnsw_search_level0(hnsw, sp, S, xq, ep, ep_d, ef, HnswAdmitAll{}, res);
        if (rc) continue;
        sort_cands(res);
        const size_t m = std::min(res.size(), size_t(k));
        for (size_t j = 0; j < m; ++j) {
          D[size_t(q) * k + j] = sim ? -res[j].d : res[j].d;
          I[size_t(q) * k + j] = res[j].id;
        }
      }
    ANNVIL_OMP_CATCH(perr)
    hnsw_stats.n1 += nq;
    hnsw_stats.ndis += nd;
    hnsw_stats.nhops += nh;
  }
  perr.rethrow();
}

#define ANNVIL_HNSW_BATCH(Space)                                                                                \
  template void hnsw_search_batch<Space>(const IndexHNSW&, const Space&, idx_t, const float*, idx_t, int, bool, \
                                         const HnswAdmitFn&, float*, idx_t*, HnswRangeCollect*);
ANNVIL_HNSW_BATCH(FlatSpace)
ANNVIL_HNSW_BATCH(SQSpace)
ANNVIL_HNSW_BATCH(PQSpace)
#undef ANNVIL_HNSW_BATCH

void IndexHNSW::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                             const SearchParameters* params) const {
  // Faiss's semantics: an efSearch-wide graph search per query, and every
  // node whose distance it computes at level 0 that lies within the radius
  // is a result (not only the ef best), so large radii get more than ef.
  int ef = hnsw.efSearch;
  const IDSelector* sel = params ? params->sel : nullptr;
  if (auto p = dynamic_cast<const SearchParametersHNSW*>(params))
    if (p->efSearch > 0) ef = p->efSearch;
  ANNVIL_CHECK(ef > 0, "efSearch must be positive, got ", ef);
  const bool sim = is_similarity_metric(metric_type);
  HnswRangeCollect rc;
  rc.key_radius = sim ? -radius : radius;
  rc.per_query.resize(size_t(n));
  if (n > 0 && ntotal > 0) {
    const bool filtered = sel != nullptr || n_deleted > 0;
    HnswAdmitFn admit{n_deleted ? deleted.data() : nullptr, sel};
    search_graph(n, x, 1, ef, filtered, admit, nullptr, nullptr, &rc);
  }
  result->nq = size_t(n);
  result->lims.assign(size_t(n) + 1, 0);
  result->distances.clear();
  result->labels.clear();
  for (idx_t q = 0; q < n; ++q) {
    auto& v = rc.per_query[size_t(q)];
    std::sort(v.begin(), v.end(),
              [](const HnswCand& a, const HnswCand& b) { return a.d < b.d || (a.d == b.d && a.id < b.id); });
    for (const HnswCand& c : v) {
      result->distances.push_back(sim ? -c.d : c.d);
      result->labels.push_back(c.id);
    }
    result->lims[size_t(q) + 1] = result->labels.size();
  }
}

void IndexHNSW::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "id ", key, " out of range [0, ", ntotal, ")");
  row_f32(key, out);
}

void IndexHNSW::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  for (idx_t i = 0; i < ni; ++i) row_f32(i0 + i, out + size_t(i) * d);
}

size_t IndexHNSW::mark_deleted(const IDSelector& sel) {
  size_t removed = 0;
  for (idx_t i = 0; i < ntotal; ++i) {
    if (is_deleted(i) || !sel.is_member(i)) continue;
    deleted[size_t(i) >> 6] |= uint64_t(1) << (i & 63);
    ++n_deleted;
    ++removed;
  }
  return removed;
}

size_t IndexHNSW::remove_ids(const IDSelector& sel) {
  std::vector<int32_t> newid(static_cast<size_t>(ntotal));
  std::vector<idx_t> keep;
  keep.reserve(size_t(ntotal));
  for (idx_t i = 0; i < ntotal; ++i) {
    if (sel.is_member(i)) {
      newid[size_t(i)] = -1;
    } else {
      newid[size_t(i)] = int32_t(keep.size());
      keep.push_back(i);
    }
  }
  const size_t removed = size_t(ntotal) - keep.size();
  if (removed == 0) return 0;
  relink_without(newid);  // reads the old storage
  compact_storage(keep);
  std::vector<uint64_t> del((keep.size() + 63) / 64, 0);
  size_t nd = 0;
  for (size_t i = 0; i < keep.size(); ++i)
    if (is_deleted(keep[i])) {
      del[i >> 6] |= uint64_t(1) << (i & 63);
      ++nd;
    }
  deleted.swap(del);
  n_deleted = nd;
  ntotal = idx_t(keep.size());
  return removed;
}

void IndexHNSW::relink_without(const std::vector<int32_t>& newid) { hnsw_relink_without(hnsw, space(), newid); }

void IndexHNSW::compact_storage(const std::vector<idx_t>& keep) {
  if (is_f16)
    compact_rows(xh, size_t(d), keep);
  else
    compact_rows(xb, size_t(d), keep);
}

template <class Space>
void hnsw_relink_without(HNSW& g, const Space& sp, const std::vector<int32_t>& newid) {
  const size_t N = g.ntotal;
  const size_t M = size_t(g.M);
  size_t n_new = 0, blocks = 0;
  for (size_t i = 0; i < N; ++i) n_new += newid[i] >= 0;
  std::vector<int8_t> levels(n_new);
  std::vector<uint32_t> ub(n_new, 0);
  for (size_t i = 0; i < N; ++i) {
    if (newid[i] < 0) continue;
    const int lv = g.levels[i];
    levels[size_t(newid[i])] = int8_t(lv);
    ub[size_t(newid[i])] = lv > 0 ? uint32_t(blocks) : 0;
    blocks += size_t(lv);
  }
  std::vector<int32_t> l0(n_new * 2 * M, -1), up(blocks * M, -1);
  std::exception_ptr err;
  ParallelErrors perr;
#pragma omp parallel if (N > 2048)
  {
    std::vector<HnswCand> cand, kept, pruned;
#pragma omp for schedule(dynamic, 256)
    for (int64_t i64 = 0; i64 < int64_t(N); ++i64) ANNVIL_OMP_TRY(perr) {
        const int32_t i = int32_t(i64);
        try {
          const int32_t ni = newid[size_t(i)];
          if (ni < 0) continue;
          for (int l = 0; l <= g.levels[size_t(i)]; ++l) {
            const int32_t* nb = g.links(i, l);
            const size_t cap = size_t(g.cap(l));
            cand.clear();
            bool lost = false;
            for (size_t j = 0; j < cap && nb[j] >= 0; ++j) {
              if (newid[size_t(nb[j])] >= 0)
                cand.push_back({0.f, nb[j]});
              else
                lost = true;
            }
            if (lost) {
              // the removed neighbours' own neighbours (they exist at level l)
              for (size_t j = 0; j < cap && nb[j] >= 0; ++j) {
                if (newid[size_t(nb[j])] >= 0) continue;
                const int32_t* nb2 = g.links(nb[j], l);
                for (size_t t = 0; t < cap && nb2[t] >= 0; ++t)
                  if (nb2[t] != i && newid[size_t(nb2[t])] >= 0) cand.push_back({0.f, nb2[t]});
              }
              std::sort(cand.begin(), cand.end(), [](const HnswCand& a, const HnswCand& b) { return a.id < b.id; });
              cand.erase(std::unique(cand.begin(), cand.end(),
                                     [](const HnswCand& a, const HnswCand& b) { return a.id == b.id; }),
                         cand.end());
              if (cand.size() > cap) {
                // the HNSW neighbour heuristic: closest first, skipping a
                // candidate that is closer to an already kept neighbour than to
                // i; the skipped ones fill the remaining places
                for (auto& c : cand) c.d = sp.between(i, c.id);
                sort_cands(cand);
                kept.clear();
                pruned.clear();
                for (const auto& c : cand) {
                  if (kept.size() >= cap) break;
                  bool good = true;
                  for (const auto& r : kept)
                    if (sp.between(c.id, r.id) < c.d) {
                      good = false;
                      break;
                    }
                  (good ? kept : pruned).push_back(c);
                }
                for (size_t t = 0; kept.size() < cap && t < pruned.size(); ++t) kept.push_back(pruned[t]);
                cand.swap(kept);
              }
            }
            int32_t* out = l == 0 ? l0.data() + size_t(ni) * 2 * M : up.data() + (size_t(ub[size_t(ni)]) + l - 1) * M;
            for (size_t j = 0; j < cand.size(); ++j) out[j] = newid[size_t(cand[j].id)];
          }
        } catch (...) {  // allocation failures: rethrown below, the graph untouched
#pragma omp critical(annvil_hnsw_relink)
          if (!err) err = std::current_exception();
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  if (err) std::rethrow_exception(err);
  int32_t ep = -1;
  int top = -1;
  if (g.entry_point >= 0 && newid[size_t(g.entry_point)] >= 0) {
    ep = newid[size_t(g.entry_point)];
    top = g.max_level;
  } else {
    for (size_t i = 0; i < n_new; ++i)
      if (levels[i] > top) {
        top = levels[i];
        ep = int32_t(i);
      }
  }
  g.links0.mut().swap(l0);
  g.upper_links.mut().swap(up);
  g.levels.swap(levels);
  g.upper_begin.swap(ub);
  g.ntotal = n_new;
  g.entry_point = ep;
  g.max_level = top;
  g.repair_connectivity();  // local relinking can cut off small regions
}

template void hnsw_relink_without<FlatSpace>(HNSW&, const FlatSpace&, const std::vector<int32_t>&);
template void hnsw_relink_without<SQSpace>(HNSW&, const SQSpace&, const std::vector<int32_t>&);
template void hnsw_relink_without<PQSpace>(HNSW&, const PQSpace&, const std::vector<int32_t>&);

// ---- standalone codes and merging -------------------------------------------------
size_t IndexHNSW::sa_code_size() const { return sizeof(float) * size_t(d); }

void IndexHNSW::sa_encode(idx_t n, const float* x, uint8_t* codes) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  if (n) std::memcpy(codes, x, sa_code_size() * size_t(n));
}

void IndexHNSW::sa_decode(idx_t n, const uint8_t* codes, float* x) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  if (n) std::memcpy(x, codes, sa_code_size() * size_t(n));
}

void IndexHNSW::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t*) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  std::vector<float> x(size_t(n) * size_t(d));
  if (n) std::memcpy(x.data(), codes, sa_code_size() * size_t(n));
  add(n, x.data());
}

void IndexHNSW::slot_code(idx_t i, uint8_t* code) const {
  std::vector<float> row(static_cast<size_t>(d));
  row_f32(i, row.data());
  std::memcpy(code, row.data(), sizeof(float) * size_t(d));
}

void IndexHNSW::check_same_codec(const IndexHNSW&) const {}

void IndexHNSW::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  auto* o = dynamic_cast<const IndexHNSW*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  check_same_codec(*o);
}

void IndexHNSW::merge_from(Index& other, idx_t add_id) {
  ANNVIL_CHECK(add_id == 0, "merge_from: add_id must be 0 for ", type_tag(), " (its ids are slots)");
  check_compatible_for_merge(other);
  check_trained();
  auto& o = static_cast<IndexHNSW&>(other);
  // other's live vectors (tombstones are dropped), as codes of this storage
  const size_t cs = sa_code_size();
  std::vector<uint8_t> codes;
  codes.reserve((size_t(o.ntotal) - o.n_deleted) * cs);
  idx_t n = 0;
  for (idx_t i = 0; i < o.ntotal; ++i) {
    if (o.is_deleted(i)) continue;
    codes.resize(codes.size() + cs);
    o.slot_code(i, codes.data() + codes.size() - cs);
    ++n;
  }
  add_sa_codes(n, codes.data(), nullptr);
  o.reset();
}

void IndexHNSW::reset() {
  xb.clear();
  xh.clear();
  is_f16 = false;
  hnsw.clear();
  deleted.clear();
  deleted.shrink_to_fit();
  n_deleted = 0;
  ntotal = 0;
}

std::vector<idx_t> IndexHNSW::compact() {
  std::vector<idx_t> keep;
  keep.reserve(size_t(ntotal) - n_deleted);
  for (idx_t i = 0; i < ntotal; ++i)
    if (!is_deleted(i)) keep.push_back(i);
  std::vector<float> data(keep.size() * size_t(d));
  for (size_t i = 0; i < keep.size(); ++i) row_f32(keep[i], data.data() + i * d);
  reset();
  add(idx_t(keep.size()), data.data());
  return keep;
}

size_t IndexHNSW::memory_usage() const {
  return sizeof(*this) + array_bytes(xb) + array_bytes(xh) + hnsw.memory_usage() +
         deleted.capacity() * sizeof(uint64_t);
}

// ---- index files ---------------------------------------------------------------
// Payload: header; M, efConstruction, efSearch, max_level, entry_point (i32);
// seed (u64); levels (i8[ntotal]); upper_begin (u32[ntotal]); upper_links,
// links0, vectors (arrays that a memory-mapped file is searched from in
// place); deleted bitmap (u64 words); n_deleted (u64); replace_deleted (u8).
void IndexHNSW::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write<int32_t>(hnsw.M);
  write_hnsw_graph(w, hnsw);
  w.write_storage(xb);
  w.write_vector(deleted);
  w.write<uint64_t>(n_deleted);
  w.write<uint8_t>(replace_deleted ? 1 : 0);
  w.write<uint8_t>(is_f16 ? 1 : 0);
  w.write<uint8_t>(allow_f16 ? 1 : 0);
  w.write_storage(xh);
}

void IndexHNSW::read_payload_body(Reader& r) {
  HNSW& g = hnsw;
  read_hnsw_graph(r, g);
  g.is_similarity = is_similarity_metric(metric_type);
  r.read_storage(xb);
  r.read_vector(deleted);
  n_deleted = size_t(r.read<uint64_t>());
  uint8_t rd = r.read<uint8_t>();
  if (rd > 1) r.corrupt("bad flag");
  replace_deleted = rd != 0;
  uint8_t f16 = r.read<uint8_t>(), allow = r.read<uint8_t>();
  if (f16 > 1 || allow > 1) r.corrupt("bad flag");
  is_f16 = f16 != 0;
  allow_f16 = allow != 0;
  r.read_storage(xh);

  const size_t N = size_t(ntotal);
  if (stores_floats() ? ((is_f16 ? xh.size() : xb.size()) != N * size_t(d) || (is_f16 ? xb.size() : xh.size()) != 0)
                      : (xb.size() != 0 || xh.size() != 0))
    r.corrupt("HNSW vectors do not match ntotal * d");
  if (deleted.size() != (N + 63) / 64) r.corrupt("HNSW deleted bitmap does not match ntotal");
  size_t pop = 0;
  for (uint64_t w : deleted) pop += size_t(__builtin_popcountll(w));
  if (pop != n_deleted) r.corrupt("HNSW deleted count does not match the bitmap");
  check_hnsw_graph(r, g, N);
  if (!r.mapped()) {
    to_huge_pages(xb);
    to_huge_pages(xh);
    to_huge_pages(g.links0);
  }
}

namespace {
template <class T>
IndexPtr read_hnsw(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int32_t M = r.read<int32_t>();
  if (M < 2 || M > 4096) r.corrupt("bad HNSW M");
  if (h.ntotal >= idx_t(std::numeric_limits<int32_t>::max())) r.corrupt("bad HNSW ntotal");
  auto idx = std::make_shared<T>(h.d, M, h.metric);
  idx->metric_arg = h.metric_arg;
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  idx->read_payload_body(r);
  return idx;
}
ANNVIL_REGISTER_INDEX("HNSW", read_hnsw<IndexHNSW>);
ANNVIL_REGISTER_INDEX("HNSWFlat", read_hnsw<IndexHNSWFlat>);
}  // namespace

}  // namespace annvil
