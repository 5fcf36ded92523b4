// Exact search drivers.  Strategy:
//  * many queries: queries are packed into panels of NR (kernels().panel_width)
//    and each thread takes a share of the panels; the base is streamed in
//    L2-sized blocks, each block scanned by all of the thread's panels, so
//    every base byte is read from memory once per thread;
//  * few queries: the base is split across threads (each keeps its own heaps,
//    merged at the end), because a single query split by queries would leave
//    all but one core idle;
//  * one to a few queries: direct distance kernels (memory-bound), which are
//    also exact for L2 (no |q|^2 + |b|^2 - 2<q,b> cancellation).
#include "distances/knn.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "distances/distances.h"
#include "core/topk.h"

namespace annvil {

namespace {

struct AlignedBuffer {
  float* p = nullptr;
  explicit AlignedBuffer(size_t n) {
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
    if (!p) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(p); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
};

// Rows per base block: about 256 KiB of vectors, so a block stays in L2 while
// every panel of the thread passes over it.
size_t base_block_rows(size_t d) {
  size_t rows = (256 * 1024) / (sizeof(float) * d);
  rows = std::max<size_t>(48, std::min<size_t>(rows, 8192));
  return rows / 48 * 48;
}

inline void split_range(size_t n, int nt, int t, size_t align, size_t& b, size_t& e) {
  size_t chunks = (n + align - 1) / align;
  size_t cb = chunks * t / nt, ce = chunks * (t + 1) / nt;
  b = std::min(n, cb * align);
  e = std::min(n, ce * align);
}

// The threads of one parallel panel scan.  `make_sink(thread, q0, nvalid)`
// returns the sink for the panel of queries [q0, q0 + nvalid) in that thread.
// split_queries: threads take disjoint panels and scan the whole base;
// otherwise every thread takes all panels and a disjoint share of the base.
template <class MakeSink>
void parallel_panel_scan(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, bool l2, bool split_queries,
                         int nt, MakeSink&& make_sink) {
  const Kernels& K = kernels();
  const size_t NR = size_t(K.panel_width);
  const size_t npanels = (nq + NR - 1) / NR;
  const size_t BB = base_block_rows(d);
  const float alpha = l2 ? -2.f : -1.f;

  ParallelErrors perr;
#pragma omp parallel num_threads(nt)
  {ANNVIL_OMP_TRY(perr){// partition by the team actually granted (smaller than nt when nested)
                        const int t = omp_get_thread_num(), nth = omp_get_num_threads();
  size_t p0 = 0, p1 = npanels, b0 = 0, b1 = nb;
  if (split_queries)
    split_range(npanels, nth, t, 1, p0, p1);
  else
    split_range(nb, nth, t, 48, b0, b1);
  // Queries go in chunks of panels that fit in L2 next to a base block, so
  // that many queries against few base rows (k-means assignment) do not
  // stream all packed queries from memory once per base block.
  const size_t chunk = std::max<size_t>(1, (768 * 1024) / (sizeof(float) * d * NR));
  if (p0 < p1 && b0 < b1) {
    AlignedBuffer panels(std::min(chunk, p1 - p0) * d * NR);
    std::vector<PanelSink*> sinks(std::min(chunk, p1 - p0));
    std::vector<float> norms(l2 ? BB : 0);
    for (size_t c0 = p0; c0 < p1; c0 += chunk) {
      const size_t c1 = std::min(p1, c0 + chunk);
      for (size_t p = c0; p < c1; ++p) {
        size_t q0 = p * NR, nv = std::min(NR, nq - q0);
        pack_panel(xq + q0 * d, nv, d, int(NR), panels.p + (p - c0) * d * NR);
        sinks[p - c0] = make_sink(t, q0, nv);
      }
      for (size_t bb = b0; bb < b1; bb += BB) {
        size_t nbb = std::min(BB, b1 - bb);
        const float* blk = xb + bb * d;
        if (l2) K.norms_sqr(blk, d, nbb, norms.data());
        for (size_t p = 0; p < c1 - c0; ++p) {
          PanelSink* s = sinks[p];
          if (s->best)
            K.scan_panel_top1(panels.p + p * d * NR, d, blk, nbb, l2 ? norms.data() : nullptr, alpha, int64_t(bb),
                              s->best, s->best_row);
          else
            K.scan_panel(panels.p + p * d * NR, d, blk, nbb, l2 ? norms.data() : nullptr, alpha, int64_t(bb), s);
        }
      }
    }
  }
}
ANNVIL_OMP_CATCH(perr)
}  // namespace
perr.rethrow();
}  // namespace annvil

// Threads worth using for `work` multiply-adds: waking a team costs tens of
// microseconds on a quiet machine and a scheduler slice on a busy one, so
// small calls stay on the calling thread.  The panel path does ~100 G
// multiply-adds/s per core, the direct (memory-bound) path ~2.5 G/s, hence the
// two thresholds (both about 0.2-1 ms of single-thread work).
int threads_for(size_t work, bool memory_bound = false) {
  const size_t min_work = memory_bound ? (size_t(2) << 20) : (size_t(32) << 20);
  if (work < min_work) return 1;
  return std::max(1, omp_get_max_threads());
}

void fill_missing(size_t nq, size_t k, MetricType metric, float* D, idx_t* I) {
  const float pad = missing_result_distance(metric);
  std::fill(D, D + nq * k, pad);
  std::fill(I, I + nq * k, idx_t(-1));
}

// Few queries: direct distances, base split across threads.
void knn_direct(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, size_t k, MetricType metric, float* D,
                idx_t* I, const IDSelector* sel, const idx_t* labels, int nt) {
  const Kernels& K = kernels();
  const bool l2 = metric == METRIC_L2;
  std::vector<TopKArray> heaps(nt);
  const size_t BB = base_block_rows(d);
  ParallelErrors perr;
#pragma omp parallel num_threads(nt)
  {ANNVIL_OMP_TRY(perr){const int t = omp_get_thread_num(), nth = omp_get_num_threads();
  TopKArray local(nq, k);
  size_t b0, b1;
  split_range(nb, nth, t, 16, b0, b1);
  std::vector<float> dist(BB);
  for (size_t bb = b0; bb < b1; bb += BB) {
    size_t nbb = std::min(BB, b1 - bb);
    const float* blk = xb + bb * d;
    for (size_t q = 0; q < nq; ++q) {
      if (l2)
        K.l2sqr_ny(xq + q * d, blk, d, nbb, dist.data());
      else
        K.inner_product_ny(xq + q * d, blk, d, nbb, dist.data());
      TopK& h = local[q];
      float thr = h.threshold();
      for (size_t i = 0; i < nbb; ++i) {
        float key = l2 ? dist[i] : -dist[i];
        if (key < thr) {
          idx_t label = labels ? labels[bb + i] : idx_t(bb + i);
          if (sel && !sel->is_member(label)) continue;
          h.push(key, label);
          thr = h.threshold();
        }
      }
    }
  }
  heaps[t] = std::move(local);
}
ANNVIL_OMP_CATCH(perr)
}
perr.rethrow();
for (int t = 1; t < nt; ++t) heaps[0].merge_from(heaps[t]);
heaps[0].finalize(metric, nullptr, D, I);
}

void knn_top1(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, MetricType metric, float* D, idx_t* I,
              const idx_t* labels, bool split_queries, int nt) {
  const size_t NR = size_t(kernels().panel_width);
  const size_t npanels = (nq + NR - 1) / NR;
  const bool l2 = metric == METRIC_L2;
  const int nparts = split_queries ? 1 : nt;
  std::vector<std::unique_ptr<Top1Sink>> sinks(size_t(nparts) * npanels);
  for (auto& s : sinks) s = std::make_unique<Top1Sink>();
  parallel_panel_scan(nq, xq, nb, xb, d, l2, split_queries, nt, [&](int t, size_t q0, size_t) -> PanelSink* {
    return sinks[size_t(split_queries ? 0 : t) * npanels + q0 / NR].get();
  });
  std::vector<float> qnorms(l2 ? nq : 0);
  if (l2) compute_norms(nq, xq, d, qnorms.data());
  for (size_t q = 0; q < nq; ++q) {
    float key = std::numeric_limits<float>::infinity();
    idx_t id = -1;
    for (int part = 0; part < nparts; ++part) {
      const Top1Sink& s = *sinks[size_t(part) * npanels + q / NR];
      size_t j = q % NR;
      if (s.r[j] < 0) continue;
      idx_t label = labels ? labels[s.r[j]] : s.r[j];
      if (s.b[j] < key || (s.b[j] == key && label < id)) {
        key = s.b[j];
        id = label;
      }
    }
    I[q] = id;
    if (id < 0)
      D[q] = missing_result_distance(l2 ? METRIC_L2 : METRIC_INNER_PRODUCT);
    else
      D[q] = l2 ? std::max(0.f, key + qnorms[q]) : -key;
  }
}

// ---- extra metrics (metric.h) -------------------------------------------------------
// No GEMM form exists for these, so every (query, base row) distance comes from
// the metric's kernel, base rows in L2-sized blocks.  Many queries: threads
// take disjoint queries; few: they take disjoint shares of the base and merge
// their heaps.  Keys are distances, or negated similarities (Jaccard); a NaN
// distance never beats a threshold, so it is never returned (as in Faiss).
void knn_extra(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, size_t k, MetricType metric,
               float metric_arg, float* D, idx_t* I, const IDSelector* sel, const idx_t* labels) {
  const ExtraDistFn fn = extra_distance_fn(kernels(), metric);
  const float sign = is_similarity_metric(metric) ? -1.f : 1.f;
  const size_t BB = base_block_rows(d);
  int nt = threads_for(nq * nb * d, true);
  nt = int(std::min<size_t>(size_t(nt), std::max<size_t>(1, nq * nb / 256)));
  const bool split_queries = nq >= size_t(nt);
  const int nparts = split_queries ? 1 : nt;
  std::vector<TopKArray> heaps;
  heaps.reserve(nparts);
  for (int h = 0; h < nparts; ++h) heaps.emplace_back(nq, k);
  ParallelErrors perr;
#pragma omp parallel num_threads(nt)
  {ANNVIL_OMP_TRY(perr){const int t = omp_get_thread_num(), nth = omp_get_num_threads();
  size_t q0 = 0, q1 = nq, b0 = 0, b1 = nb;
  if (split_queries)
    split_range(nq, nth, t, 1, q0, q1);
  else
    split_range(nb, nth, t, 16, b0, b1);
  TopKArray& H = heaps[split_queries ? 0 : t];
  std::vector<float> dist(BB);
  for (size_t bb = b0; bb < b1; bb += BB) {
    const size_t nbb = std::min(BB, b1 - bb);
    for (size_t q = q0; q < q1; ++q) {
      extra_distances_ny(fn, metric_arg, xq + q * d, xb + bb * d, d, nbb, dist.data());
      TopK& h = H[q];
      float thr = h.threshold();
      for (size_t i = 0; i < nbb; ++i) {
        float key = sign * dist[i];
        if (key < thr) {
          idx_t label = labels ? labels[bb + i] : idx_t(bb + i);
          if (sel && !sel->is_member(label)) continue;
          h.push(key, label);
          thr = h.threshold();
        }
      }
    }
  }
}
ANNVIL_OMP_CATCH(perr)
}
perr.rethrow();
for (int h = 1; h < nparts; ++h) heaps[0].merge_from(heaps[h]);
heaps[0].finalize(metric, nullptr, D, I);
}

void range_extra(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, float radius, MetricType metric,
                 float metric_arg, RangeSearchResult* result, const IDSelector* sel, const idx_t* labels) {
  const ExtraDistFn fn = extra_distance_fn(kernels(), metric);
  const bool sim = is_similarity_metric(metric);
  const size_t BB = base_block_rows(d);
  std::vector<std::vector<std::pair<float, idx_t>>> hits(nq);
  int nt = threads_for(nq * nb * d, true);
  ParallelErrors perr;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t qi = 0; qi < int64_t(nq); ++qi) ANNVIL_OMP_TRY(perr) {
      const size_t q = size_t(qi);
      std::vector<float> dist(std::min(BB, nb));
      for (size_t bb = 0; bb < nb; bb += BB) {
        const size_t nbb = std::min(BB, nb - bb);
        extra_distances_ny(fn, metric_arg, xq + q * d, xb + bb * d, d, nbb, dist.data());
        for (size_t i = 0; i < nbb; ++i) {
          if (!(sim ? dist[i] > radius : dist[i] < radius)) continue;
          idx_t label = labels ? labels[bb + i] : idx_t(bb + i);
          if (sel && !sel->is_member(label)) continue;
          hits[q].emplace_back(sim ? -dist[i] : dist[i], label);
        }
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
  fill_range_result(hits, metric, result);
}

}  // namespace

void compute_norms(size_t n, const float* x, size_t d, float* out) {
  const Kernels& K = kernels();
  int nt = threads_for(n * d, true);
  ParallelErrors perr;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i0 = 0; i0 < int64_t(n); i0 += 1024) ANNVIL_OMP_TRY(perr) {
      size_t m = std::min<size_t>(1024, n - size_t(i0));
      K.norms_sqr(x + size_t(i0) * d, d, m, out + i0);
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void knn_exact(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, size_t k, MetricType metric, float* D,
               idx_t* I, const IDSelector* sel, const idx_t* labels, float metric_arg) {
  if (nq == 0) return;
  if (nb == 0 || k == 0) {
    fill_missing(nq, k, metric, D, I);
    return;
  }
  if (is_extra_metric(metric)) {
    knn_extra(nq, xq, nb, xb, d, k, metric, metric_arg, D, I, sel, labels);
    return;
  }
  const Kernels& K = kernels();
  const size_t NR = size_t(K.panel_width);
  const bool l2 = metric == METRIC_L2;
  const bool direct = nq < std::max<size_t>(2, NR / 4);
  // + 128 per candidate: the top-k selection (threshold test, heap pushes)
  // costs about as much as 128 multiply-adds, which dominates for small d or
  // a small base (coarse quantizers: 1000 queries x 256 centroids at d = 64
  // take 2.6 ms on one thread, 8x what the multiply-adds alone predict)
  int nt = threads_for(nq * nb * (d + 128), direct);
  nt = int(std::min<size_t>(size_t(nt), std::max<size_t>(1, nb / 64)));

  if (direct) {
    knn_direct(nq, xq, nb, xb, d, k, metric, D, I, sel, labels, nt);
    return;
  }

  const size_t npanels = (nq + NR - 1) / NR;
  const bool split_queries = npanels >= size_t(2 * nt);
  if (k == 1 && sel == nullptr) {
    knn_top1(nq, xq, nb, xb, d, metric, D, I, labels, split_queries, nt);
    return;
  }
  const int nheaps = split_queries ? 1 : nt;
  std::vector<TopKArray> heaps;
  heaps.reserve(nheaps);
  for (int h = 0; h < nheaps; ++h) heaps.emplace_back(nq, k);
  std::vector<std::unique_ptr<TopKSink>> sinks;
  sinks.resize(size_t(nheaps) * npanels);

  parallel_panel_scan(nq, xq, nb, xb, d, l2, split_queries, nt, [&](int t, size_t q0, size_t nv) -> PanelSink* {
    int h = split_queries ? 0 : t;
    auto s = std::make_unique<TopKSink>(int(NR));
    s->labels = labels;
    s->sel = sel;
    for (size_t j = 0; j < nv; ++j) s->set(int(j), &heaps[h][q0 + j]);
    PanelSink* raw = s.get();
    sinks[size_t(h) * npanels + q0 / NR] = std::move(s);
    return raw;
  });

  for (int h = 1; h < nheaps; ++h) heaps[0].merge_from(heaps[h]);
  std::vector<float> qnorms(l2 ? nq : 0);
  if (l2) compute_norms(nq, xq, d, qnorms.data());
  heaps[0].finalize(metric, l2 ? qnorms.data() : nullptr, D, I);
}

void range_exact(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, float radius, MetricType metric,
                 RangeSearchResult* result, const IDSelector* sel, const idx_t* labels, float metric_arg) {
  const bool l2 = metric == METRIC_L2;
  result->nq = nq;
  result->lims.assign(nq + 1, 0);
  result->distances.clear();
  result->labels.clear();
  if (nq == 0 || nb == 0) return;
  if (is_extra_metric(metric)) {
    range_extra(nq, xq, nb, xb, d, radius, metric, metric_arg, result, sel, labels);
    return;
  }
  const size_t NR = size_t(kernels().panel_width);
  const size_t npanels = (nq + NR - 1) / NR;
  int nt = threads_for(nq * nb * d);
  const bool split_queries = npanels >= size_t(nt);
  const int nparts = split_queries ? 1 : nt;
  // hits[part][q]
  std::vector<std::vector<std::vector<std::pair<float, idx_t>>>> hits(
      nparts, std::vector<std::vector<std::pair<float, idx_t>>>(npanels * NR));
  std::vector<float> qnorms(l2 ? nq : 0);
  if (l2) compute_norms(nq, xq, d, qnorms.data());
  std::vector<std::unique_ptr<RangeSink>> sinks(size_t(nparts) * npanels);

  parallel_panel_scan(nq, xq, nb, xb, d, l2, split_queries, nt, [&](int t, size_t q0, size_t nv) -> PanelSink* {
    int part = split_queries ? 0 : t;
    auto s = std::make_unique<RangeSink>();
    s->out = hits[part].data() + q0;
    s->labels = labels;
    s->sel = sel;
    for (size_t j = 0; j < nv; ++j) s->thr[j] = l2 ? radius - qnorms[q0 + j] : -radius;
    PanelSink* raw = s.get();
    sinks[size_t(part) * npanels + q0 / NR] = std::move(s);
    return raw;
  });

  for (size_t q = 0; q < nq; ++q) {
    size_t cnt = 0;
    for (int part = 0; part < nparts; ++part) cnt += hits[part][q].size();
    result->lims[q + 1] = result->lims[q] + cnt;
  }
  result->distances.resize(result->lims[nq]);
  result->labels.resize(result->lims[nq]);
  for (size_t q = 0; q < nq; ++q) {
    size_t o = result->lims[q];
    for (int part = 0; part < nparts; ++part)
      for (auto& [key, label] : hits[part][q]) {
        float v = l2 ? std::max(0.f, key + qnorms[q]) : -key;
        result->distances[o] = v;
        result->labels[o] = label;
        ++o;
      }
  }
}

void pairwise_distances(size_t nq, const float* xq, size_t nb, const float* xb, size_t d, MetricType metric, float* out,
                        float metric_arg) {
  if (nq == 0 || nb == 0) return;
  if (is_extra_metric(metric)) {
    const ExtraDistFn fn = extra_distance_fn(kernels(), metric);
    int nt = threads_for(nq * nb * d, true);
    ParallelErrors perr;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t q = 0; q < int64_t(nq); ++q) ANNVIL_OMP_TRY(perr) {
        extra_distances_ny(fn, metric_arg, xq + size_t(q) * d, xb, d, nb, out + size_t(q) * nb);
      }
    ANNVIL_OMP_CATCH(perr)
    perr.rethrow();
    return;
  }
  const Kernels& K = kernels();
  const size_t NR = size_t(K.panel_width);
  const bool l2 = metric == METRIC_L2;
  const size_t npanels = (nq + NR - 1) / NR;
  const size_t BB = base_block_rows(d);
  std::vector<float> qn(l2 ? nq : 0), bn(l2 ? nb : 0);
  if (l2) {
    compute_norms(nq, xq, d, qn.data());
    compute_norms(nb, xb, d, bn.data());
  }
  int nt = threads_for(nq * nb * d);
  const bool split_queries = npanels >= size_t(nt);
  ParallelErrors perr;
#pragma omp parallel num_threads(nt)
  {ANNVIL_OMP_TRY(perr){const int t = omp_get_thread_num(), nth = omp_get_num_threads();
  size_t p0 = 0, p1 = npanels, b0 = 0, b1 = nb;
  if (split_queries)
    split_range(npanels, nth, t, 1, p0, p1);
  else
    split_range(nb, nth, t, 48, b0, b1);
  AlignedBuffer panel(d * NR);
  std::vector<float> prod(BB * NR);
  for (size_t p = p0; p < p1 && b0 < b1; ++p) {
    size_t q0 = p * NR, nv = std::min(NR, nq - q0);
    pack_panel(xq + q0 * d, nv, d, int(NR), panel.p);
    for (size_t bb = b0; bb < b1; bb += BB) {
      size_t nbb = std::min(BB, b1 - bb);
      K.panel_products(panel.p, d, xb + bb * d, nbb, prod.data());
      for (size_t j = 0; j < nv; ++j) {
        float* o = out + (q0 + j) * nb + bb;
        for (size_t i = 0; i < nbb; ++i) {
          float ip = prod[i * NR + j];
          o[i] = l2 ? std::max(0.f, qn[q0 + j] + bn[bb + i] - 2 * ip) : ip;
        }
      }
    }
  }
}
ANNVIL_OMP_CATCH(perr)
}
perr.rethrow();
}

int64_t find_non_finite(size_t n, const float* x) {
  int64_t first = -1;
  int nt = threads_for(n, true);
  ParallelErrors perr;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(max : first)
  for (int64_t c = 0; c < int64_t((n + 4095) / 4096); ++c) ANNVIL_OMP_TRY(perr) {
      size_t b = size_t(c) * 4096, e = std::min(n, b + 4096);
      int bad = 0;
      for (size_t i = b; i < e; ++i) bad |= !std::isfinite(x[i]);
      if (bad && first < 0)
        for (size_t i = b; i < e; ++i)
          if (!std::isfinite(x[i])) {
            first = int64_t(i);
            break;
          }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
  if (first < 0) return -1;
  // `max` reduction finds some bad chunk; report the earliest one for a stable message
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return int64_t(i);
  return first;
}

int64_t find_norm_overflow(size_t n, const float* x, size_t d) {
  const Kernels& K = kernels();
  constexpr size_t kRows = 1024;
  const int64_t nblock = int64_t((n + kRows - 1) / kRows);
  int nt = threads_for(n * d, true);
  int64_t first = -1;
  ParallelErrors perr;
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> nrm(kRows);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nblock; ++b) ANNVIL_OMP_TRY(perr) {
        const size_t r0 = size_t(b) * kRows, m = std::min(kRows, n - r0);
        K.norms_sqr(x + r0 * d, d, m, nrm.data());
        for (size_t i = 0; i < m; ++i)
          if (!std::isfinite(nrm[i])) {
#pragma omp critical(annvil_norm_overflow)
            if (first < 0 || int64_t(r0 + i) < first) first = int64_t(r0 + i);
            break;
          }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  return first;
}

void normalize_rows(size_t n, float* x, size_t d) {
  const Kernels& K = kernels();
  int nt = threads_for(n * d, true);
  ParallelErrors perr;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < int64_t(n); ++i) ANNVIL_OMP_TRY(perr) {
      float* r = x + size_t(i) * d;
      float nrm = std::sqrt(K.inner_product(r, r, d));
      if (nrm > 0)
        for (size_t p = 0; p < d; ++p) r[p] /= nrm;
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

}  // namespace annvil
