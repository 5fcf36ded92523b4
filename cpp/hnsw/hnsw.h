// The HNSW graph (Malkov & Yashunin, "Efficient and robust approximate nearest
// neighbor search using Hierarchical Navigable Small World graphs", 2016):
// layout, construction and search.  The graph knows nothing about ids or
// selectors beyond an `admit` predicate; IndexHNSW (index_hnsw.h) owns the
// vectors, deletions and the filtered-search planner.
//
// Layout (chosen for search speed and for memory-mapped loading):
//   links0       ntotal * 2M int32, node i's level-0 neighbours at
//                [i * 2M, (i + 1) * 2M), padded with -1 after the last one.
//                Level 0 is where almost all search time goes, so it is one
//                contiguous array with a fixed stride (no offset lookups).
//   levels       ntotal int8: the top level of each node (0 for ~1 - 1/M).
//   upper_begin  ntotal uint32: first block of the node's upper links.
//   upper_links  blocks of M int32; node i's links at level l >= 1 are block
//                upper_begin[i] + l - 1, padded with -1.
// Per vector this is 8M bytes of level-0 links, 5 bytes of bookkeeping and
// about 4M / (M - 1) bytes of upper links: less than Faiss's 8M + 12.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "distances/distances.h"
#include "core/index.h"
#include "core/storage.h"

namespace annvil {

// Kernels for vectors stored as IEEE half floats.  IndexHNSW uses them only
// when every stored value is exactly representable in half precision (for
// example embeddings produced in float16), so the distances are the same as
// with float32 storage while each vector takes half the memory and half the
// memory traffic, which is what bounds graph search.
struct HnswF16Kernels {
  float (*ip)(const float* x, const uint16_t* y, size_t d);  // <x, y>
  float (*l2)(const float* x, const uint16_t* y, size_t d);  // |x - y|^2
  float (*ip_hh)(const uint16_t* x, const uint16_t* y, size_t d);
  float (*l2_hh)(const uint16_t* x, const uint16_t* y, size_t d);
  // n floats to halves; false (out partly written) if one is not exact
  bool (*encode_exact)(const float* x, size_t n, uint16_t* out);
  void (*decode)(const uint16_t* x, size_t n, float* out);
};
const HnswF16Kernels& hnsw_f16_kernels();  // for the active SIMD level
const HnswF16Kernels& hnsw_f16_kernels_scalar();
const HnswF16Kernels& hnsw_f16_kernels_avx2();
const HnswF16Kernels& hnsw_f16_kernels_avx512();

// Distances between a query and stored vectors (float32 rows `xb`, or exact
// half rows `xh`), or between two stored vectors.  Keys are "smaller is
// better": L2 squared, or -<x, y> for inner product.
struct FlatSpace {
  const float* xb = nullptr;     // n * d, or null when xh is used
  const uint16_t* xh = nullptr;  // n * d halves, or null
  size_t d = 0;
  size_t row_bytes = 0;
  bool ip = false;
  float (*fn)(const float*, const float*, size_t) = nullptr;
  // extra metrics (metric.h): float32 rows only; key = sign * fx(q, y, d, arg)
  ExtraDistFn fx = nullptr;
  float fx_arg = 0, fx_sign = 1;
  float (*fnh)(const float*, const uint16_t*, size_t) = nullptr;
  float (*fnhh)(const uint16_t*, const uint16_t*, size_t) = nullptr;
  int prefetch_lines = 1;  // cache lines of a vector prefetched ahead of use
  int prefetch_ahead = 2;  // how many vectors ahead

  FlatSpace(const float* xb_, const uint16_t* xh_, size_t d_, MetricType metric, float metric_arg = 0);
  const char* row(int32_t id) const {
    return reinterpret_cast<const char*>(xh ? static_cast<const void*>(xh) : static_cast<const void*>(xb)) +
           size_t(id) * row_bytes;
  }
  float to_query(const float* q, int32_t id) const {
    if (fx) return fx_sign * fx(q, xb + size_t(id) * d, d, fx_arg);
    float v = xh ? fnh(q, xh + size_t(id) * d, d) : fn(q, xb + size_t(id) * d, d);
    return ip ? -v : v;
  }
  float between(int32_t a, int32_t b) const {
    if (fx) return fx_sign * fx(xb + size_t(a) * d, xb + size_t(b) * d, d, fx_arg);
    float v = xh ? fnhh(xh + size_t(a) * d, xh + size_t(b) * d, d) : fn(xb + size_t(a) * d, xb + size_t(b) * d, d);
    return ip ? -v : v;
  }
  // the query-side copy of stored vector `id` (float32)
  const float* query_of(int32_t id, std::vector<float>& buf) const;
  // the form to_query() takes for a float32 query x (d floats): x itself
  const float* prepare(const float* x, std::vector<float>&) const { return x; }
  void prefetch(int32_t id) const {
    const char* p = row(id);
    for (int l = 0; l < prefetch_lines; ++l) __builtin_prefetch(p + 64 * l, 0, 3);
  }
};

// Faiss's HNSWStats (faiss.cvar.hnsw_stats): counters of every HNSW search in
// this process.  n1: queries searched, ndis: distances computed at level 0
// (the entry point's included; the greedy descent above is not counted),
// nhops: level-0 nodes expanded.  n2 is kept for Faiss's layout and stays 0.
struct HNSWStats {
  std::atomic<uint64_t> n1{0}, n2{0}, ndis{0}, nhops{0};
  void reset() {
    n1 = 0;
    n2 = 0;
    ndis = 0;
    nhops = 0;
  }
};
extern HNSWStats hnsw_stats;

struct HnswCand {
  float d;
  int32_t id;
};

struct HNSW {
  // ---- parameters ----
  bool is_similarity = false;  // the metric is a similarity (inner product): set by the index, not stored
  // Faiss's choice between a bounded (ef-sized) and an unbounded candidate
  // queue at level 0.  annvil's level-0 search always keeps an unbounded
  // candidate heap pruned by the current ef-th distance (hnswlib's search,
  // Faiss's search_from_candidate_unbounded), so the flag is kept for Faiss
  // clients and does not change results.  Not stored in files.
  bool search_bounded_queue = true;
  int M = 32;               // upper-level degree; level 0 has 2M
  int efConstruction = 40;  // candidate-list size while adding
  int efSearch = 16;        // candidate-list size while searching
  uint64_t seed = 12345;    // levels are a hash of (seed, node id)

  // ---- graph ----
  int max_level = -1;        // top level of the graph, -1 when empty
  int32_t entry_point = -1;  // a node at max_level
  size_t ntotal = 0;
  Storage<int32_t> links0;
  std::vector<int8_t> levels;
  std::vector<uint32_t> upper_begin;
  Storage<int32_t> upper_links;

  explicit HNSW(int M_ = 32);

  int cap(int level) const { return level == 0 ? 2 * M : M; }
  // The level a node gets: floor(-ln(u) * mL) with mL = 1 / ln(M), u uniform
  // in (0, 1] from a hash of (seed, id), so the graph does not depend on how
  // vectors were split into add() calls.
  int draw_level(int64_t id) const;

  const int32_t* links(int32_t node, int level) const {
    return level == 0 ? links0.data() + size_t(node) * 2 * M
                      : upper_links.data() + (size_t(upper_begin[node]) + level - 1) * M;
  }
  int32_t* links_mut(int32_t node, int level) {
    return level == 0 ? links0.writable() + size_t(node) * 2 * M
                      : upper_links.writable() + (size_t(upper_begin[node]) + level - 1) * M;
  }

  // Grow the graph to hold nodes [ntotal, ntotal + n) (unlinked).
  void grow(size_t n);
  void clear();

  // Undo a failed add: mark() before grow(), rollback() after the failure
  // drops the nodes added since and removes every link to them from the
  // older nodes' lists (lists stay -1 terminated).  The older nodes keep the
  // links they had, less any the failed insertion pruned in favour of a new node.
  struct Mark {
    size_t ntotal, upper_size;
    int32_t entry_point;
    int max_level;
  };
  Mark mark() const { return Mark{ntotal, upper_links.size(), entry_point, max_level}; }
  void rollback(const Mark& m);

  // Make every node reachable from the entry point through level-0 links
  // (a search finds a node only on level 0; the upper levels only pick where
  // it starts): pruning during insertion leaves some
  // nodes without incoming links (many with inner product, where small-norm
  // vectors are nobody's neighbour), and such a node is never found.  An
  // unreachable node gets a level-0 link from, in order of preference: a
  // reachable out-neighbour with a free slot, a reachable neighbour of one,
  // or a reachable out-neighbour whose full list gives up the neighbour with
  // the most incoming links (which stays reachable through the others).
  // Passes repeat until one repairs nothing.  insert() runs it once the
  // nodes inserted since the last repair reach 1/8 of the graph, so the
  // O(N M) scan costs O(M) per insertion, amortised.  Returns links added.
  size_t repair_connectivity();
  size_t inserted_since_repair = 0;

  // Link the given nodes into the graph (their vectors must already be in
  // `sp`).  Nodes are inserted by decreasing level; those that raise the top
  // level are inserted one at a time, the rest in parallel with per-node
  // spinlocks.  With one thread the result is deterministic.
  // Space: FlatSpace, or a compressed storage (hnsw_codes.h); the graph code
  // is a template over it so that each storage gets its own inlined hot loop.
  template <class Space>
  void insert(const Space& sp, const std::vector<int32_t>& nodes);

  // Greedy descent through the upper levels to level 1, returning the node
  // closest to q found there (and its key).
  // q: as returned by sp.prepare().
  template <class Space>
  void descend(const Space& sp, const float* q, int32_t* ep, float* ep_d, int stop_level = 0) const;

  size_t memory_usage() const;
};

// Index files: the ef parameters, entry point, seed and graph arrays (M is
// the caller's to write first: it sizes the index being read).
void write_hnsw_graph(Writer& w, const HNSW& g);
void read_hnsw_graph(Reader& r, HNSW& g);
// after read_hnsw_graph: check the graph against N nodes (links in range,
// levels and entry point consistent), then set g.ntotal = N
void check_hnsw_graph(const Reader& r, HNSW& g, size_t N);

// Per-thread search state, reused across queries so that a search allocates
// nothing once warm.
struct HnswScratch {
  // Visited marks tagged with a generation number: starting a new search
  // bumps the generation instead of clearing the table, so a query costs
  // nothing for nodes it never touches.  The tags are cleared only when the
  // 16-bit generation wraps.
  struct Visited {
    std::vector<uint16_t> tags;
    uint16_t gen = 0;
    void begin(size_t n) {
      if (tags.size() < n) tags.resize(n, 0);
      if (++gen == 0) {
        std::fill(tags.begin(), tags.end(), uint16_t(0));
        gen = 1;
      }
    }
    // true when id was already visited in this search
    bool test_and_set(int32_t id) {
      uint16_t& t = tags[size_t(id)];
      if (t == gen) return true;
      t = gen;
      return false;
    }
  } visited;
  std::vector<HnswCand> cand, tmp, sel, w, s, res;
  std::vector<int32_t> ids;
  std::vector<float> qbuf;
  std::vector<float> qprep;  // the prepared query of a search (Space::prepare)
  // Range search (Faiss's semantics): when range_out is set, every admitted
  // node whose distance is computed at level 0 with key < range_key is
  // appended to it, whether or not it enters the ef-bounded result list.
  std::vector<HnswCand>* range_out = nullptr;
  float range_key = 0;
  // counters of the searches run with this scratch (flushed to hnsw_stats by
  // the search loops)
  uint64_t ndis = 0, nhops = 0;
};
HnswScratch& hnsw_scratch();  // this thread's (grown to the largest index seen)

// Search level 0 from (ep, ep_d) with a candidate list of size ef.  Only nodes
// for which admit(id) is true enter the result set, but every node is used to
// move through the graph.  `res` receives the results as a max-heap by key.
// Reuses per-thread buffers: no allocation per query once warm.
struct HnswAdmitAll {
  bool operator()(int32_t) const { return true; }
};

template <class Space, class Admit>
void hnsw_search_level0(const HNSW& g, const Space& sp, HnswScratch& scratch, const float* q, int32_t ep, float ep_d,
                        int ef, const Admit& admit, std::vector<HnswCand>& res);

// Declared explicit instantiations live in hnsw.cpp.
struct HnswAdmitFn {
  // admit = !deleted(id) && (sel == nullptr || sel->is_member(id))
  const uint64_t* deleted = nullptr;
  const IDSelector* sel = nullptr;
  bool operator()(int32_t id) const {
    if (deleted && ((deleted[size_t(id) >> 6] >> (id & 63)) & 1)) return false;
    return sel == nullptr || sel->is_member(id);
  }
};

}  // namespace annvil
