// IndexIVFPQFastScan search (see index_ivf_pq_fastscan.h): the float scanner
// for the generic IVF paths, the choice of implementation, the query-by-query
// SIMD scans and the list-by-list batches.
#include "ivf/index_ivf_pq_fastscan.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <utility>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>

#include "core/topk.h"
#include "ivf/index_ivf_pq_kernels.h"
#include "index_pq.h"
#include "core/io.h"
#include "ivf/ivf_stats.h"
#include "quant/pq_fastscan.h"

namespace annvil {

// ---- search ------------------------------------------------------------------------------------
namespace {

// Float scanner (exact sums of the float LUT) for the generic IVF paths:
// range search.  Knows the list layout to read packed entries.
struct FastScanFloatScanner : InvertedListScanner {
  const IndexIVFPQFastScan& idx;
  const ProductQuantizer& pq;
  const std::shared_ptr<const PQCodebooks> cb;
  const bool l2, precomputed, residual;
  const float* q = nullptr;
  std::vector<float> qtab, ltab, xres;
  const float* lut = nullptr;
  float dis0 = 0;
  mutable std::vector<uint8_t> code;

  explicit FastScanFloatScanner(const IndexIVFPQFastScan& i)
      : idx(i),
        pq(i.pq),
        cb(i.codebooks.get(i.pq)),
        l2(i.metric_type == METRIC_L2),
        precomputed(i.uses_precomputed_table()),
        residual(i.by_residual),
        qtab(i.pq.M * i.pq.ksub),
        ltab(i.pq.M * i.pq.ksub),
        xres(size_t(i.d)),
        code(i.code_size) {}

  void set_query(const float* q_) override {
    q = q_;
    lut = ivfpq_query_tables(pq, *cb, q, l2, residual, precomputed, qtab.data(), ltab.data());
  }
  void set_list(idx_t l, float coarse_dis) override {
    list_no = l;
    dis0 = ivfpq_list_bias(idx.metric_type, residual, precomputed, coarse_dis);
    if (l2 && residual) {
      const size_t ts = pq.M * pq.ksub;
      if (precomputed) {
        const float* P = idx.precomputed_table.data() + size_t(l) * ts;
        for (size_t i = 0; i < ts; ++i) ltab[i] = P[i] - 2.f * qtab[i];
      } else {
        idx.compute_residual(q, xres.data(), l);
        pq_l2_table(pq, *cb, xres.data(), ltab.data());
      }
    }
  }
  float distance_to_code(const uint8_t* c) const override {
    float s = dis0;
    for (size_t m = 0; m < pq.M; ++m) s += lut[m * 16 + ((c[m >> 1] >> ((m & 1) * 4)) & 15)];
    return s;
  }
  const uint8_t* entry(const uint8_t* codes, size_t i) const {
    if (list_no >= 0 && codes == idx.invlists->get_codes(size_t(list_no)) && i < idx.npacked[size_t(list_no)]) {
      idx.get_list_code(size_t(list_no), i, code.data());
      return code.data();
    }
    return codes + i * idx.code_size;
  }
  size_t scan_codes(size_t n, const uint8_t* codes, size_t, const idx_t* ids, TopK& heap) const override {
    for (size_t i = 0; i < n; ++i) {
      float key = distance_to_code(entry(codes, i));
      if (key > heap.threshold()) continue;
      if (sel && !sel->is_member(ids[i])) continue;
      heap.push(key, ids[i]);
    }
    return n;
  }
  void scan_codes_range(size_t n, const uint8_t* codes, size_t, const idx_t* ids, float key_radius,
                        std::vector<std::pair<float, idx_t>>& out) const override {
    for (size_t i = 0; i < n; ++i) {
      float key = distance_to_code(entry(codes, i));
      if (key < key_radius) {
        if (sel && !sel->is_member(ids[i])) continue;
        out.emplace_back(key, ids[i]);
      }
    }
  }
};

// pq4_quantize_lut through the SIMD kernel when there is one
void quantize_lut(const float* lut, size_t M, QuantizedLUT& Q) {
  auto f = detail::ivfpq_kernels().lut_to_u8;
  if (!f) {
    pq4_quantize_lut(lut, M, Q);
    return;
  }
  Q.q.resize(pq4_M2(M) * 16);
  float sc = 1.f;
  f(lut, M, Q.q.data(), &sc, &Q.bias);
  Q.set_scale(sc);
}

// uint16 threshold of a list: accept acc when acc / scale + lut_bias + list_bias
// can still beat `thr` (the heap's worst key); one unit of slack for rounding.
inline uint32_t list_threshold(float thr, float list_bias, const QuantizedLUT& Q) {
  float t = (thr - list_bias - Q.bias) * Q.scale;
  if (!(t < 65534.f)) return 0x10000u;  // also +inf and NaN: accept all
  if (t < 0.f) return 0u;
  return uint32_t(t) + 2u;
}

}  // namespace

std::unique_ptr<InvertedListScanner> IndexIVFPQFastScan::get_scanner() const {
  return std::make_unique<FastScanFloatScanner>(*this);
}

int IndexIVFPQFastScan::resolve_implem(idx_t k, bool knobs) const {
  int impl = implem;
  if (impl == 0) impl = (knobs || bbs != kPQ4BlockSize ? 10 : 12) + (k > 20 ? 1 : 0);
  if (impl >= 100) impl -= 100;
  ANNVIL_CHECK(impl == 1 || impl == 2 || (impl >= 10 && impl <= 15), "IndexIVFPQFastScan implem ", implem,
               " does not exist (0: auto, 1, 2: reference scans, 10-15: SIMD scans, 100 + i: i single-threaded)");
  ANNVIL_CHECK(!knobs || impl == 10 || impl == 11,
               "max_codes / max_lists_num / ensure_topk_full are only supported by IndexIVFPQFastScan implem 10/11; "
               "set index.implem = 10 (or 11 for k > 20) explicitly, or leave it at the default 0");
  return impl;
}

void IndexIVFPQFastScan::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                const SearchParameters* params) const {
  check_k(k);
  check_trained();
  ANNVIL_CHECK(size_t(quantizer->ntotal) == nlist, "the coarse quantizer holds ", quantizer->ntotal,
               " centroids but the index has nlist=", nlist, " (was the quantizer modified after training?)");
  size_t np, mc;
  const IDSelector* sel;
  resolve_params(params, &np, &mc, &sel);
  FastScanKnobs knobs;
  knobs.max_codes = mc;
  if (auto* p = dynamic_cast<const SearchParametersIVF*>(params)) {
    ANNVIL_CHECK(p->max_empty_result_buckets == 0,
                 "max_empty_result_buckets is a range-search knob and is not honored by fastscan knn search");
    knobs.max_lists_num = p->max_lists_num;
    knobs.ensure_topk_full = p->ensure_topk_full;
  }
  const int impl = resolve_implem(k, knobs.any());
  if (n <= 0) return;
  const idx_t bs = 8192;
  std::vector<idx_t> keys;
  std::vector<float> cdis;
  for (idx_t i0 = 0; i0 < n; i0 += bs) {
    const idx_t m = std::min(bs, n - i0);
    keys.resize(size_t(m) * np);
    cdis.resize(size_t(m) * np);
    ivfpq_coarse_search(*quantizer, nlist, m, x + size_t(i0) * d, np, cdis.data(), keys.data());
    search_fs(m, x + size_t(i0) * d, k, keys.data(), cdis.data(), D + size_t(i0) * k, I + size_t(i0) * k, np, impl,
              knobs, sel);
  }
}

void IndexIVFPQFastScan::search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* keys,
                                            const float* coarse_dis, float* D, idx_t* I, size_t np, size_t mc,
                                            const IDSelector* sel) const {
  FastScanKnobs knobs;
  knobs.max_codes = mc;
  search_fs(n, x, k, keys, coarse_dis, D, I, np, resolve_implem(k, knobs.any()), knobs, sel);
}

void IndexIVFPQFastScan::search_fs(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis,
                                   float* D, idx_t* I, size_t np, int impl, const FastScanKnobs& knobs,
                                   const IDSelector* sel) const {
  if (n <= 0) return;
  size_t nvisited = 0, ndis = 0;
  const bool per_list = metric_type == METRIC_L2 && by_residual;  // the LUT depends on the list
  if (impl == 1) {
    search_float_fs(n, x, k, keys, coarse_dis, D, I, np, sel);
  } else if (impl == 2 || impl == 10 || impl == 11 || per_list || n < 8) {
    search_per_query_fs(n, x, k, keys, coarse_dis, D, I, np, knobs, sel, impl == 2, &nvisited, &ndis);
  } else {
    search_grouped_fs(n, x, k, keys, coarse_dis, D, I, np, sel);
  }
  if (impl == 1 || !(impl == 2 || impl == 10 || impl == 11 || per_list || n < 8)) {
    // every valid probe of a non-empty list was scanned in full
    for (size_t i = 0; i < size_t(n) * np; ++i)
      if (keys[i] >= 0 && size_t(keys[i]) < nlist)
        if (size_t ls = invlists->list_size(size_t(keys[i]))) {
          ++nvisited;
          ndis += ls;
        }
  }
  indexIVF_stats.add(size_t(n), nvisited, ndis);
}

// Per query, per probed list: the quantised LUT of the list (or of the query),
// and the list's entries scanned with the SIMD kernel (or, reference, summed
// in scalar from the plain codes: same LUT, same keys, no pruning).
void IndexIVFPQFastScan::search_per_query_fs(idx_t n, const float* x, idx_t k, const idx_t* keys,
                                             const float* coarse_dis, float* D, idx_t* I, size_t np,
                                             const FastScanKnobs& knobs, const IDSelector* sel, bool reference,
                                             size_t* nlist_visited, size_t* ndis_out) const {
  const bool l2 = metric_type == METRIC_L2;
  const bool per_list = l2 && by_residual;  // the LUT depends on the list
  const bool precomputed = uses_precomputed_table();
  const size_t M = pq.M, ts = M * pq.ksub;
  const InvertedLists& il = *invlists;
  const auto cb = codebooks.get(pq);
  const auto& K = detail::ivfpq_kernels();
  // budgets (Faiss's search_implem_10): checked before each list
  size_t max_codes = knobs.max_codes ? knobs.max_codes : SIZE_MAX;
  size_t max_lists = knobs.max_lists_num ? knobs.max_lists_num : np;
  if (knobs.ensure_topk_full) {
    max_codes = std::max(max_codes, size_t(k));
    max_lists = std::max(max_lists, size_t(k));
  }
  const bool count_members = sel && max_codes != SIZE_MAX;
  size_t nvisited = 0, ndis = 0;
  ParallelErrors perr;
#pragma omp parallel if (n > 1) reduction(+ : nvisited, ndis)
  {
    std::vector<float> qtab(ts), lut(ts), xres(per_list && !precomputed ? size_t(d) : 0);
    std::vector<uint8_t> plain;
    QuantizedLUT Q;
#pragma omp for schedule(dynamic, 1)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        const float* xq = x + size_t(q) * d;
        if (!per_list) {
          if (l2) {
            pq_l2_table(pq, *cb, xq, lut.data());
          } else {
            pq_ip_table(pq, *cb, xq, lut.data());
            for (auto& v : lut) v = -v;
          }
          quantize_lut(lut.data(), M, Q);
        } else if (precomputed) {
          pq_ip_table(pq, *cb, xq, qtab.data());
        }
        TopK heap;
        heap.k = size_t(k);
        heap.keys = D + size_t(q) * k;
        heap.ids = I + size_t(q) * k;
        size_t scanned = 0, lists = 0;
        for (size_t j = 0; j < np; ++j) {
          if (scanned >= max_codes || lists >= max_lists) break;
          const idx_t l = keys[size_t(q) * np + j];
          if (l < 0) continue;
          const size_t ls = il.list_size(size_t(l));
          if (!ls) continue;
          const float cd = coarse_dis[size_t(q) * np + j];
          if (per_list) {
            if (precomputed) {
              const float* P = precomputed_table.data() + size_t(l) * ts;
              K.madd(ts, P, -2.f, qtab.data(), lut.data());
            } else {
              compute_residual(xq, xres.data(), l);
              pq_l2_table(pq, *cb, xres.data(), lut.data());
            }
            quantize_lut(lut.data(), M, Q);
          }
          const float lbias = ivfpq_list_bias(metric_type, by_residual, precomputed, cd);
          const float kbias = Q.bias + lbias;  // the key of a sum acc: pq4_dequantize(acc, Q.inv_scale, kbias)
          const idx_t* ids = il.get_ids(size_t(l));
          const uint8_t* codes = il.get_codes(size_t(l));
          ++lists;
          ndis += ls;
          if (count_members) {
            for (size_t i = 0; i < ls; ++i) scanned += sel->is_member(ids[i]) ? 1 : 0;
          } else {
            scanned += ls;
          }
          if (reference) {
            plain.resize(ls * code_size);
            for (size_t i = 0; i < ls; ++i) get_list_code(size_t(l), i, plain.data() + i * code_size);
            const uint8_t* lq = Q.q.data();
            for (size_t i = 0; i < ls; ++i) {
              if (sel && !sel->is_member(ids[i])) continue;
              const uint8_t* c = plain.data() + i * code_size;
              uint32_t acc = 0;
              for (size_t m = 0; m < M; ++m) acc += lq[m * 16 + ((c[m >> 1] >> ((m & 1) * 4)) & 15)];
              heap.push(pq4_dequantize(acc, Q.inv_scale, kbias), ids[i]);
            }
            continue;
          }
          uint32_t thr = list_threshold(heap.threshold(), lbias, Q);
          auto consider = [&](uint32_t acc, size_t i) {
            const idx_t id = ids[i];
            if (sel && !sel->is_member(id)) return;
            heap.push(pq4_dequantize(acc, Q.inv_scale, kbias), id);
            thr = list_threshold(heap.threshold(), lbias, Q);
          };
          if (thr > 0) {
            const size_t npk = std::min(npacked[size_t(l)], ls);
            if (npk) pq4_scan(codes, npk, M, Q.q.data(), &thr, consider);
            size_t i0 = npk;
            if (ls > npk && tail_size[size_t(l)] == ls && !tail_blocks[size_t(l)].empty()) {
              pq4_scan(tail_blocks[size_t(l)].data(), ls - npk, M, Q.q.data(), &thr,
                       [&](uint32_t acc, size_t i) { consider(acc, npk + i); });
              i0 = ls;
            }
            const uint8_t* lq = Q.q.data();
            for (size_t i = i0; i < ls; ++i) {
              const uint8_t* c = codes + i * code_size;
              uint32_t acc = 0;
              for (size_t m = 0; m < M; ++m) acc += lq[m * 16 + ((c[m >> 1] >> ((m & 1) * 4)) & 15)];
              if (acc < thr) consider(acc, i);
            }
          }
        }
        nvisited += lists;
        pq_finalize_row(heap, size_t(k), metric_type, D + size_t(q) * k, I + size_t(q) * k);
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  *nlist_visited = nvisited;
  *ndis_out = ndis;
}

void IndexIVFPQFastScan::search_float_fs(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis,
                                         float* D, idx_t* I, size_t np, const IDSelector* sel) const {
  // an IndexIVFPQ in the same state, on plain copies of the lists
  IndexIVFPQ ref(quantizer, d, nlist, pq.M, 4, metric_type);
  ref.pq = pq;
  ref.by_residual = by_residual;
  ref.is_trained = true;
  ref.use_precomputed_table = use_precomputed_table;
  ref.precomputed_table = precomputed_table;
  auto lists = std::make_shared<InvertedLists>(nlist, code_size);
  std::vector<uint8_t> plain;
  for (size_t l = 0; l < nlist; ++l) {
    const size_t ls = invlists->list_size(l);
    if (!ls) continue;
    plain.resize(ls * code_size);
    for (size_t i = 0; i < ls; ++i) get_list_code(l, i, plain.data() + i * code_size);
    lists->add_entries(l, ls, invlists->get_ids(l), plain.data());
  }
  ref.invlists = lists;
  ref.ntotal = ntotal;
  ref.update_terms(true);
  ref.search_preassigned(n, x, k, keys, coarse_dis, D, I, np, 0, sel);
}

void IndexIVFPQFastScan::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                                      const SearchParameters* params) const {
  check_trained();
  ANNVIL_CHECK(size_t(quantizer->ntotal) == nlist, "the coarse quantizer holds ", quantizer->ntotal,
               " centroids but the index has nlist=", nlist, " (was the quantizer modified after training?)");
  size_t np, mc;
  const IDSelector* sel;
  resolve_params(params, &np, &mc, &sel);
  size_t max_empty = 0;
  if (auto* p = dynamic_cast<const SearchParametersIVF*>(params)) {
    ANNVIL_CHECK(p->max_lists_num == 0, "max_lists_num is a knn knob and is not honored by fastscan range search");
    ANNVIL_CHECK(!p->ensure_topk_full, "ensure_topk_full is a knn knob and is not honored by fastscan range search");
    ANNVIL_CHECK(p->max_codes == 0, "max_codes is not honored by fastscan range search");
    max_empty = p->max_empty_result_buckets;
  }
  int impl = implem;
  if (impl == 0) impl = max_empty || bbs != kPQ4BlockSize ? 10 : 12;
  if (impl >= 100) impl -= 100;
  ANNVIL_CHECK(impl == 1 || impl == 2 || (impl >= 10 && impl <= 15), "IndexIVFPQFastScan implem ", implem,
               " does not exist");
  ANNVIL_CHECK(!max_empty || impl == 10,
               "max_empty_result_buckets is only supported by IndexIVFFastScan range-search implem 10");
  const size_t nq = size_t(std::max<idx_t>(n, 0));
  std::vector<idx_t> keys(nq * np);
  std::vector<float> cdis(nq * np);
  if (nq) ivfpq_coarse_search(*quantizer, nlist, n, x, np, cdis.data(), keys.data());
  const bool l2 = metric_type == METRIC_L2;
  const float key_radius = l2 ? radius : -radius;
  std::vector<std::vector<std::pair<float, idx_t>>> hits(nq);
  const InvertedLists& il = *invlists;
  size_t nvisited = 0, ndis = 0;
  ParallelErrors perr;
#pragma omp parallel if (nq > 1) reduction(+ : nvisited, ndis)
  {
    auto sc = get_scanner();
    sc->sel = sel;
#pragma omp for schedule(dynamic, 4)
    for (int64_t q = 0; q < int64_t(nq); ++q) ANNVIL_OMP_TRY(perr) {
        sc->set_query(x + size_t(q) * d);
        auto& out = hits[size_t(q)];
        size_t empty = 0;
        for (size_t j = 0; j < np; ++j) {
          const idx_t l = keys[size_t(q) * np + j];
          const size_t ls = l >= 0 ? il.list_size(size_t(l)) : 0;
          if (!ls) {  // invalid probes and empty lists count as empty buckets
            if (max_empty && ++empty >= max_empty) break;
            continue;
          }
          sc->set_list(l, cdis[size_t(q) * np + j]);
          const size_t before = out.size();
          sc->scan_codes_range(ls, il.get_codes(size_t(l)), code_size, il.get_ids(size_t(l)), key_radius, out);
          ++nvisited;
          ndis += ls;
          if (max_empty) {
            if (out.size() == before) {
              if (++empty >= max_empty) break;
            } else {
              empty = 0;
            }
          }
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  indexIVF_stats.add(nq, nvisited, ndis);
  fill_range_result(hits, l2, result);
}

// Batches whose LUT depends on the query only (no residual, or inner
// product) are scanned list by list: the (query, list) pairs are grouped by
// list and each list's blocks are read once for all the queries probing it
// (pq4_scan_multi keeps a chunk of codes in L1 while every LUT passes over
// it).  Threads take disjoint lists with their own heaps, merged at the end.
void IndexIVFPQFastScan::search_grouped_fs(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis,
                                           float* D, idx_t* I, size_t np, const IDSelector* sel) const {
  const bool l2 = metric_type == METRIC_L2;
  const size_t M = pq.M, ts = M * pq.ksub, M2 = pq4_M2(M), nq = size_t(n);
  const InvertedLists& il = *invlists;
  const auto cb = codebooks.get(pq);
  // quantised LUTs of all queries
  static thread_local std::vector<uint8_t> luts_buf;  // kept across calls (page faults)
  luts_buf.resize(nq * M2 * 16);
  uint8_t* const luts = luts_buf.data();  // thread_local: parallel regions use this pointer
  std::vector<float> scales(nq), inv_scales(nq), biases(nq);
  ParallelErrors perr;
#pragma omp parallel if (nq > 64)
  {
    std::vector<float> lut(ts);
    QuantizedLUT Q;
#pragma omp for schedule(static)
    for (int64_t q = 0; q < int64_t(nq); ++q) ANNVIL_OMP_TRY(perr) {
        const float* xq = x + size_t(q) * d;
        if (l2) {
          pq_l2_table(pq, *cb, xq, lut.data());
        } else {
          pq_ip_table(pq, *cb, xq, lut.data());
          for (auto& v : lut) v = -v;
        }
        quantize_lut(lut.data(), M, Q);
        std::memcpy(luts + size_t(q) * M2 * 16, Q.q.data(), M2 * 16);
        scales[size_t(q)] = Q.scale;
        inv_scales[size_t(q)] = Q.inv_scale;
        biases[size_t(q)] = Q.bias;
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  // (query, list) pairs grouped by list (counting sort, queries ascending).
  // Each query's nearest list is scanned first, query by query, so that its
  // threshold is already tight when the grouped pass visits lists in list
  // order (fewer candidates reach the heaps).
  const size_t avg_ls = std::max<size_t>(1, size_t(ntotal) / nlist);
  const size_t npre = std::min(np, 1 + 2 * size_t(k) / avg_ls);  // about 2k candidates first
  auto grouped = [&](size_t i) { return keys[i] >= 0 && i % np >= npre; };
  std::vector<size_t> start(nlist + 1, 0);
  for (size_t i = 0; i < nq * np; ++i)
    if (grouped(i)) start[size_t(keys[i]) + 1]++;
  for (size_t l = 0; l < nlist; ++l) start[l + 1] += start[l];
  std::vector<uint32_t> pairs(start[nlist]);  // index into keys: q * np + j
  {
    std::vector<size_t> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < nq * np; ++i)
      if (grouped(i)) pairs[fill[size_t(keys[i])]++] = uint32_t(i);
  }
  std::vector<uint32_t> work;
  for (size_t l = 0; l < nlist; ++l)
    if (start[l + 1] > start[l] && il.list_size(l)) work.push_back(uint32_t(l));
  size_t total = 0;
  for (auto l : work) total += (start[l + 1] - start[l]) * il.list_size(l);
  int nt = omp_get_max_threads();
  if (total * M < kMinParallelWork) nt = 1;
  nt = std::max(1, std::min<int>(nt, int(std::max(work.size(), nq))));

  TopKArray heaps(nq, size_t(k));
  std::vector<TopKArray> local(size_t(nt > 1 ? nt : 0));
  const bool use_res = k > 20;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    if (nt > 1) local[size_t(t)] = TopKArray(nq, size_t(k));
    TopKArray& H = nt > 1 ? local[size_t(t)] : heaps;
    std::vector<TopKReservoir> R(use_res ? nq : 0);
    for (auto& r : R) r.init(size_t(k));
    auto threshold_of = [&](size_t q) { return use_res ? R[q].threshold() : H[q].threshold(); };
    constexpr size_t kQB = 64;  // queries per multi-scan
    const uint8_t* lp[kQB];
    uint32_t thr[kQB];
    float bias[kQB], inv_scale[kQB];
    size_t qid[kQB];
    // scan list l for the cnt (query, list) pairs at pr (indexes into keys)
    auto scan_list = [&](size_t l, const uint32_t* pr, size_t cnt) {
      const size_t ls = il.list_size(l);
      if (!ls) return;
      const size_t npk = std::min(npacked[l], ls);
      const bool tail_ok = ls > npk && tail_size[l] == ls && !tail_blocks[l].empty();
      const idx_t* ids = il.get_ids(l);
      const uint8_t* codes = il.get_codes(l);
      for (size_t p0 = 0; p0 < cnt; p0 += kQB) {
        const size_t nb = std::min(kQB, cnt - p0);
        for (size_t b = 0; b < nb; ++b) {
          const size_t pi = pr[p0 + b], q = pi / np;
          qid[b] = q;
          lp[b] = luts + q * M2 * 16;
          // as search_per_query_fs: Q.bias + list bias, times Q.inv_scale
          bias[b] = biases[q] + ivfpq_list_bias(metric_type, by_residual, false, coarse_dis[pi]);
          inv_scale[b] = inv_scales[q];
          QuantizedLUT Qb;
          Qb.scale = scales[q];
          Qb.bias = biases[q];
          thr[b] = list_threshold(threshold_of(q), bias[b] - biases[q], Qb);
        }
        auto consider = [&](size_t b, uint32_t acc, size_t i) {
          const idx_t id = ids[i];
          if (sel && !sel->is_member(id)) return;
          const size_t q = qid[b];
          const float key = pq4_dequantize(acc, inv_scale[b], bias[b]);
          if (use_res) {
            if (key > R[q].threshold() || !R[q].push(key, id)) return;
          } else {
            H[q].push(key, id);
          }
          QuantizedLUT Qb;
          Qb.scale = scales[q];
          Qb.bias = biases[q];
          thr[b] = list_threshold(threshold_of(q), bias[b] - biases[q], Qb);
        };
        if (npk) pq4_scan_multi(codes, npk, M, nb, lp, thr, consider);
        if (tail_ok) {
          pq4_scan_multi(tail_blocks[l].data(), ls - npk, M, nb, lp, thr,
                         [&](size_t b, uint32_t acc, size_t i) { consider(b, acc, npk + i); });
        } else if (ls > npk) {
          for (size_t b = 0; b < nb; ++b) {
            const uint8_t* lq = lp[b];
            for (size_t i = npk; i < ls; ++i) {
              const uint8_t* c = codes + i * code_size;
              uint32_t acc = 0;
              for (size_t m = 0; m < M; ++m) acc += lq[m * 16 + ((c[m >> 1] >> ((m & 1) * 4)) & 15)];
              if (acc < thr[b]) consider(b, acc, i);
            }
          }
        }
      }
    };
#pragma omp for schedule(static)
    for (int64_t q = 0; q < int64_t(nq); ++q) ANNVIL_OMP_TRY(perr) {
        for (size_t j = 0; j < npre; ++j) {
          const uint32_t pi = uint32_t(size_t(q) * np + j);
          if (keys[pi] >= 0) scan_list(size_t(keys[pi]), &pi, 1);
        }
      }
    ANNVIL_OMP_CATCH(perr)
#pragma omp for schedule(dynamic, 1)
    for (int64_t w = 0; w < int64_t(work.size()); ++w) ANNVIL_OMP_TRY(perr) {
        const size_t l = work[size_t(w)];
        scan_list(l, pairs.data() + start[l], start[l + 1] - start[l]);
      }
    ANNVIL_OMP_CATCH(perr)
    if (use_res)
      for (size_t q = 0; q < nq; ++q) R[q].fill_unordered(H[q]);
  }
  perr.rethrow();
  for (int t = 0; t < nt && nt > 1; ++t) heaps.merge_from(local[size_t(t)]);
  heaps.finalize(metric_type, nullptr, D, I);
}

}  // namespace annvil
