// The abstract Index every family derives from, with Faiss's semantics, and
// the small structs that travel with it (selectors, search parameters, range
// results).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/metric.h"

namespace annvil {

using idx_t = int64_t;

// ---- selectors ---------------------------------------------------------------
struct IDSelector {
  virtual bool is_member(idx_t id) const = 0;
  virtual ~IDSelector() = default;
};

// ids in [imin, imax)
struct IDSelectorRange : IDSelector {
  idx_t imin, imax;
  bool assume_sorted = false;  // Faiss's hint that the ids of a list are sorted
  IDSelectorRange(idx_t imin_, idx_t imax_, bool assume_sorted_ = false)
      : imin(imin_), imax(imax_), assume_sorted(assume_sorted_) {}
  bool is_member(idx_t id) const override { return id >= imin && id < imax; }
  // ids: n sorted ids; [*jmin, *jmax) is the range of positions whose ids are
  // in [imin, imax) (binary search)
  void find_sorted_ids_bounds(size_t n, const idx_t* ids, size_t* jmin, size_t* jmax) const {
    const idx_t* lo = std::lower_bound(ids, ids + n, imin);
    const idx_t* hi = std::lower_bound(lo, ids + n, imax);
    *jmin = size_t(lo - ids);
    *jmax = size_t(hi - ids);
  }
};

struct IDSelectorBatch : IDSelector {
  std::unordered_set<idx_t> set;
  IDSelectorBatch(size_t n, const idx_t* ids) : set(ids, ids + n) {}
  bool is_member(idx_t id) const override { return set.count(id) != 0; }
};

// bit i of bitmap (little-endian within bytes) tells whether id i is selected
struct IDSelectorBitmap : IDSelector {
  std::vector<uint8_t> bits;
  IDSelectorBitmap(size_t nbytes, const uint8_t* bitmap) : bits(bitmap, bitmap + nbytes) {}
  bool is_member(idx_t id) const override {
    return id >= 0 && size_t(id >> 3) < bits.size() && ((bits[size_t(id >> 3)] >> (id & 7)) & 1);
  }
};

struct IDSelectorNot : IDSelector {
  std::shared_ptr<IDSelector> sel;
  explicit IDSelectorNot(std::shared_ptr<IDSelector> s) : sel(std::move(s)) {}
  bool is_member(idx_t id) const override { return !sel->is_member(id); }
};

// the n listed ids, searched linearly (Faiss's IDSelectorArray: for short
// lists; IDSelectorBatch hashes)
struct IDSelectorArray : IDSelector {
  std::vector<idx_t> ids;
  IDSelectorArray(size_t n, const idx_t* ids_) : ids(ids_, ids_ + n) {}
  bool is_member(idx_t id) const override { return std::find(ids.begin(), ids.end(), id) != ids.end(); }
};

// Boolean combinations of two selectors (Faiss's IDSelectorAnd / Or / XOr)
struct IDSelectorAnd : IDSelector {
  std::shared_ptr<IDSelector> lhs, rhs;
  IDSelectorAnd(std::shared_ptr<IDSelector> a, std::shared_ptr<IDSelector> b) : lhs(std::move(a)), rhs(std::move(b)) {}
  bool is_member(idx_t id) const override { return lhs->is_member(id) && rhs->is_member(id); }
};

struct IDSelectorOr : IDSelector {
  std::shared_ptr<IDSelector> lhs, rhs;
  IDSelectorOr(std::shared_ptr<IDSelector> a, std::shared_ptr<IDSelector> b) : lhs(std::move(a)), rhs(std::move(b)) {}
  bool is_member(idx_t id) const override { return lhs->is_member(id) || rhs->is_member(id); }
};

struct IDSelectorXOr : IDSelector {
  std::shared_ptr<IDSelector> lhs, rhs;
  IDSelectorXOr(std::shared_ptr<IDSelector> a, std::shared_ptr<IDSelector> b) : lhs(std::move(a)), rhs(std::move(b)) {}
  bool is_member(idx_t id) const override { return lhs->is_member(id) != rhs->is_member(id); }
};

struct IDSelectorAll : IDSelector {
  bool is_member(idx_t) const override { return true; }
};

// ---- parameters and results ----------------------------------------------------
struct SearchParameters {
  const IDSelector* sel = nullptr;              // only ids it accepts are returned
  std::shared_ptr<const IDSelector> sel_owner;  // keeps `sel` alive when set from Python
  void set_selector(std::shared_ptr<const IDSelector> s) {
    sel_owner = std::move(s);
    sel = sel_owner.get();
  }
  virtual ~SearchParameters() = default;
};

struct RangeSearchResult {
  size_t nq = 0;
  std::vector<size_t> lims;  // nq + 1
  std::vector<float> distances;
  std::vector<idx_t> labels;
};

// Fill `result` from per-query hits, each (key, id) with key = distance (l2)
// or -similarity (inner product), the form the range scanners collect.
void fill_range_result(const std::vector<std::vector<std::pair<float, idx_t>>>& hits, bool l2,
                       RangeSearchResult* result);
// The same for any metric: key = distance (clamped at 0 for L2) or
// -similarity (inner product, Jaccard).
void fill_range_result(const std::vector<std::vector<std::pair<float, idx_t>>>& hits, MetricType metric,
                       RangeSearchResult* result);

class Writer;
class Reader;

// ---- concurrency -------------------------------------------------------------------
// A reader-writer lock per index.  The bindings take it around every call
// that touches the index's data (README "Threads"): shared for searches,
// reconstruction and serialization, exclusive for add, remove, train, reset
// and merges.  It prefers writers: a writer waiting for the lock holds the
// gate, so a steady stream of searches cannot starve an add.  The core never
// takes it itself (no recursive locking); a wrapped index (the index inside
// an IDMap or an IVF quantizer) is protected by its wrapper's lock.
class IndexLock {
 public:
  IndexLock() = default;
  IndexLock(const IndexLock&) {}  // a copy of an index gets a lock of its own
  IndexLock& operator=(const IndexLock&) { return *this; }
  std::shared_lock<std::shared_mutex> read() const {
    {
      std::lock_guard<std::mutex> wait_for_writers(gate_);
    }
    return std::shared_lock<std::shared_mutex>(rw_);
  }
  std::unique_lock<std::shared_mutex> write() const {
    std::lock_guard<std::mutex> hold_gate(gate_);
    return std::unique_lock<std::shared_mutex>(rw_);
  }

 private:
  mutable std::mutex gate_;
  mutable std::shared_mutex rw_;
};

// ---- the index -------------------------------------------------------------------
struct Index {
  int d = 0;
  idx_t ntotal = 0;
  MetricType metric_type = METRIC_L2;
  float metric_arg = 0;  // p of METRIC_Lp (Faiss's Index::metric_arg); unused by other metrics
  bool is_trained = true;
  bool verbose = false;
  IndexLock lock;

  // extra_metrics: the family supports the metrics beyond L2 / inner product
  // (metric.h); the others reject them here, with the list of what they take.
  Index(int d_, MetricType metric, bool extra_metrics = false);
  virtual ~Index() = default;

  virtual void train(idx_t n, const float* x);
  virtual void add(idx_t n, const float* x) = 0;
  virtual void add_with_ids(idx_t n, const float* x, const idx_t* ids);
  // D, I: n * k.  Results sorted best first.
  virtual void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                      const SearchParameters* params = nullptr) const = 0;
  virtual void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                            const SearchParameters* params = nullptr) const;
  virtual void reconstruct(idx_t key, float* out) const;
  virtual void reconstruct_n(idx_t i0, idx_t ni, float* out) const;
  virtual size_t remove_ids(const IDSelector& sel);
  // true when remove_ids renumbers the remaining vectors (flat storage, as in
  // Faiss); false when removed ids just disappear (tombstones, e.g. HNSW)
  virtual bool remove_ids_shifts() const { return true; }
  virtual void reset() = 0;

  // ---- standalone codec (Faiss's sa_* API) ----
  // One self-contained code of sa_code_size() bytes per vector, in Faiss's
  // layout (IVF codes start with the list number, see index_ivf.h).
  // codes: n * sa_code_size() bytes; x: n * d floats.  Default: not supported.
  virtual size_t sa_code_size() const;
  virtual void sa_encode(idx_t n, const float* x, uint8_t* codes) const;
  virtual void sa_decode(idx_t n, const uint8_t* codes, float* x) const;
  // Append n vectors given as sa_encode codes; ids (n, may be null: the
  // positions ntotal, ntotal + 1, ...) where the index stores ids.
  virtual void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids);

  // ---- merging (Faiss's merge_from) ----
  // Raise unless `other` holds vectors of the same kind (type, d, metric,
  // codec) so that its entries can be moved into this index as they are.
  virtual void check_compatible_for_merge(const Index& other) const;
  // Move other's vectors to the end of this index (ids shifted by add_id
  // where the index stores ids); `other` is left empty.
  virtual void merge_from(Index& other, idx_t add_id = 0);

  // search(), plus the stored (decoded) vector of every result:
  // recons: n * k * d floats, NaN where the label is -1.
  virtual void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                                      const SearchParameters* params = nullptr) const;
  // bytes held by the index (payload plus bookkeeping)
  virtual size_t memory_usage() const { return 0; }

  // ---- serialization: a type tag and a payload (see io.h) ----
  virtual std::string type_tag() const = 0;
  virtual void write_payload(Writer& w) const = 0;

  // ---- shared checks ----
  void check_trained() const;
  void check_k(idx_t k) const;
  // the common part of check_compatible_for_merge: same type tag, d, metric
  void check_same_kind(const Index& other) const;
};

using IndexPtr = std::shared_ptr<Index>;

}  // namespace annvil
