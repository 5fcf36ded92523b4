// Graph indexes over an HNSW graph (Faiss's IndexHNSW / IndexHNSWFlat), with
// tombstone deletes and a planner for filtered search.
//
// Ids are slot numbers: add() gives ids ntotal, ntotal + 1, ...
// remove_ids() removes vectors as IndexFlat does: the later ids shift down
// (what clients that map positions to documents, e.g. LangChain, expect); the
// graph is repaired locally (each node that lost a neighbour takes the lost
// neighbour's own neighbours as candidates and keeps the best by the HNSW
// heuristic), not rebuilt.  mark_deleted() is the fast delete of hnswlib:
// slots marked deleted (a bitmap) are never returned but keep serving as
// waypoints; ntotal counts slots, deleted ones included, so ids stay stable;
// n_deleted tells how many are tombstones.  With replace_deleted set, add()
// reuses deleted slots (lowest first) before appending, as hnswlib does;
// compact() rebuilds the graph without them (renumbering the ids).
#pragma once
#include <vector>

#include "hnsw/hnsw.h"
#include "core/index.h"
#include "core/storage.h"

namespace annvil {

struct SearchParametersHNSW : SearchParameters {
  int efSearch = 0;  // 0: use the index's hnsw.efSearch
};

// Output of a graph range search: per query, the admitted nodes met at level
// 0 with key < key_radius (keys: smaller is closer, -<x, y> for similarities).
struct HnswRangeCollect {
  float key_radius = 0;
  std::vector<std::vector<HnswCand>> per_query;  // n entries
};

struct IndexHNSW : Index {
  HNSW hnsw;
  Storage<float> xb;     // ntotal * d, row-major (float32 storage)
  Storage<uint16_t> xh;  // ntotal * d halves (exact half storage)
  // Vectors are stored as halves while every value added is exactly
  // representable in half precision (then distances are identical to
  // float32 storage, at half the memory and memory traffic); the first add
  // with a value that is not converts the storage to float32 for good.
  bool allow_f16 = true;
  bool is_f16 = false;
  std::vector<uint64_t> deleted;  // bitmap over slots, (ntotal + 63) / 64 words
  size_t n_deleted = 0;
  bool replace_deleted = false;
  // How filtered searches (a selector, or deleted slots) run: the planner's
  // choice (auto), or always the graph / always an exact scan.  Not stored
  // in index files.
  enum FilterStrategy : int { filter_auto = 0, filter_graph = 1, filter_exact = 2 };
  int filter_strategy = filter_auto;

  // extra_metrics: the storage supports the metrics beyond L2 / IP (float32 only)
  IndexHNSW(int d, int M, MetricType metric, bool extra_metrics = false);

  void add(idx_t n, const float* x) override;
  // Like add(); ids (n entries, may be null) receives the slot of each vector.
  virtual void add_slots(idx_t n, const float* x, idx_t* ids);
  // After a failed insertion: drop nodes n0.. and their links, re-delete the
  // reused slots (the caller truncates its vector storage).
  void rollback_add(const HNSW::Mark& mark, idx_t n0, const std::vector<int32_t>& reused);
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  // Approximate: the candidates of an efSearch-wide graph search (filters and
  // deletes honoured, as in search) that lie within the radius, so at most
  // efSearch results per query; raise efSearch for large radii.
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
  // removes the selected slots, renumbering the others (see above)
  size_t remove_ids(const IDSelector& sel) override;
  bool remove_ids_shifts() const override { return true; }
  // tombstones: hides the selected slots, ids unchanged; returns how many
  // were newly marked
  size_t mark_deleted(const IDSelector& sel);
  void reset() override;
  size_t memory_usage() const override;

  // standalone codes of the storage: float32 rows here, SQ / PQ codes for
  // IndexHNSWSQ / IndexHNSWPQ (Faiss has no standalone codec on HNSW)
  size_t sa_code_size() const override;
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  // adds the vectors through the graph (ids ignored: they are slots)
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // same type, d, metric and storage codec; other's live vectors are
  // inserted into this graph (Faiss has no HNSW merge)
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;
  // the storage code of slot i (sa_code_size() bytes)
  virtual void slot_code(idx_t i, uint8_t* code) const;

  FlatSpace space() const {
    return FlatSpace(is_f16 ? nullptr : xb.data(), is_f16 ? xh.data() : nullptr, size_t(d), metric_type, metric_arg);
  }
  // stored vector i as float32 (exact; decoded for compressed storages)
  virtual void row_f32(idx_t i, float* out) const;
  // Re-score the rows of (D, I) (n * k, -1 padded) with the storage's own
  // distance (the graph search's), re-sorted: the exact-scan path of a
  // filtered search then returns the same distances as the graph path.
  virtual void rescore_with_space(idx_t n, const float* x, idx_t k, float* D, idx_t* I) const;
  // move the vectors and level-0 links to huge pages (after large adds)
  void to_huge_pages_after_add();
  // false for the compressed storages (index_hnsw_quant.h): xb and xh stay empty
  virtual bool stores_floats() const { return true; }
  // The unfiltered-or-graph part of search(): n queries through the graph
  // with candidate list ef, admitting `admit` when filtered.  Overridden by
  // each storage to run the graph templates on its own Space.
  virtual void search_graph(idx_t n, const float* x, idx_t k, int ef, bool filtered, const HnswAdmitFn& admit, float* D,
                            idx_t* I, HnswRangeCollect* rc = nullptr) const;

  bool is_deleted(idx_t id) const { return n_deleted && ((deleted[size_t(id) >> 6] >> (id & 63)) & 1); }
  // Rebuild the graph from the live vectors only; returns the old id of each
  // new slot (new id i was old id result[i]).
  std::vector<idx_t> compact();

  // Fraction of slots a search with `sel` may return (deleted ones excluded):
  // exact for small indexes, else estimated from 1024 slots.
  double admitted_fraction(const IDSelector* sel) const;

  std::string type_tag() const override { return "HNSW"; }
  void write_payload(Writer& w) const override;
  void read_payload_body(Reader& r);  // everything after the header

 protected:
  // remove_ids' steps: relink the graph without the slots whose newid is -1
  // (newid: ntotal entries, old slot -> new slot), then keep the storage rows
  // keep[i] (old slots, ascending) as rows i
  virtual void relink_without(const std::vector<int32_t>& newid);
  virtual void compact_storage(const std::vector<idx_t>& keep);
  // the trained codec matches other's (for merge_from); nothing to check here
  virtual void check_same_codec(const IndexHNSW& other) const;
};

// Relink graph g without the nodes whose newid is -1 and renumber the rest
// (see IndexHNSW::remove_ids); sp: the storage, still in the old numbering.
// Instantiated in index_hnsw.cpp for every Space.
template <class Space>
void hnsw_relink_without(HNSW& g, const Space& sp, const std::vector<int32_t>& newid);

// Re-home an array on 2 MB transparent huge pages where the OS offers them
// (no-op for small arrays and views).
void hnsw_to_huge_pages(Storage<uint8_t>& s);

// Graph search of n queries (x: n * d) on storage `sp`, k results each into D,
// I (already padded).  Instantiated in index_hnsw.cpp for every Space.
template <class Space>
void hnsw_rescore(const IndexHNSW& index, const Space& sp, idx_t n, const float* x, idx_t k, float* D, idx_t* I);

template <class Space>
void hnsw_search_batch(const IndexHNSW& index, const Space& sp, idx_t n, const float* x, idx_t k, int ef, bool filtered,
                       const HnswAdmitFn& admit, float* D, idx_t* I, HnswRangeCollect* rc = nullptr);

struct IndexHNSWFlat : IndexHNSW {
  IndexHNSWFlat(int d, int M = 32, MetricType metric = METRIC_L2) : IndexHNSW(d, M, metric, /*extra_metrics=*/true) {}
  std::string type_tag() const override { return "HNSWFlat"; }
};

}  // namespace annvil
