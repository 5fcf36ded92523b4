// IVFFlat: codes are the float32 vectors themselves.  The batched search is
// IndexIVF's grouped search: list_vectors() hands the lists to the panel
// kernel in place; the scanner below serves lightly probed lists, range
// search and max_codes searches.
#include "ivf/index_ivf_flat.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include "distances/distances.h"
#include "core/io.h"
#include "distances/knn.h"

namespace annvil {

IndexIVFFlat::IndexIVFFlat(IndexPtr q, int d_, size_t nlist_, MetricType metric)
    : IndexIVF(std::move(q), d_, nlist_, sizeof(float) * size_t(d_ > 0 ? d_ : 1), metric, /*extra_metrics=*/true) {}

void IndexIVFFlat::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
  for (idx_t i = 0; i < n; ++i) {
    uint8_t* c = codes + size_t(i) * code_size;
    if (list_nos[i] < 0)
      std::memset(c, 0, code_size);
    else
      std::memcpy(c, x + size_t(i) * d, code_size);
  }
}

void IndexIVFFlat::decode_vectors(idx_t n, const uint8_t* codes, const idx_t*, float* x) const {
  std::memcpy(x, codes, size_t(n) * code_size);
}

namespace {

// Keys are "smaller is better": L2, -inner product, or for the extra metrics
// the distance (-similarity for Jaccard) from the metric's kernel.
struct FlatScanner : InvertedListScanner {
  const float* q = nullptr;
  size_t d;
  bool l2;
  ExtraDistFn extra = nullptr;  // set for the extra metrics
  float metric_arg = 0, sign = 1;
  mutable std::vector<float> buf;
  FlatScanner(size_t d_, MetricType metric, float arg) : d(d_), l2(metric == METRIC_L2), buf(256) {
    if (is_extra_metric(metric)) {
      extra = extra_distance_fn(kernels(), metric);
      metric_arg = arg;
      sign = is_similarity_metric(metric) ? -1.f : 1.f;
    }
  }
  void set_query(const float* q_) override { q = q_; }
  void set_list(idx_t l, float) override { list_no = l; }
  float distance_to_code(const uint8_t* code) const override {
    const float* y = reinterpret_cast<const float*>(code);
    if (extra) return sign * extra(q, y, d, metric_arg);
    return l2 ? kernels().l2sqr(q, y, d) : -kernels().inner_product(q, y, d);
  }
  size_t scan_codes(size_t n, const uint8_t* codes, size_t, const idx_t* ids, TopK& heap) const override {
    const Kernels& K = kernels();
    const float* y = reinterpret_cast<const float*>(codes);
    float* dist = buf.data();
    float thr = heap.threshold();
    for (size_t i0 = 0; i0 < n; i0 += 256) {
      size_t m = std::min<size_t>(256, n - i0);
      if (extra)
        extra_distances_ny(extra, metric_arg, q, y + i0 * d, d, m, dist);
      else if (l2)
        K.l2sqr_ny(q, y + i0 * d, d, m, dist);
      else
        K.inner_product_ny(q, y + i0 * d, d, m, dist);
      for (size_t i = 0; i < m; ++i) {
        float key = extra ? sign * dist[i] : l2 ? dist[i] : -dist[i];
        if (key < thr) {
          idx_t id = ids[i0 + i];
          if (sel && !sel->is_member(id)) continue;
          heap.push(key, id);
          thr = heap.threshold();
        }
      }
    }
    return n;
  }
};

}  // namespace

std::unique_ptr<InvertedListScanner> IndexIVFFlat::get_scanner() const {
  return std::make_unique<FlatScanner>(size_t(d), metric_type, metric_arg);
}

const float* IndexIVFFlat::list_vectors(size_t l, std::vector<float>&) const {
  // the panel kernel ranks by inner products: the extra metrics go through the scanner
  if (is_extra_metric(metric_type)) return nullptr;
  return reinterpret_cast<const float*>(invlists->get_codes(l));  // the codes are the vectors
}

void IndexIVFFlat::write_payload(Writer& w) const {
  write_index_header(w, *this);
  write_ivf(w);
}

namespace {
IndexPtr read_ivf_flat(Reader& r) {
  IndexHeader h = read_header_fields(r);
  IndexIVF::Common c = IndexIVF::read_ivf_common(r, h.d);
  auto idx = std::make_shared<IndexIVFFlat>(c.quantizer, h.d, c.nlist, h.metric);
  idx->metric_arg = h.metric_arg;
  IndexIVF::read_ivf_lists(r, *idx, c, h.ntotal, h.is_trained);
  return idx;
}
ANNVIL_REGISTER_INDEX("IVFFlat", read_ivf_flat);
}  // namespace

}  // namespace annvil
