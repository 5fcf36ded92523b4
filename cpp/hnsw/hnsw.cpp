// HNSW construction and search (see hnsw.h for the layout).
#include "hnsw/hnsw.h"
#include "core/parallel.h"
#include "hnsw/hnsw_codes.h"
#include "core/io.h"
#include "simd/dispatch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

namespace annvil {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// candidate queue: min-heap on key; result set: max-heap on key
inline bool min_cmp(const HnswCand& a, const HnswCand& b) { return a.d > b.d; }
inline bool max_cmp(const HnswCand& a, const HnswCand& b) { return a.d < b.d; }

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Distance from query q to node id, where `self` (the node being inserted)
// never counts as a neighbour of itself.
template <class Space>
inline float key_of(const Space& sp, const float* q, int32_t id, int32_t self) {
  return id == self ? kInf : sp.to_query(q, id);
}

// ef-search on one level for construction: the `ef` closest nodes to q
// reachable from ep, sorted ascending in `out`, never including `self`.
template <class Space>
void search_layer_build(const HNSW& g, const Space& sp, HnswScratch& B, const float* q, int32_t self, int32_t ep,
                        float ep_d, int level, int ef, std::vector<HnswCand>& out) {
  HnswScratch::Visited& vt = B.visited;
  vt.begin(g.ntotal);
  auto& cand = B.cand;
  auto& res = out;
  cand.clear();
  res.clear();
  auto& ids = B.ids;
  const int cap = g.cap(level);
  if (ids.size() < size_t(cap)) ids.resize(size_t(cap));

  vt.test_and_set(ep);
  vt.test_and_set(self);
  cand.push_back({ep_d, ep});
  if (ep != self) res.push_back({ep_d, ep});
  float bound = int(res.size()) >= ef ? res.front().d : kInf;

  while (!cand.empty()) {
    HnswCand c = cand.front();
    if (c.d > bound) break;
    std::pop_heap(cand.begin(), cand.end(), min_cmp);
    cand.pop_back();
    // read the neighbour list once; concurrent writers only ever store valid
    // ids or -1, so a torn view costs at most a missed or repeated neighbour
    const int32_t* nb = g.links(c.id, level);
    int cnt = 0;
    for (int j = 0; j < cap; ++j) {
      int32_t id = nb[j];
      if (id < 0) break;
      if (!vt.test_and_set(id)) ids[size_t(cnt++)] = id;
    }
    if (cnt > 0) sp.prefetch(ids[0]);
    for (int i = 0; i < cnt; ++i) {
      if (i + 1 < cnt) sp.prefetch(ids[size_t(i) + 1]);
      int32_t id = ids[size_t(i)];
      float d = sp.to_query(q, id);
      if (d < bound) {
        cand.push_back({d, id});
        std::push_heap(cand.begin(), cand.end(), min_cmp);
        res.push_back({d, id});
        std::push_heap(res.begin(), res.end(), max_cmp);
        if (int(res.size()) > ef) {
          std::pop_heap(res.begin(), res.end(), max_cmp);
          res.pop_back();
        }
        if (int(res.size()) >= ef) bound = res.front().d;
      }
    }
  }
  std::sort(res.begin(), res.end(),
            [](const HnswCand& a, const HnswCand& b) { return a.d < b.d || (a.d == b.d && a.id < b.id); });
}

// The neighbour-selection heuristic (Algorithm 4 of the paper, as in Faiss's
// shrink_neighbor_list and hnswlib's getNeighborsByHeuristic2): walk the
// candidates from closest to farthest and keep c only if it is closer to the
// base node than to every neighbour kept so far,
//     keep c  <=>  for all kept r: dist(c, r) >= dist(c, base).
// A candidate closer to a kept r than to the base would be reached through r
// anyway; dropping it spends the degree budget on other directions, which
// keeps clusters connected to each other.  cands: sorted ascending by key.
template <class Space>
void select_neighbors(const Space& sp, const std::vector<HnswCand>& cands, int max_n, std::vector<HnswCand>& out) {
  out.clear();
  if (int(cands.size()) <= max_n) {
    out = cands;
    return;
  }
  for (const HnswCand& c : cands) {
    if (int(out.size()) >= max_n) break;
    bool good = true;
    for (const HnswCand& r : out) {
      if (sp.between(c.id, r.id) < c.d) {
        good = false;
        break;
      }
    }
    if (good) out.push_back(c);
  }
}

struct SpinLock {
  std::atomic<uint8_t>* f;
  explicit SpinLock(std::atomic<uint8_t>* flag) : f(flag) {
    while (f->exchange(1, std::memory_order_acquire)) {
      while (f->load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  ~SpinLock() { f->store(0, std::memory_order_release); }
};

// Add the edge src -> dst at `level` (d = key between them); when src's list
// is full, re-select its neighbours with the heuristic among old + new.
template <class Space>
void add_link(HNSW& g, const Space& sp, HnswScratch& B, int32_t* links, int cap, int32_t src, int32_t dst, float d,
              std::atomic<uint8_t>* locks) {
  SpinLock lk(locks + src);
  int cnt = 0;
  while (cnt < cap && links[cnt] >= 0) {
    if (links[cnt] == dst) return;  // a reused slot may still be linked
    ++cnt;
  }
  if (cnt < cap) {
    links[cnt] = dst;
    return;
  }
  auto& tmp = B.tmp;
  tmp.clear();
  for (int j = 0; j < cap; ++j) tmp.push_back({sp.between(src, links[j]), links[j]});
  tmp.push_back({d, dst});
  std::sort(tmp.begin(), tmp.end(),
            [](const HnswCand& a, const HnswCand& b) { return a.d < b.d || (a.d == b.d && a.id < b.id); });
  auto& sel = B.sel;
  select_neighbors(sp, tmp, cap, sel);
  int j = 0;
  for (; j < int(sel.size()); ++j) links[j] = sel[size_t(j)].id;
  for (; j < cap; ++j) links[j] = -1;
  (void)g;
}

template <class Space>
void insert_one(HNSW& g, const Space& sp, HnswScratch& B, int32_t q, std::atomic<uint8_t>* locks, int top_level) {
  const float* qv = sp.query_of(q, B.qbuf);
  const int level = g.levels[size_t(q)];
  int32_t ep = g.entry_point;
  float ep_d = key_of(sp, qv, ep, q);
  // greedy descent through the levels above the node's own
  for (int lev = top_level; lev > level; --lev) {
    bool changed = true;
    while (changed) {
      changed = false;
      const int32_t* nb = g.links(ep, lev);
      for (int j = 0; j < g.M; ++j) {
        int32_t id = nb[j];
        if (id < 0) break;
        float d = key_of(sp, qv, id, q);
        if (d < ep_d) {
          ep = id;
          ep_d = d;
          changed = true;
        }
      }
    }
  }
  auto& W = B.w;  // survives add_link, which uses tmp and sel
  auto& S = B.s;
  for (int lev = std::min(level, top_level); lev >= 0; --lev) {
    search_layer_build(g, sp, B, qv, q, ep, ep_d, lev, g.efConstruction, W);
    if (W.empty()) continue;
    const int cap = g.cap(lev);
    select_neighbors(sp, W, cap, S);
    {
      SpinLock lk(locks + q);
      int32_t* own = g.links_mut(q, lev);
      // In a parallel insert, q is reachable through its upper levels before
      // its lower-level lists are written here, so another node may already
      // have linked itself to q at this level (add_link below, from its
      // side).  Overwriting would drop that edge, and with it possibly the
      // only way to reach that node: merge it in and re-select instead.
      // (Lists of nodes being inserted start empty; with one thread this
      // never happens.)
      int have = 0;
      while (have < cap && own[have] >= 0) ++have;
      const std::vector<HnswCand>* chosen = &S;
      if (have > 0) {
        auto& tmp = B.tmp;
        tmp.assign(S.begin(), S.end());
        for (int j = 0; j < have; ++j) {
          const int32_t e = own[j];
          bool dup = false;
          for (const HnswCand& c : S) dup |= c.id == e;
          if (!dup) tmp.push_back({sp.between(q, e), e});
        }
        std::sort(tmp.begin(), tmp.end(),
                  [](const HnswCand& a, const HnswCand& b) { return a.d < b.d || (a.d == b.d && a.id < b.id); });
        select_neighbors(sp, tmp, cap, B.sel);
        chosen = &B.sel;
      }
      int j = 0;
      for (; j < int(chosen->size()); ++j) own[j] = (*chosen)[size_t(j)].id;
      for (; j < cap; ++j) own[j] = -1;
    }
    for (const HnswCand& s : S) add_link(g, sp, B, g.links_mut(s.id, lev), cap, s.id, q, s.d, locks);
    ep = W[0].id;
    ep_d = W[0].d;
  }
}

}  // namespace

// ---- half-precision kernels: the table of the active level ------------------------
const HnswF16Kernels& hnsw_f16_kernels() {
  static const KernelDispatch<HnswF16Kernels> d(&hnsw_f16_kernels_scalar(), ANNVIL_ISA_TABLE(hnsw_f16_kernels_avx2),
                                                ANNVIL_ISA_TABLE(hnsw_f16_kernels_avx512));
  return d.get();
}

const float* FlatSpace::query_of(int32_t id, std::vector<float>& buf) const {
  if (!xh) return xb + size_t(id) * d;
  buf.resize(d);
  hnsw_f16_kernels().decode(xh + size_t(id) * d, d, buf.data());
  return buf.data();
}

FlatSpace::FlatSpace(const float* xb_, const uint16_t* xh_, size_t d_, MetricType metric, float metric_arg)
    : xb(xb_), xh(xh_), d(d_), ip(metric == METRIC_INNER_PRODUCT) {
  if (is_extra_metric(metric)) {
    ANNVIL_CHECK(xh_ == nullptr, "metric ", metric_name(metric), " needs float32 storage");
    fx = extra_distance_fn(kernels(), metric);
    fx_arg = metric_arg;
    fx_sign = is_similarity_metric(metric) ? -1.f : 1.f;
  }
  fn = ip ? kernels().inner_product : kernels().l2sqr;
  const HnswF16Kernels& hk = hnsw_f16_kernels();
  fnh = ip ? hk.ip : hk.l2;
  fnhh = ip ? hk.ip_hh : hk.l2_hh;
  row_bytes = d * (xh ? sizeof(uint16_t) : sizeof(float));
  // Prefetch up to 8 lines of a vector two vectors ahead of use: the hardware
  // prefetcher follows on from there for longer vectors.  (On wordnet, d =
  // 384, all settings from 1 to 24 lines and 1 to 3 ahead were within 5%:
  // search is bound by the bandwidth of fetching ~900 vectors per query.)
  prefetch_lines = int(std::min<size_t>(8, (row_bytes + 63) / 64));
  prefetch_ahead = 2;
}

HNSW::HNSW(int M_) : M(M_) { ANNVIL_CHECK(M_ >= 2 && M_ <= 4096, "HNSW M must be in [2, 4096], got ", M_); }

int HNSW::draw_level(int64_t id) const {
  uint64_t h = splitmix64(seed ^ splitmix64(uint64_t(id)));
  double u = (double((h >> 11) + 1)) * (1.0 / 9007199254740992.0);  // (0, 1]
  double ml = 1.0 / std::log(double(M));
  int l = int(std::floor(-std::log(u) * ml));
  return std::min(l, 100);
}

void HNSW::grow(size_t n) {
  size_t n0 = ntotal, n1 = ntotal + n;
  size_t stride = size_t(2 * M);
  links0.append_fill(n * stride, -1);
  levels.resize(n1);
  upper_begin.resize(n1);
  size_t blocks = upper_links.size() / size_t(M);
  for (size_t i = n0; i < n1; ++i) {
    int lv = draw_level(int64_t(i));
    levels[i] = int8_t(lv);
    upper_begin[i] = lv > 0 ? uint32_t(blocks) : 0;
    blocks += size_t(lv);
  }
  ANNVIL_CHECK(blocks < (size_t(1) << 32), "HNSW graph too large");
  upper_links.mut().resize(blocks * size_t(M), -1);
  ntotal = n1;
}

void HNSW::clear() {
  links0.clear();
  upper_links.clear();
  levels.clear();
  levels.shrink_to_fit();
  upper_begin.clear();
  upper_begin.shrink_to_fit();
  ntotal = 0;
  max_level = -1;
  entry_point = -1;
}

template <class Space>
void HNSW::insert(const Space& sp, const std::vector<int32_t>& nodes) {
  if (nodes.empty()) return;
  links0.writable();  // own the arrays before threads write into them
  upper_links.writable();
  // The nodes' own lists start empty (reused slots keep their old lists
  // until here; insert_one merges whatever it finds in them, see there).
  for (int32_t v : nodes)
    for (int lev = 0; lev <= levels[size_t(v)]; ++lev) std::fill_n(links_mut(v, lev), cap(lev), -1);
  std::vector<int32_t> order(nodes);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return levels[size_t(a)] > levels[size_t(b)]; });
  std::unique_ptr<std::atomic<uint8_t>[]> locks(new std::atomic<uint8_t>[ntotal]());
  size_t i = 0;
  if (entry_point < 0) {
    entry_point = order[0];
    max_level = levels[size_t(order[0])];
    i = 1;
  }
  // Nodes that raise the top level change the entry point: insert them one
  // at a time (they come first in the order, and there are only a few).
  for (; i < order.size() && levels[size_t(order[i])] > max_level; ++i) {
    insert_one(*this, sp, hnsw_scratch(), order[i], locks.get(), max_level);
    max_level = levels[size_t(order[i])];
    entry_point = order[i];
  }
  const int64_t rest = int64_t(order.size() - i);
  const int top = max_level;
  ParallelErrors perr;
#pragma omp parallel if (rest > 64)
  {
    HnswScratch& S = hnsw_scratch();
#pragma omp for schedule(dynamic, 4)
    for (int64_t j = 0; j < rest; ++j) ANNVIL_OMP_TRY(perr) {
        insert_one(*this, sp, S, order[i + size_t(j)], locks.get(), top);
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  inserted_since_repair += nodes.size();
  if (inserted_since_repair * 8 >= ntotal) repair_connectivity();
}

template <class Space>
void HNSW::descend(const Space& sp, const float* q, int32_t* ep_out, float* ep_d_out, int stop_level) const {
  int32_t ep = *ep_out;
  float ep_d = *ep_d_out;
  for (int lev = max_level; lev > stop_level; --lev) {
    bool changed = true;
    while (changed) {
      changed = false;
      const int32_t* nb = links(ep, lev);
      for (int j = 0; j < M; ++j) {
        int32_t id = nb[j];
        if (id < 0) break;
        float d = sp.to_query(q, id);
        if (d < ep_d) {
          ep = id;
          ep_d = d;
          changed = true;
        }
      }
    }
  }
  *ep_out = ep;
  *ep_d_out = ep_d;
}

size_t HNSW::memory_usage() const {
  // arrays on huge pages or mapped from a file are views: count their size
  auto bytes = [](const Storage<int32_t>& s) { return s.is_view() ? s.size() * sizeof(int32_t) : s.capacity_bytes(); };
  return bytes(links0) + bytes(upper_links) + levels.capacity() + upper_begin.capacity() * sizeof(uint32_t);
}

// ---- query-time search on level 0 ---------------------------------------------
// The hot loop: neighbours not yet visited are gathered first, then their
// vectors are prefetched one step ahead of the distance computation, so the
// memory latency of the next vector overlaps the arithmetic of this one.
template <class Space, class Admit>
void hnsw_search_level0(const HNSW& g, const Space& sp, HnswScratch& B, const float* q, int32_t ep, float ep_d, int ef,
                        const Admit& admit, std::vector<HnswCand>& res) {
  HnswScratch::Visited& vt = B.visited;
  vt.begin(g.ntotal);
  auto& cand = B.cand;
  cand.clear();
  res.clear();
  const size_t cap0 = size_t(2 * g.M);
  auto& ids = B.ids;
  if (ids.size() < cap0) ids.resize(cap0);
  int32_t* buf = ids.data();
  const int32_t* L0 = g.links0.data();

  vt.test_and_set(ep);
  cand.push_back({ep_d, ep});
  if (admit(ep)) res.push_back({ep_d, ep});
  std::vector<HnswCand>* range_out = B.range_out;
  const float range_key = B.range_key;
  if (range_out && ep_d < range_key && admit(ep)) range_out->push_back({ep_d, ep});
  float bound = int(res.size()) >= ef ? res.front().d : kInf;

  while (!cand.empty()) {
    const HnswCand c = cand.front();
    if (c.d > bound) break;
    std::pop_heap(cand.begin(), cand.end(), min_cmp);
    cand.pop_back();
    const int32_t* nb = L0 + size_t(c.id) * cap0;
    int cnt = 0;
    for (size_t j = 0; j < cap0; ++j) {
      int32_t id = nb[j];
      if (id < 0) break;
      if (!vt.test_and_set(id)) buf[cnt++] = id;
    }
    const int ahead = sp.prefetch_ahead;
    B.ndis += uint64_t(cnt);
    ++B.nhops;
    for (int i = 0; i < std::min(cnt, ahead); ++i) sp.prefetch(buf[i]);
    for (int i = 0; i < cnt; ++i) {
      if (i + ahead < cnt) sp.prefetch(buf[i + ahead]);
      const int32_t id = buf[i];
      const float d = sp.to_query(q, id);
      if (range_out && d < range_key && admit(id)) range_out->push_back({d, id});
      if (d < bound) {
        cand.push_back({d, id});
        std::push_heap(cand.begin(), cand.end(), min_cmp);
        if (admit(id)) {
          res.push_back({d, id});
          std::push_heap(res.begin(), res.end(), max_cmp);
          if (int(res.size()) > ef) {
            std::pop_heap(res.begin(), res.end(), max_cmp);
            res.pop_back();
          }
          if (int(res.size()) >= ef) bound = res.front().d;
        }
      }
    }
    if (!cand.empty()) {
      // the next node to expand: fetch its neighbour list while we finish
      const int32_t* nn = L0 + size_t(cand.front().id) * cap0;
      __builtin_prefetch(nn, 0, 3);
      __builtin_prefetch(nn + 16, 0, 3);
    }
  }
}

// One instantiation of the graph code per storage (see hnsw_codes.h).
#define ANNVIL_HNSW_INSTANTIATE(Space)                                                                                 \
  template void HNSW::insert<Space>(const Space&, const std::vector<int32_t>&);                                        \
  template void HNSW::descend<Space>(const Space&, const float*, int32_t*, float*, int) const;                         \
  template void hnsw_search_level0<Space, HnswAdmitAll>(const HNSW&, const Space&, HnswScratch&, const float*,         \
                                                        int32_t, float, int, const HnswAdmitAll&,                      \
                                                        std::vector<HnswCand>&);                                       \
  template void hnsw_search_level0<Space, HnswAdmitFn>(const HNSW&, const Space&, HnswScratch&, const float*, int32_t, \
                                                       float, int, const HnswAdmitFn&, std::vector<HnswCand>&);
ANNVIL_HNSW_INSTANTIATE(FlatSpace)
ANNVIL_HNSW_INSTANTIATE(SQSpace)
ANNVIL_HNSW_INSTANTIATE(PQSpace)
ANNVIL_HNSW_INSTANTIATE(HammingSpace)
#undef ANNVIL_HNSW_INSTANTIATE

void write_hnsw_graph(Writer& w, const HNSW& g) {
  w.write<int32_t>(g.efConstruction);
  w.write<int32_t>(g.efSearch);
  w.write<int32_t>(g.max_level);
  w.write<int32_t>(g.entry_point);
  w.write<uint64_t>(g.seed);
  w.write_vector(g.levels);
  w.write_vector(g.upper_begin);
  w.write_storage(g.upper_links);
  w.write_storage(g.links0);
}

void read_hnsw_graph(Reader& r, HNSW& g) {
  g.efConstruction = r.read<int32_t>();
  g.efSearch = r.read<int32_t>();
  g.max_level = r.read<int32_t>();
  g.entry_point = r.read<int32_t>();
  g.seed = r.read<uint64_t>();
  if (g.efConstruction <= 0 || g.efSearch <= 0) r.corrupt("bad HNSW ef parameters");
  r.read_vector(g.levels);
  r.read_vector(g.upper_begin);
  r.read_storage(g.upper_links);
  r.read_storage(g.links0);
}

void check_hnsw_graph(const Reader& r, HNSW& g, size_t N) {
  const size_t M = size_t(g.M);
  if (g.levels.size() != N || g.upper_begin.size() != N) r.corrupt("HNSW level arrays do not match ntotal");
  if (g.links0.size() != N * 2 * M) r.corrupt("HNSW level-0 links do not match ntotal * 2M");
  if (g.upper_links.size() % M) r.corrupt("HNSW upper links are not whole blocks");
  const size_t blocks = g.upper_links.size() / M;
  int top = -1;
  for (size_t i = 0; i < N; ++i) {
    int lv = g.levels[i];
    if (lv < 0 || lv > 100) r.corrupt("bad HNSW node level");
    if (lv > 0 && size_t(g.upper_begin[i]) + size_t(lv) > blocks) r.corrupt("HNSW upper links out of range");
    top = std::max(top, lv);
  }
  if (N == 0 ? (g.entry_point != -1 || g.max_level != -1)
             : (g.entry_point < 0 || size_t(g.entry_point) >= N || g.max_level != top ||
                g.levels[size_t(g.entry_point)] != top))
    r.corrupt("bad HNSW entry point");
  // Every link target is checked, on mapped files too (one vectorised pass:
  // a search follows links without bounds checks).  -1 ends a list.
  if (!all_in_range(g.links0.data(), g.links0.size(), -1, int64_t(N)) ||
      !all_in_range(g.upper_links.data(), g.upper_links.size(), -1, int64_t(N)))
    r.corrupt("HNSW link out of range");
  g.ntotal = N;
}

HNSWStats hnsw_stats;

HnswScratch& hnsw_scratch() {
  static thread_local HnswScratch s;
  return s;
}

size_t HNSW::repair_connectivity() {
  inserted_since_repair = 0;
  const size_t n = ntotal;
  if (n < 2 || entry_point < 0) return 0;
  const size_t c0 = size_t(2 * M);
  int32_t* L = links0.writable();
  size_t total = 0;
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<uint32_t> indeg(n, 0);  // level 0
    for (size_t v = 0; v < n; ++v)
      for (size_t j = 0; j < c0 && L[v * c0 + j] >= 0; ++j) indeg[size_t(L[v * c0 + j])]++;
    std::vector<uint8_t> seen(n, 0);
    std::vector<int32_t> stack;
    auto flood = [&](int32_t s) {
      if (seen[size_t(s)]) return;
      seen[size_t(s)] = 1;
      stack.push_back(s);
      while (!stack.empty()) {
        const int32_t v = stack.back();
        stack.pop_back();
        // level 0 only: a search reaches a vertex through level-0 links (the
        // upper levels only choose where the level-0 search starts)
        const int32_t* l = L + size_t(v) * c0;
        for (size_t j = 0; j < c0 && l[j] >= 0; ++j) {
          const int32_t u = l[j];
          if (!seen[size_t(u)]) {
            seen[size_t(u)] = 1;
            stack.push_back(u);
          }
        }
      }
    };
    auto free_slot = [&](int32_t h) -> int {
      for (size_t j = 0; j < c0; ++j)
        if (L[size_t(h) * c0 + j] < 0) return int(j);
      return -1;
    };
    flood(entry_point);
    size_t fixed = 0;
    for (size_t v = 0; v < n; ++v) {
      if (seen[v]) continue;
      const int32_t* lv = L + v * c0;
      // 1. the nearest reachable out-neighbour with a free slot (lists are
      //    kept nearest first): the link is only added, nothing is lost
      int32_t host = -1;
      int slot = -1;
      for (size_t j = 0; j < c0 && lv[j] >= 0 && host < 0; ++j)
        if (seen[size_t(lv[j])] && (slot = free_slot(lv[j])) >= 0) host = lv[j];
      // 2. a reachable neighbour of an out-neighbour with a free slot
      for (size_t j = 0; j < c0 && lv[j] >= 0 && host < 0; ++j) {
        const int32_t* lu = L + size_t(lv[j]) * c0;
        for (size_t i = 0; i < c0 && lu[i] >= 0 && host < 0; ++i)
          if (lu[i] != int32_t(v) && seen[size_t(lu[i])] && (slot = free_slot(lu[i])) >= 0) host = lu[i];
      }
      // 3. in the nearest reachable out-neighbour's full list, in place of
      //    the neighbour with the most incoming links (it stays reachable)
      for (size_t j = 0; j < c0 && lv[j] >= 0 && host < 0; ++j) {
        if (!seen[size_t(lv[j])]) continue;
        const int32_t* hl = L + size_t(lv[j]) * c0;
        size_t best = 0;
        for (size_t i = 1; i < c0; ++i)
          if (indeg[size_t(hl[i])] > indeg[size_t(hl[best])]) best = i;
        if (indeg[size_t(hl[best])] >= 2) {
          host = lv[j];
          slot = int(best);
          indeg[size_t(hl[best])]--;
        }
      }
      if (host < 0) continue;  // left for the next pass, once more nodes are reached
      L[size_t(host) * c0 + size_t(slot)] = int32_t(v);
      indeg[v]++;
      ++fixed;
      flood(int32_t(v));
    }
    total += fixed;
    if (fixed == 0) break;
  }
  return total;
}

void HNSW::rollback(const Mark& m) {
  const int32_t n0 = int32_t(m.ntotal);
  auto scrub = [n0](int32_t* l, int cap) {
    int w = 0;
    for (int j = 0; j < cap && l[j] >= 0; ++j)
      if (l[j] < n0) l[w++] = l[j];
    for (int j = w; j < cap && l[j] >= 0; ++j) l[j] = -1;
  };
  links0.truncate(m.ntotal * size_t(2 * M));
  upper_links.truncate(m.upper_size);
  levels.resize(m.ntotal);
  upper_begin.resize(m.ntotal);
  ntotal = m.ntotal;
  for (int32_t v = 0; v < n0; ++v)
    for (int lev = 0; lev <= levels[size_t(v)]; ++lev) scrub(links_mut(v, lev), cap(lev));
  entry_point = m.entry_point;
  max_level = m.max_level;
}

}  // namespace annvil
