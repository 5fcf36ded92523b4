// Top-k selection with bounded max-heaps.
//
// Everything inside annvil ranks by a *key* that is smaller for better
// results: the L2 distance (or |b|^2 - 2<q,b> before the query norm is added
// back), or the negated inner product.  A heap of capacity k keeps the k
// smallest keys with the worst of them on top, so a candidate is rejected with
// one comparison against the top (the "threshold").
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

}  // namespace annvil
