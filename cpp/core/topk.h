// Top-k selection: every heap, reservoir and result sink of annvil, in one
// place (as Faiss's impl/ResultHandler.h).  What is here:
//   missing_result_distance()  the distance reported for a missing result
//   TopK                       bounded max-heap of (key, id), ties to the smaller id
//   TopKArray                  nq TopK heaps with their storage; merge_from, finalize
//   TopKSink                   panel sink (distances.h) feeding TopK heaps, with labels / selector
//   Top1Sink                   panel sink for k = 1: the kernel keeps the running minimum
//   RangeSink                  panel sink collecting every (key, label) under a radius
//   TopKReservoir              large-k collector of float keys (Faiss's reservoir handler)
//   ApproxReservoir            large-k collector of approximate keys, exact re-scoring at the end
//   PQ4Reservoir               large-k collector of uint16 sums (fast-scan), packed sum << 48 | id
//
// Everything inside annvil ranks by a *key* that is smaller for better
// results: the L2 distance (or |b|^2 - 2<q,b> before the query norm is added
// back), or the negated inner product.  A heap of capacity k keeps the k
// smallest keys with the worst of them on top, so a candidate is rejected with
// one comparison against the top (the "threshold").  The reservoirs trade the
// heap's log k per accepted candidate for an nth_element pass when their
// buffer fills; they rank by (key, id) like TopK.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "distances/distances.h"
#include "core/index.h"

namespace annvil {

// The distance reported for a missing result (k > the number of candidates,
// filtered out): Faiss's +FLT_MAX for L2 and -FLT_MAX for inner product (the
// heaps' neutral values), with label -1.  Finite, so clients that sort or
// sum distances keep working.
inline float missing_result_distance(MetricType metric) {
  return is_similarity_metric(metric) ? -std::numeric_limits<float>::max() : std::numeric_limits<float>::max();
}

struct TopK {
  size_t k = 0;
  size_t size = 0;
  float* keys = nullptr;  // k entries, heap-ordered while filling
  int64_t* ids = nullptr;

  float threshold() const { return size < k ? std::numeric_limits<float>::infinity() : keys[0]; }

  // Insert (key, id) if it beats the threshold (ties go to the smaller id, so
  // the result does not depend on the scan order).
  void push(float key, int64_t id) {
    if (size < k) {
      size_t i = size++;
      while (i > 0) {  // sift up
        size_t parent = (i - 1) / 2;
        if (!worse(key, id, keys[parent], ids[parent])) break;
        keys[i] = keys[parent];
        ids[i] = ids[parent];
        i = parent;
      }
      keys[i] = key;
      ids[i] = id;
    } else if (worse(keys[0], ids[0], key, id)) {
      replace_top(key, id);
    }
  }

  // Sort ascending by (key, id) in place; size entries remain valid.
  void sort() {
    std::vector<std::pair<float, int64_t>> tmp(size);
    for (size_t i = 0; i < size; ++i) tmp[i] = {keys[i], ids[i]};
    std::sort(tmp.begin(), tmp.end());
    for (size_t i = 0; i < size; ++i) {
      keys[i] = tmp[i].first;
      ids[i] = tmp[i].second;
    }
  }

 private:
  // a ranks after b
  static bool worse(float ka, int64_t ia, float kb, int64_t ib) { return ka > kb || (ka == kb && ia > ib); }

  void replace_top(float key, int64_t id) {
    size_t i = 0;
    for (;;) {
      size_t l = 2 * i + 1, r = l + 1;
      if (l >= size) break;
      size_t c = (r < size && worse(keys[r], ids[r], keys[l], ids[l])) ? r : l;
      if (!worse(keys[c], ids[c], key, id)) break;
      keys[i] = keys[c];
      ids[i] = ids[c];
      i = c;
    }
    keys[i] = key;
    ids[i] = id;
  }
};

// Heap storage for nq queries of capacity k each.
struct TopKArray {
  size_t nq = 0, k = 0;
  std::vector<float> keys;
  std::vector<int64_t> ids;
  std::vector<TopK> heaps;

  TopKArray() = default;
  TopKArray(size_t nq_, size_t k_) : nq(nq_), k(k_), keys(nq_ * k_), ids(nq_ * k_), heaps(nq_) {
    for (size_t q = 0; q < nq; ++q) {
      heaps[q].k = k;
      heaps[q].keys = keys.data() + q * k;
      heaps[q].ids = ids.data() + q * k;
    }
  }
  TopK& operator[](size_t q) { return heaps[q]; }
  const TopK& operator[](size_t q) const { return heaps[q]; }

  // Merge another array's results for the same queries into this one.
  void merge_from(const TopKArray& other) {
    for (size_t q = 0; q < nq; ++q)
      for (size_t i = 0; i < other.heaps[q].size; ++i) heaps[q].push(other.heaps[q].keys[i], other.heaps[q].ids[i]);
  }

  // Write sorted results: D[q*k + i] = sign * (key + offset[q]) (clamped at 0
  // for L2), I = id; missing entries get -1 and missing_result_distance().
  // Extra metrics: keys are the distances (or -similarity for Jaccard), no clamp.
  void finalize(MetricType metric, const float* offsets, float* D, int64_t* I) {
    const bool l2 = metric == METRIC_L2, sim = is_similarity_metric(metric);
    const float pad = missing_result_distance(metric);
    for (size_t q = 0; q < nq; ++q) {
      TopK& h = heaps[q];
      h.sort();
      float off = offsets ? offsets[q] : 0.f;
      for (size_t i = 0; i < k; ++i) {
        if (i < h.size) {
          float v = h.keys[i] + off;
          D[q * k + i] = sim ? -v : l2 ? (v < 0 ? 0.f : v) : v;
          I[q * k + i] = h.ids[i];
        } else {
          D[q * k + i] = pad;
          I[q * k + i] = -1;
        }
      }
    }
  }
};

// Panel sink that feeds NR heaps; translates rows to labels and applies an
// optional selector.  `heaps[j]` may be null for padding columns (their
// threshold is -inf, so they never receive candidates).
struct TopKSink : PanelSink {
  alignas(64) float thr[64];
  TopK* heaps[64];
  const int64_t* labels = nullptr;  // row -> label, or identity
  const IDSelector* sel = nullptr;

  explicit TopKSink(int nr) {
    thresholds = thr;
    for (int j = 0; j < 64; ++j) {
      thr[j] = -std::numeric_limits<float>::infinity();
      heaps[j] = nullptr;
    }
    (void)nr;
  }
  void set(int j, TopK* h) {
    heaps[j] = h;
    thr[j] = h ? h->threshold() : -std::numeric_limits<float>::infinity();
  }
  void push(int j, float key, int64_t row) override {
    int64_t label = labels ? labels[row] : row;
    if (sel && !sel->is_member(label)) return;
    heaps[j]->push(key, label);
    thr[j] = heaps[j]->threshold();
  }
};

// k = 1 without a selector: the kernel keeps the running minimum itself.
struct Top1Sink : PanelSink {
  alignas(64) float b[64];
  int64_t r[64];
  Top1Sink() {
    best = b;
    best_row = r;
    for (int j = 0; j < 64; ++j) {
      b[j] = std::numeric_limits<float>::infinity();
      r[j] = -1;
    }
  }
  void push(int, float, int64_t) override {}
};

// Panel sink for range search: every candidate under the threshold (the
// radius as a key) is appended to out[j], the hits of panel column j.
struct RangeSink : PanelSink {
  alignas(64) float thr[64];
  std::vector<std::pair<float, idx_t>>* out = nullptr;  // one vector per panel column
  const idx_t* labels = nullptr;
  const IDSelector* sel = nullptr;
  RangeSink() {
    thresholds = thr;
    for (float& v : thr) v = -std::numeric_limits<float>::infinity();
  }
  void push(int j, float key, int64_t row) override {
    idx_t label = labels ? labels[row] : row;
    if (sel && !sel->is_member(label)) return;
    out[j].emplace_back(key, label);
  }
};

// ---- reservoirs: large k -------------------------------------------------------------
// Top-k collector for large k (as Faiss's reservoir handler): candidates
// below the threshold are appended in O(1); when the buffer is full the k
// best (by key, then id) are selected and the threshold drops to the k-th.
struct TopKReservoir {
  size_t k = 0, cap = 0, n = 0;
  float thr = std::numeric_limits<float>::infinity();
  std::vector<std::pair<float, idx_t>> buf;
  void init(size_t k_) {
    k = k_;
    cap = k + std::max<size_t>(16, k / 2);
    buf.resize(cap);
    n = 0;
    thr = std::numeric_limits<float>::infinity();
  }
  float threshold() const { return thr; }
  // returns true when the threshold changed
  bool push(float key, idx_t id) {
    buf[n++] = {key, id};
    if (n < cap) return false;
    std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.begin() + n);
    n = k;
    thr = buf[k - 1].first;
    return true;
  }
  // the k best into an empty heap's storage, unordered: only valid when the
  // heap is next sorted (TopKArray::finalize) or merged from, not pushed to
  void fill_unordered(TopK& h) {
    if (n > k) std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.begin() + n);
    const size_t c = std::min(n, k);
    for (size_t i = 0; i < c; ++i) {
      h.keys[i] = buf[i].first;
      h.ids[i] = buf[i].second;
    }
    h.size = c;
  }
};

// Large-k collector for the 16-bit screened scans that defers the exact
// (float) re-scoring to the end.  Entries carry the approximate key a (the
// 16-bit sum dequantised: |exact - a| <= E) and what is needed to re-score
// them.  With a_k the k-th smallest approximate key seen, any entry of the
// exact top k has a <= a_k + 2E (the k entries with a <= a_k all have exact
// keys <= a_k + E), so entries above that bound are dropped and the final
// exact selection among the survivors is exact.
// (used by the 8-bit IVF-PQ scans, index_ivf_pq.cpp)
struct ApproxReservoir {
  struct Entry {
    float a;
    idx_t id;
    const uint8_t* code;  // null: `base` is already the exact key
    float base;           // exact key = base + float table sum of code
  };
  size_t k = 0, cap = 0;
  float E = 0, thr = std::numeric_limits<float>::infinity();
  std::vector<Entry> buf;
  void init(size_t k_, float err) {
    k = k_;
    cap = 2 * k + 16;
    E = err;
    thr = std::numeric_limits<float>::infinity();
    buf.clear();
  }
  float threshold() const { return thr; }
  void add(float a, idx_t id, const uint8_t* code, float base) {
    buf.push_back({a, id, code, base});
    if (buf.size() >= cap) shrink();
  }
  void push(float key, idx_t id) { add(key, id, nullptr, key); }  // exact keys (float scans)
  void shrink() {
    std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.end(),
                     [](const Entry& x, const Entry& y) { return x.a < y.a; });
    const float bound = buf[k - 1].a + 2 * E;
    auto end = std::partition(buf.begin() + k, buf.end(), [&](const Entry& x) { return x.a <= bound; });
    buf.erase(end, buf.end());
    thr = bound;
    if (buf.size() * 2 > cap) cap = buf.size() * 2;  // many near-ties: grow
  }
  template <class Rescore>
  void finish(TopK& h, Rescore&& rescore) {
    for (auto& e : buf)
      if (e.code) {
        e.base += rescore(e.code);
        e.code = nullptr;
      }
    // e.base is now the exact key: select the k best by (key, id)
    auto less = [](const Entry& x, const Entry& y) { return x.base < y.base || (x.base == y.base && x.id < y.id); };
    if (buf.size() > k) std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.end(), less);
    const size_t c = std::min(buf.size(), k);
    for (size_t i = 0; i < c; ++i) {
      h.keys[i] = buf[i].base;
      h.ids[i] = buf[i].id;
    }
    h.size = c;
  }
};

// Top-k collector for uint16 sums: candidates are appended to a buffer and,
// when it fills, an nth_element pass keeps the k best and tightens the
// threshold.  Cheaper than a heap when k is large (a heap pays log k per
// accepted candidate); ranks by (sum, id) like TopK, ids below 2^48.
struct PQ4Reservoir {
  size_t k = 0, cap = 0, n = 0;
  uint32_t threshold = 0x10000;  // candidates must be strictly below
  std::vector<uint64_t> buf;     // sum << 48 | id

  void reset(size_t k_) {
    k = k_;
    cap = std::max<size_t>(4 * k_, 64);
    buf.resize(cap);
    n = 0;
    threshold = 0x10000;
  }
  void push(uint32_t sum, int64_t id) {
    buf[n++] = (uint64_t(sum) << 48) | uint64_t(id);
    if (n == cap) shrink();
  }
  void shrink() {
    if (n <= k) return;
    std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.begin() + n);
    n = k;
    // buf[k - 1] is now the k-th best; later ids are larger, so a tie loses
    threshold = uint32_t(buf[k - 1] >> 48);
  }
  // sorted best first; returns how many (<= k)
  size_t finish(uint32_t* sums, int64_t* ids) {
    if (n > k) shrink();
    std::sort(buf.begin(), buf.begin() + n);
    for (size_t i = 0; i < n; ++i) {
      sums[i] = uint32_t(buf[i] >> 48);
      ids[i] = int64_t(buf[i] & ((uint64_t(1) << 48) - 1));
    }
    return n;
  }
};

}  // namespace annvil
