// IVFFlat search.  A batch of queries is scanned list by list rather than
// query by query: the (query, probed list) pairs are grouped by list, and each
// probed list is read once for all the queries that probe it.  When enough
// queries share a list they are packed into panels (distances.h) so that the
// outer-product kernel computes NR inner products per base element loaded;
// lightly shared lists use the one-query kernels while the list is hot in
// cache.  Threads take disjoint lists, each with its own heaps, merged at the
// end; a single query thus still spreads its probed lists over the threads.
//
// Keys for L2 in this path are |b|^2 - 2<q, b> (the panel form); the query-
// by-query kernels subtract |q|^2 from the exact distance to stay on the same
// scale, and |q|^2 is added back when the heaps are finalised.
#include "index_ivf_flat.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include "distances.h"
#include "io.h"
#include "knn.h"

namespace annvil {

IndexIVFFlat::IndexIVFFlat(IndexPtr q, int d_, size_t nlist_, MetricType metric)
    : IndexIVF(std::move(q), d_, nlist_, sizeof(float) * size_t(d_ > 0 ? d_ : 1), metric) {}

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

struct FlatScanner : InvertedListScanner {
  const float* q = nullptr;
  size_t d;
  bool l2;
  std::vector<float> buf;
  FlatScanner(size_t d_, bool l2_) : d(d_), l2(l2_), buf(256) {}
  void set_query(const float* q_) override { q = q_; }
  void set_list(idx_t l, float) override { list_no = l; }
  float distance_to_code(const uint8_t* code) const override {
    const float* y = reinterpret_cast<const float*>(code);
    return l2 ? kernels().l2sqr(q, y, d) : -kernels().inner_product(q, y, d);
  }
  size_t scan_codes(size_t n, const uint8_t* codes, size_t, const idx_t* ids, TopK& heap) const override {
    const Kernels& K = kernels();
    const float* y = reinterpret_cast<const float*>(codes);
    float* dist = const_cast<float*>(buf.data());
    float thr = heap.threshold();
    for (size_t i0 = 0; i0 < n; i0 += 256) {
      size_t m = std::min<size_t>(256, n - i0);
      if (l2)
        K.l2sqr_ny(q, y + i0 * d, d, m, dist);
      else
        K.inner_product_ny(q, y + i0 * d, d, m, dist);
      for (size_t i = 0; i < m; ++i) {
        float key = l2 ? dist[i] : -dist[i];
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

struct AlignedFloats {
  float* p = nullptr;
  explicit AlignedFloats(size_t n) {
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
    if (!p) throw std::bad_alloc();
  }
  ~AlignedFloats() { std::free(p); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
};

}  // namespace

std::unique_ptr<InvertedListScanner> IndexIVFFlat::get_scanner() const {
  return std::make_unique<FlatScanner>(size_t(d), metric_type == METRIC_L2);
}

void IndexIVFFlat::search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis,
                                      float* D, idx_t* I, size_t np, size_t mc, const IDSelector* sel) const {
  if (mc) {  // a per-query budget of codes needs the query-by-query order
    IndexIVF::search_preassigned(n, x, k, keys, coarse_dis, D, I, np, mc, sel);
    return;
  }
  const Kernels& K = kernels();
  const size_t NR = size_t(K.panel_width);
  const bool l2 = metric_type == METRIC_L2;
  const InvertedLists& il = *invlists;
  const size_t nq = size_t(n);

  // (query, list) pairs grouped by list: counting sort, queries ascending
  std::vector<size_t> start(nlist + 1, 0);
  for (size_t i = 0; i < nq * np; ++i)
    if (keys[i] >= 0) start[size_t(keys[i]) + 1]++;
  for (size_t l = 0; l < nlist; ++l) start[l + 1] += start[l];
  std::vector<uint32_t> qs(start[nlist]);
  {
    std::vector<size_t> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < nq * np; ++i)
      if (keys[i] >= 0) qs[fill[size_t(keys[i])]++] = uint32_t(i / np);
  }
  // the lists to scan, largest work first so that dynamic scheduling balances
  std::vector<std::pair<size_t, uint32_t>> work;
  size_t total = 0;
  for (size_t l = 0; l < nlist; ++l) {
    size_t m = start[l + 1] - start[l], ls = il.list_size(l);
    if (m && ls) {
      work.emplace_back(m * ls, uint32_t(l));
      total += m * ls;
    }
  }
  std::sort(work.begin(), work.end(), [](auto& a, auto& b) { return a.first > b.first; });

  std::vector<float> qnorms(l2 ? nq : 0);
  if (l2) compute_norms(nq, x, size_t(d), qnorms.data());

  const size_t min_panel = panel_min_queries > 0 ? size_t(panel_min_queries) : std::max<size_t>(2, NR / 3);
  int nt = omp_get_max_threads();
  if (total * size_t(d) < (1u << 18)) nt = 1;
  nt = std::max(1, std::min<int>(nt, int(work.size())));

  TopKArray heaps(nq, size_t(k));
  std::vector<TopKArray> local(size_t(nt > 1 ? nt : 0));
  const size_t BB = std::max<size_t>(48, (192 * 1024) / (sizeof(float) * size_t(d)));

#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    if (nt > 1) local[t] = TopKArray(nq, size_t(k));
    TopKArray& H = nt > 1 ? local[t] : heaps;
    AlignedFloats panel(size_t(d) * NR);
    std::vector<float> norms, dist(256);
    TopKSink sink{int(NR)};
    sink.sel = sel;
#pragma omp for schedule(dynamic, 1)
    for (int64_t w = 0; w < int64_t(work.size()); ++w) {
      const size_t l = work[size_t(w)].second;
      const size_t nb = il.list_size(l);
      const float* base = reinterpret_cast<const float*>(il.get_codes(l));
      const idx_t* ids = il.get_ids(l);
      const uint32_t* lq = qs.data() + start[l];
      const size_t m = start[l + 1] - start[l];
      if (m >= min_panel) {
        if (l2) {
          norms.resize(nb);
          K.norms_sqr(base, size_t(d), nb, norms.data());
        }
        sink.labels = ids;
        for (size_t j0 = 0; j0 < m; j0 += NR) {
          const size_t nv = std::min(NR, m - j0);
          // gather and pack: panel[p * NR + j] = x[q_j][p]
          for (size_t j = 0; j < nv; ++j) {
            const float* xq = x + size_t(lq[j0 + j]) * d;
            for (size_t p = 0; p < size_t(d); ++p) panel.p[p * NR + j] = xq[p];
          }
          if (nv < NR)
            for (size_t p = 0; p < size_t(d); ++p)
              std::fill(panel.p + p * NR + nv, panel.p + p * NR + NR, 0.f);
          for (size_t j = 0; j < NR; ++j) sink.set(int(j), j < nv ? &H[lq[j0 + j]] : nullptr);
          for (size_t b0 = 0; b0 < nb; b0 += BB) {
            size_t nbb = std::min(BB, nb - b0);
            K.scan_panel(panel.p, size_t(d), base + b0 * d, nbb, l2 ? norms.data() + b0 : nullptr, l2 ? -2.f : -1.f,
                         int64_t(b0), &sink);
          }
        }
      } else {
        for (size_t j = 0; j < m; ++j) {
          const size_t q = lq[j];
          const float* xq = x + q * d;
          TopK& h = H[q];
          const float off = l2 ? qnorms[q] : 0.f;
          float thr = h.threshold();
          for (size_t i0 = 0; i0 < nb; i0 += 256) {
            size_t mm = std::min<size_t>(256, nb - i0);
            if (l2)
              K.l2sqr_ny(xq, base + i0 * d, size_t(d), mm, dist.data());
            else
              K.inner_product_ny(xq, base + i0 * d, size_t(d), mm, dist.data());
            for (size_t i = 0; i < mm; ++i) {
              float key = l2 ? dist[i] - off : -dist[i];
              if (key < thr) {
                idx_t id = ids[i0 + i];
                if (sel && !sel->is_member(id)) continue;
                h.push(key, id);
                thr = h.threshold();
              }
            }
          }
        }
      }
    }
  }
  for (int t = 0; t < nt && nt > 1; ++t) heaps.merge_from(local[size_t(t)]);
  heaps.finalize(metric_type, l2 ? qnorms.data() : nullptr, D, I);
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
  IndexIVF::read_ivf_lists(r, *idx, c, h.ntotal, h.is_trained);
  return idx;
}
ANNVIL_REGISTER_INDEX("IVFFlat", read_ivf_flat);
}  // namespace

}  // namespace annvil
