// IndexIVF search: the scanner defaults, the two search orders (grouped by
// list for batches; query by query for max_codes), range search and
// search_and_reconstruct.
#include "ivf/index_ivf.h"
#include "ivf/multi_index.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>

#include "distances/distances.h"
#include "core/io.h"
#include "distances/knn.h"

namespace annvil {

// ---- scanner defaults -------------------------------------------------------------
size_t InvertedListScanner::scan_codes(size_t n, const uint8_t* codes, size_t code_size, const idx_t* ids,
                                       TopK& heap) const {
  float thr = heap.threshold();
  for (size_t i = 0; i < n; ++i) {
    float key = distance_to_code(codes + i * code_size);
    if (key < thr) {
      if (sel && !sel->is_member(ids[i])) continue;
      heap.push(key, ids[i]);
      thr = heap.threshold();
    }
  }
  return n;
}

void InvertedListScanner::scan_codes_range(size_t n, const uint8_t* codes, size_t code_size, const idx_t* ids,
                                           float key_radius, std::vector<std::pair<float, idx_t>>& out) const {
  for (size_t i = 0; i < n; ++i) {
    float key = distance_to_code(codes + i * code_size);
    if (key < key_radius) {
      if (sel && !sel->is_member(ids[i])) continue;
      out.emplace_back(key, ids[i]);
    }
  }
}

// ---- search --------------------------------------------------------------------------
void IndexIVF::resolve_params(const SearchParameters* params, size_t* np, size_t* mc, const IDSelector** sel) const {
  *np = nprobe;
  *mc = max_codes;
  *sel = params ? params->sel : nullptr;
  if (auto* p = dynamic_cast<const SearchParametersIVF*>(params)) {
    if (p->nprobe) *np = p->nprobe;
    if (p->max_codes) *mc = p->max_codes;
  }
  ANNVIL_CHECK(*np > 0, "nprobe is 0: set index.nprobe to at least 1 (or pass SearchParametersIVF(nprobe=...))");
  *np = std::min(*np, nlist);
}

void IndexIVF::count_search(idx_t n, const idx_t* keys, size_t np, size_t mc, const IDSelector* sel) const {
  uint64_t lists = 0, dis = 0;
  const InvertedLists& il = *invlists;
  for (idx_t q = 0; q < n; ++q) {
    size_t visited = 0;  // as for_each_probed_list: stop once mc codes were visited
    for (size_t j = 0; j < np; ++j) {
      const idx_t l = keys[size_t(q) * np + j];
      if (l < 0 || size_t(l) >= nlist) continue;
      ++lists;
      size_t ls = il.list_size(size_t(l));
      if (mc) ls = std::min(ls, mc - visited);
      visited += ls;
      if (sel) {
        const idx_t* ids = il.get_ids(size_t(l));
        for (size_t o = 0; o < ls; ++o) dis += sel->is_member(ids[o]) ? 1 : 0;
      } else {
        dis += ls;
      }
      if (mc && visited >= mc) break;
    }
  }
  indexIVF_stats.add(uint64_t(std::max<idx_t>(n, 0)), lists, dis);
}

const SearchParameters* quantizer_params_of(const SearchParameters* params) {
  auto* p = dynamic_cast<const SearchParametersIVF*>(params);
  return p ? p->quantizer_params.get() : nullptr;
}

void IndexIVF::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_k(k);
  check_trained();
  if (n <= 0) return;
  check_quantizer();
  size_t np, mc;
  const IDSelector* sel;
  resolve_params(params, &np, &mc, &sel);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  uint64_t qns = 0;
  // queries in chunks, so that coarse results and heaps stay bounded
  const idx_t bs = 8192;
  std::vector<idx_t> keys;
  std::vector<float> cdis;
  for (idx_t i0 = 0; i0 < n; i0 += bs) {
    idx_t m = std::min(bs, n - i0);
    keys.resize(size_t(m) * np);
    cdis.resize(size_t(m) * np);
    const auto tq = clock::now();
    quantizer->search(m, x + size_t(i0) * d, idx_t(np), cdis.data(), keys.data(), quantizer_params_of(params));
    qns += uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - tq).count());
    count_search(m, keys.data(), np, mc, sel);
    search_preassigned(m, x + size_t(i0) * d, k, keys.data(), cdis.data(), D + size_t(i0) * k, I + size_t(i0) * k, np,
                       mc, sel);
  }
  indexIVF_stats.quantization_ns += qns;
  indexIVF_stats.search_ns += uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count());
}

const float* IndexIVF::list_vectors(size_t, std::vector<float>&) const { return nullptr; }

namespace {
// Walks one query's probed lists in order (keys / coarse_dis: its np entries),
// skipping missing and empty lists and stopping once mc codes were scanned
// (mc > 0); for each list it calls sc.set_list, then scan(list, n_codes),
// which returns how many codes it scanned.
template <class ScanFn>
void for_each_probed_list(const InvertedLists& il, InvertedListScanner& sc, const idx_t* keys, const float* coarse_dis,
                          size_t np, size_t mc, ScanFn&& scan) {
  size_t scanned = 0;
  for (size_t j = 0; j < np; ++j) {
    const idx_t l = keys[j];
    if (l < 0) continue;
    size_t ls = il.list_size(size_t(l));
    if (!ls) continue;
    if (mc) ls = std::min(ls, mc - scanned);
    sc.set_list(l, coarse_dis[j]);
    scanned += scan(size_t(l), ls);
    if (mc && scanned >= mc) break;
  }
}
}  // namespace

void IndexIVF::search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis,
                                  float* D, idx_t* I, size_t np, size_t mc, const IDSelector* sel) const {
  if (n <= 0) return;
  if (mc || !use_grouped_search())
    search_per_query(n, x, k, keys, coarse_dis, D, I, np, mc, sel);
  else
    search_grouped(n, x, k, keys, coarse_dis, D, I, np, sel);
}

void IndexIVF::search_per_query(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D,
                                idx_t* I, size_t np, size_t mc, const IDSelector* sel) const {
  TopKArray heaps{size_t(n), size_t(k)};
  const InvertedLists& il = *invlists;
  const int nt = omp_get_max_threads();
  // codes the search will scan: a parallel region only pays for itself (and
  // survives busy cores) with a few milliseconds of work
  size_t work = 0;
  for (size_t i = 0; i < size_t(n) * np; ++i)
    if (keys[i] >= 0) work += il.list_size(size_t(keys[i]));
  const bool parallel = nt > 1 && work * size_t(d) >= kMinParallelWork;
  if (n == 1 && parallel && mc == 0) {
    // one query: the probed lists are shared among threads, heaps merged after
    int nth = nt;
    std::vector<TopKArray> local(nth);
    ParallelErrors perr;
#pragma omp parallel num_threads(nth)
    {
      int t = omp_get_thread_num();
      TopKArray h(1, size_t(k));
      auto sc = get_scanner();
      sc->sel = sel;
      sc->set_query(x);
#pragma omp for schedule(dynamic)
      for (int64_t j = 0; j < int64_t(np); ++j) ANNVIL_OMP_TRY(perr) {
          idx_t l = keys[j];
          if (l < 0) continue;
          size_t ls = il.list_size(size_t(l));
          if (!ls) continue;
          sc->set_list(l, coarse_dis[j]);
          sc->scan_codes(ls, il.get_codes(size_t(l)), code_size, il.get_ids(size_t(l)), h[0]);
        }
      ANNVIL_OMP_CATCH(perr)
      local[t] = std::move(h);
    }
    perr.rethrow();
    for (int t = 0; t < nth; ++t) heaps.merge_from(local[t]);
  } else {
    ParallelErrors perr;
#pragma omp parallel if (n > 1 && parallel)
    {
      auto sc = get_scanner();
      sc->sel = sel;
#pragma omp for schedule(dynamic, 4)
      for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
          sc->set_query(x + size_t(q) * d);
          for_each_probed_list(il, *sc, keys + size_t(q) * np, coarse_dis + size_t(q) * np, np, mc,
                               [&](size_t l, size_t ls) {
                                 return sc->scan_codes(ls, il.get_codes(l), code_size, il.get_ids(l), heaps[size_t(q)]);
                               });
        }
      ANNVIL_OMP_CATCH(perr)
    }
    perr.rethrow();
  }
  heaps.finalize(metric_type, nullptr, D, I);
}

// ---- grouped search ---------------------------------------------------------------------------
// A batch of queries is scanned list by list rather than query by query: the
// (query, probed list) pairs are grouped by list, and each probed list is read
// once for all the queries that probe it, while it is hot in cache.  When
// enough queries share a list and the codec can give float vectors
// (list_vectors), they are packed into panels (distances.h) so that the
// outer-product kernel computes NR inner products per base element loaded;
// otherwise the subclass's scanner runs query by query over the hot list.
// Threads take disjoint lists, each with its own heaps, merged at the end, so
// a single query also spreads its probed lists over the threads.
namespace {

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

// Panel sink whose heaps hold true distances although the kernel ranks L2 by
// |b|^2 - 2<q, b>: column j's threshold is shifted by -|q_j|^2 and |q_j|^2 is
// added back on push, so panel-scanned and scanner-scanned lists of the same
// query share one heap.
struct ShiftedSink : PanelSink {
  alignas(64) float thr[64];
  float shift[64];
  TopK* heaps[64];
  const idx_t* labels = nullptr;
  const IDSelector* sel = nullptr;
  ShiftedSink() {
    thresholds = thr;
    for (int j = 0; j < 64; ++j) {
      thr[j] = -std::numeric_limits<float>::infinity();
      shift[j] = 0;
      heaps[j] = nullptr;
    }
  }
  void set(int j, TopK* h, float s) {
    heaps[j] = h;
    shift[j] = s;
    thr[j] = h ? h->threshold() - s : -std::numeric_limits<float>::infinity();
  }
  void push(int j, float key, int64_t row) override {
    idx_t label = labels[row];
    if (sel && !sel->is_member(label)) return;
    heaps[j]->push(key + shift[j], label);
    thr[j] = heaps[j]->threshold() - shift[j];
  }
};

}  // namespace

void IndexIVF::search_grouped(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D,
                              idx_t* I, size_t np, const IDSelector* sel) const {
  const Kernels& K = kernels();
  const size_t NR = size_t(K.panel_width);
  const bool l2 = metric_type == METRIC_L2;
  const InvertedLists& il = *invlists;
  const size_t nq = size_t(n);

  // pair indices (q * np + j) grouped by list: counting sort, queries ascending
  std::vector<size_t> start(nlist + 1, 0);
  for (size_t i = 0; i < nq * np; ++i)
    if (keys[i] >= 0) start[size_t(keys[i]) + 1]++;
  for (size_t l = 0; l < nlist; ++l) start[l + 1] += start[l];
  std::vector<size_t> pairs(start[nlist]);
  {
    std::vector<size_t> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < nq * np; ++i)
      if (keys[i] >= 0) pairs[fill[size_t(keys[i])]++] = i;
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

  const size_t min_panel = panel_min_queries > 0 ? size_t(panel_min_queries) : std::max<size_t>(2, NR / 2);
  int nt = omp_get_max_threads();
  if (total * size_t(d) < kMinParallelWork) nt = 1;
  nt = std::max(1, std::min<int>(nt, int(work.size())));

  TopKArray heaps{nq, size_t(k)};
  std::vector<TopKArray> local(size_t(nt > 1 ? nt : 0));
  // rows per base block: the block stays in L2 while all panels pass over it
  const size_t BB = std::max<size_t>(48, (192 * 1024) / (sizeof(float) * size_t(d)));

  ParallelErrors perr;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    if (nt > 1) local[t] = TopKArray(nq, size_t(k));
    TopKArray& H = nt > 1 ? local[t] : heaps;
    AlignedFloats panel(size_t(d) * NR);
    std::vector<float> norms, decoded;
    ShiftedSink sink;
    sink.sel = sel;
    auto sc = get_scanner();
    sc->sel = sel;
#pragma omp for schedule(dynamic, 1)
    for (int64_t w = 0; w < int64_t(work.size()); ++w) ANNVIL_OMP_TRY(perr) {
        const size_t l = work[size_t(w)].second;
        const size_t nb = il.list_size(l);
        const idx_t* ids = il.get_ids(l);
        const size_t* lp = pairs.data() + start[l];
        const size_t m = start[l + 1] - start[l];
        const float* base = m >= min_panel ? list_vectors(l, decoded) : nullptr;
        if (base) {
          if (l2) {
            norms.resize(nb);
            K.norms_sqr(base, size_t(d), nb, norms.data());
          }
          sink.labels = ids;
          for (size_t j0 = 0; j0 < m; j0 += NR) {
            const size_t nv = std::min(NR, m - j0);
            // gather and pack: panel[p * NR + j] = x[q_j][p]
            for (size_t j = 0; j < nv; ++j) {
              const float* xq = x + (lp[j0 + j] / np) * d;
              for (size_t p = 0; p < size_t(d); ++p) panel.p[p * NR + j] = xq[p];
            }
            if (nv < NR)
              for (size_t p = 0; p < size_t(d); ++p) std::fill(panel.p + p * NR + nv, panel.p + p * NR + NR, 0.f);
            for (size_t j = 0; j < NR; ++j) {
              if (j < nv) {
                size_t q = lp[j0 + j] / np;
                sink.set(int(j), &H[q], l2 ? qnorms[q] : 0.f);
              } else {
                sink.set(int(j), nullptr, 0.f);
              }
            }
            for (size_t b0 = 0; b0 < nb; b0 += BB) {
              size_t nbb = std::min(BB, nb - b0);
              K.scan_panel(panel.p, size_t(d), base + b0 * d, nbb, l2 ? norms.data() + b0 : nullptr, l2 ? -2.f : -1.f,
                           int64_t(b0), &sink);
            }
          }
        } else {
          const uint8_t* codes = il.get_codes(l);
          for (size_t j = 0; j < m; ++j) {
            const size_t i = lp[j], q = i / np;
            sc->set_query(x + q * d);
            sc->set_list(idx_t(l), coarse_dis[i]);
            sc->scan_codes(nb, codes, code_size, ids, H[q]);
          }
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  for (int t = 0; t < nt && nt > 1; ++t) heaps.merge_from(local[size_t(t)]);
  heaps.finalize(metric_type, nullptr, D, I);
}

void IndexIVF::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                            const SearchParameters* params) const {
  check_trained();
  check_quantizer();
  size_t np, mc;
  const IDSelector* sel;
  resolve_params(params, &np, &mc, &sel);
  std::vector<idx_t> keys(size_t(n) * np);
  std::vector<float> cdis(size_t(n) * np);
  if (n > 0) quantizer->search(n, x, idx_t(np), cdis.data(), keys.data(), quantizer_params_of(params));
  count_search(n, keys.data(), np, mc, sel);
  range_search_preassigned(n, x, radius, keys.data(), cdis.data(), result, np, mc, sel);
}

void IndexIVF::range_search_preassigned(idx_t n, const float* x, float radius, const idx_t* keys,
                                        const float* coarse_dis, RangeSearchResult* result, size_t np, size_t mc,
                                        const IDSelector* sel) const {
  const float key_radius = is_similarity_metric(metric_type) ? -radius : radius;
  std::vector<std::vector<std::pair<float, idx_t>>> hits(size_t(std::max<idx_t>(n, 0)));
  const InvertedLists& il = *invlists;
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    auto sc = get_scanner();
    sc->sel = sel;
#pragma omp for schedule(dynamic, 4)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        sc->set_query(x + size_t(q) * d);
        for_each_probed_list(
            il, *sc, keys + size_t(q) * np, coarse_dis + size_t(q) * np, np, mc, [&](size_t l, size_t ls) {
              sc->scan_codes_range(ls, il.get_codes(l), code_size, il.get_ids(l), key_radius, hits[size_t(q)]);
              return ls;
            });
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  fill_range_result(hits, metric_type, result);
}

void IndexIVF::search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                                      const SearchParameters* params) const {
  check_k(k);
  search(n, x, k, D, I, params);
  // Each result sits in one of its query's probed lists (the coarse search
  // is repeated: it is cheap next to the list scans).  A direct map, when
  // there is one, finds it directly.
  size_t np, mc;
  const IDSelector* sel;
  resolve_params(params, &np, &mc, &sel);
  np = std::min(np, nlist);
  std::vector<idx_t> keys;
  std::vector<float> cd;
  if (direct_map_type == DIRECT_MAP_NONE && n > 0) {
    keys.resize(size_t(n) * np);
    cd.resize(size_t(n) * np);
    quantizer->search(n, x, idx_t(np), cd.data(), keys.data());
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::exception_ptr err;
  ParallelErrors perr;
#pragma omp parallel for schedule(dynamic, 16) if (n * k > 1024)
  for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
      try {
        for (idx_t j = 0; j < k; ++j) {
          const size_t r = size_t(q) * size_t(k) + size_t(j);
          float* out = recons + r * size_t(d);
          const idx_t id = I[r];
          if (id < 0) {
            std::fill(out, out + d, nan);
            continue;
          }
          if (direct_map_type != DIRECT_MAP_NONE) {
            reconstruct(id, out);
            continue;
          }
          bool found = false;
          for (size_t p = 0; p < np && !found; ++p) {
            idx_t l = keys[size_t(q) * np + p];
            if (l < 0) continue;
            const auto& li = invlists->ids[size_t(l)];
            for (size_t o = 0; o < li.size(); ++o)
              if (li[o] == id) {
                reconstruct_from_offset(l, idx_t(o), out);
                found = true;
                break;
              }
          }
          ANNVIL_CHECK(found, "search_and_reconstruct: result ", id, " not found in the probed lists");
        }
      } catch (...) {
#pragma omp critical(annvil_ivf_search_and_reconstruct)
        if (!err) err = std::current_exception();
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
  if (err) std::rethrow_exception(err);
}

}  // namespace annvil
