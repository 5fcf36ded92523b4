#include "ivf/index_ivf_pq.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <type_traits>

#include "distances/distances.h"
#include "index_flat.h"
#include "ivf/index_ivf_pq_kernels.h"
#include "core/io.h"
#include "distances/knn.h"
#include "simd/dispatch.h"
#include "core/utils.h"

namespace annvil {

// ---- kernels: scalar versions and dispatch ---------------------------------------------
namespace detail {
namespace {
void ip_table_scalar(const float* x, const float* ct, size_t M, size_t dsub, size_t ksub, float* out) {
  for (size_t m = 0; m < M; ++m) {
    float* o = out + m * ksub;
    std::fill(o, o + ksub, 0.f);
    for (size_t p = 0; p < dsub; ++p) {
      const float xp = x[m * dsub + p];
      const float* c = ct + (m * dsub + p) * ksub;
      for (size_t j = 0; j < ksub; ++j) o[j] += xp * c[j];
    }
  }
}
void madd_scalar(size_t n, const float* a, float alpha, const float* b, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + alpha * b[i];
}
void assign_scalar(size_t n, const float* x, size_t ldx, const float* ct, const float* cnorms, size_t dsub, size_t k,
                   int32_t* labels, float* dis) {
  std::vector<float> acc(k);
  for (size_t i = 0; i < n; ++i) {
    const float* xi = x + i * ldx;
    std::copy(cnorms, cnorms + k, acc.begin());
    for (size_t p = 0; p < dsub; ++p) {
      const float xp = -2.f * xi[p];
      const float* c = ct + p * k;
      for (size_t j = 0; j < k; ++j) acc[j] += xp * c[j];
    }
    size_t b = 0;
    for (size_t j = 1; j < k; ++j)
      if (acc[j] < acc[b]) b = j;
    labels[i] = int32_t(b);
    dis[i] = acc[b];
  }
}
double lut_to_u16_scalar(const float* t, size_t M, size_t ksub, uint16_t* out, double* bias) {
  std::vector<float> mins(M);
  double span = 0, b = 0;
  for (size_t m = 0; m < M; ++m) {
    const float* r = t + m * ksub;
    float lo = r[0], hi = r[0];
    for (size_t j = 1; j < ksub; ++j) {
      lo = r[j] < lo ? r[j] : lo;
      hi = r[j] > hi ? r[j] : hi;
    }
    mins[m] = lo;
    b += lo;
    span = std::max(span, double(hi) - double(lo));
  }
  const double scale = span > 0 ? 65535.0 / span : 1.0;
  const float sc = float(scale);
  for (size_t m = 0; m < M; ++m)
    for (size_t j = 0; j < ksub; ++j) {
      float v = (t[m * ksub + j] - mins[m]) * sc + 0.5f;
      out[m * ksub + j] = uint16_t(v < 0.f ? 0.f : (v > 65535.f ? 65535.f : v));
    }
  *bias = b;
  return scale;
}
}  // namespace

const IVFPQKernels& ivfpq_kernels_scalar() {
  static const IVFPQKernels k{&ip_table_scalar, &madd_scalar, &assign_scalar, &lut_to_u16_scalar, nullptr, nullptr};
  return k;
}

const IVFPQKernels& ivfpq_kernels() {
  static const KernelDispatch<IVFPQKernels> d(&ivfpq_kernels_scalar(), ANNVIL_ISA_TABLE(ivfpq_kernels_avx2),
                                              ANNVIL_ISA_TABLE(ivfpq_kernels_avx512));
  return d.get();
}
}  // namespace detail

// ---- shared pieces ------------------------------------------------------------------

// The precomputed table (L2, by_residual).  With y = y_C + y_R, y_C the coarse
// centroid and y_R = [r_{0,c_0}, ..., r_{M-1,c_{M-1}}] the PQ reconstruction of
// the residual (sub-vectors on disjoint dimensions):
//   |x - y|^2 = |x - y_C|^2 + |y_R|^2 + 2 <y_C, y_R> - 2 <x, y_R>
//             = coarse_dis  + sum_m (|r_{m,c_m}|^2 + 2 <y_C_m, r_{m,c_m}>)   <- P[list][m][c_m]
//                           - 2 sum_m <x_m, r_{m,c_m}>                      <- per-query table
// P depends only on the list and the code, so it is computed once at training
// time (nlist * M * ksub floats); a search then needs one inner-product table
// per query (M * ksub) and, per probed list, LUT = P[list] - 2 * table, the
// coarse distance coming for free from the quantizer.
void ivfpq_compute_precomputed_table(const Index& quantizer, size_t nlist, const ProductQuantizer& pq,
                                     std::vector<float>& table) {
  const size_t M = pq.M, ksub = pq.ksub, dsub = pq.dsub, d = pq.d;
  std::vector<float> norms(M * ksub);
  compute_norms(M * ksub, pq.centroids.data(), dsub, norms.data());  // |r_{m,j}|^2, (m, j) row order
  std::vector<float> tab(nlist * M * ksub);
  const Kernels& K = kernels();
  ParallelErrors perr;
#pragma omp parallel if (nlist > 16)
  {
    std::vector<float> yc(d);
#pragma omp for schedule(static)
    for (int64_t l = 0; l < int64_t(nlist); ++l) ANNVIL_OMP_TRY(perr) {
        quantizer.reconstruct(l, yc.data());
        float* t = tab.data() + size_t(l) * M * ksub;
        for (size_t m = 0; m < M; ++m) {
          K.inner_product_ny(yc.data() + m * dsub, pq.get_centroids(m, 0), dsub, ksub, t + m * ksub);
          for (size_t j = 0; j < ksub; ++j) t[m * ksub + j] = norms[m * ksub + j] + 2.f * t[m * ksub + j];
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  table.swap(tab);
}

void ivfpq_coarse_search(const Index& quantizer, size_t nlist, idx_t n, const float* x, size_t np, float* dis,
                         idx_t* keys) {
  const auto* flat = dynamic_cast<const IndexFlat*>(&quantizer);
  if (!flat || size_t(flat->ntotal) != nlist || np < 48 || n <= 0) {
    quantizer.search(n, x, idx_t(np), dis, keys);
    return;
  }
  const bool l2 = flat->metric_type == METRIC_L2;
  const size_t d = size_t(flat->d);
  const idx_t bs = std::max<idx_t>(16, idx_t((size_t(1) << 18) / nlist));  // ~1 MB of distances per block
  // kept across calls: fresh multi-megabyte buffers cost page faults on every search
  static thread_local std::vector<float> buf;
  for (idx_t i0 = 0; i0 < n; i0 += bs) {
    const idx_t m = std::min(bs, n - i0);
    buf.resize(size_t(m) * nlist);
    float* const dm = buf.data();  // thread_local: other threads must use this pointer, not `buf`
    pairwise_distances(size_t(m), x + size_t(i0) * d, nlist, flat->get_xb(), d, flat->metric_type, dm);
    ParallelErrors perr;
#pragma omp parallel if (m > 16 && size_t(m) * nlist * d > kMinParallelWork)
    {
      std::vector<uint32_t> order(nlist);
#pragma omp for schedule(static)
      for (idx_t q = 0; q < m; ++q) ANNVIL_OMP_TRY(perr) {
          const float* row = dm + size_t(q) * nlist;
          // better: smaller L2 distance / larger inner product, then smaller id
          auto better = [&](uint32_t a, uint32_t b) {
            return l2 ? (row[a] < row[b] || (row[a] == row[b] && a < b))
                      : (row[a] > row[b] || (row[a] == row[b] && a < b));
          };
          std::iota(order.begin(), order.end(), 0u);
          const size_t kk = std::min(np, nlist);
          if (kk < nlist) std::nth_element(order.begin(), order.begin() + kk, order.end(), better);
          std::sort(order.begin(), order.begin() + kk, better);
          float* dq = dis + size_t(i0 + q) * np;
          idx_t* kq = keys + size_t(i0 + q) * np;
          for (size_t j = 0; j < np; ++j) {
            if (j < kk) {
              dq[j] = l2 ? std::max(0.f, row[order[j]]) : row[order[j]];
              kq[j] = idx_t(order[j]);
            } else {
              dq[j] = l2 ? missing_result_distance(METRIC_L2) : missing_result_distance(METRIC_INNER_PRODUCT);
              kq[j] = -1;
            }
          }
        }
      ANNVIL_OMP_CATCH(perr)
    }
    perr.rethrow();
  }
}

void ivfpq_search(const IndexIVF& ivf, idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                  const SearchParameters* params) {
  ivf.check_k(k);
  ivf.check_trained();
  if (n <= 0) return;
  // list numbers come from the quantizer (as IndexIVF::search checks)
  ANNVIL_CHECK(size_t(ivf.quantizer->ntotal) == ivf.nlist, "the coarse quantizer holds ", ivf.quantizer->ntotal,
               " centroids but the index has nlist=", ivf.nlist, " (was the quantizer modified after training?)");
  size_t np, mc;
  const IDSelector* sel;
  ivf.resolve_params(params, &np, &mc, &sel);
  const idx_t bs = 8192;
  std::vector<idx_t> keys;  // not thread_local: a non-flat quantizer may itself be an IVF-PQ index
  std::vector<float> cdis;
  for (idx_t i0 = 0; i0 < n; i0 += bs) {
    const idx_t m = std::min(bs, n - i0);
    keys.resize(size_t(m) * np);
    cdis.resize(size_t(m) * np);
    ivfpq_coarse_search(*ivf.quantizer, ivf.nlist, m, x + size_t(i0) * ivf.d, np, cdis.data(), keys.data());
    ivf.count_search(m, keys.data(), np, mc, sel);  // faiss.cvar.indexIVF_stats
    ivf.search_preassigned(m, x + size_t(i0) * ivf.d, k, keys.data(), cdis.data(), D + size_t(i0) * k,
                           I + size_t(i0) * k, np, mc, sel);
  }
}

void ivfpq_train_pq(const IndexIVF& ivf, idx_t n, const float* x, ProductQuantizer& pq) {
  const int d = ivf.d;
  // Faiss trains the encoder of an IVF-PQ on at most max_points_per_centroid *
  // ksub vectors (the same subsample as Faiss, so the same codebooks).
  const idx_t max_n = idx_t(pq.cp.max_points_per_centroid) * idx_t(pq.ksub);
  std::vector<float> sub;
  if (n > max_n) {
    // Faiss's fvecs_maybe_subsample: the first max_n of rand_perm(n, 1234), in that order
    ANNVIL_CHECK(n <= idx_t(std::numeric_limits<int>::max()), "too many training vectors: ", n);
    std::vector<int> perm(static_cast<size_t>(n));
    rand_perm(perm.data(), size_t(n), 1234);
    sub.resize(size_t(max_n) * d);
    for (idx_t i = 0; i < max_n; ++i)
      std::memcpy(sub.data() + size_t(i) * d, x + size_t(perm[size_t(i)]) * d, sizeof(float) * d);
    x = sub.data();
    n = max_n;
  }
  if (ivf.by_residual) {
    std::vector<idx_t> assign(static_cast<size_t>(n));
    std::vector<float> dis(static_cast<size_t>(n));
    ivf.quantizer->search(n, x, 1, dis.data(), assign.data());
    std::vector<float> res(size_t(n) * d);
    ParallelErrors perr;
#pragma omp parallel for schedule(static) if (n > 1000)
    for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
        float* r = res.data() + size_t(i) * d;
        if (assign[size_t(i)] < 0) {
          std::memcpy(r, x + size_t(i) * d, sizeof(float) * d);
          continue;
        }
        ivf.compute_residual(x + size_t(i) * d, r, assign[size_t(i)]);
      }
    ANNVIL_OMP_CATCH(perr)
    perr.rethrow();
    pq.train(n, res.data());
  } else {
    pq.train(n, x);
  }
}

namespace {

// out = a + alpha * b over n floats (written so that it vectorises)
void madd(size_t n, const float* a, float alpha, const float* b, float* out) {
  detail::ivfpq_kernels().madd(n, a, alpha, b, out);
}

struct IVFPQScanner : InvertedListScanner {
  const IndexIVFPQ& idx;
  const ProductQuantizer& pq;
  const std::shared_ptr<const PQCodebooks> cb;
  const bool l2, precomputed, residual;
  const float* q = nullptr;
  std::vector<float> qtab;  // per query: distance table, -<x,r> table (IP), or <x,r> table (precomputed)
  std::vector<float> ltab;  // per list when the table depends on the list
  std::vector<float> xres;  // x - y_C (L2 residual without precomputed table)
  const float* lut = nullptr;
  float dis0 = 0;
  std::vector<float> buf;
  // 16-bit copy of a per-query table (see scan_codes): q16 = round((lut - min_m) * scale)
  const bool use16;
  std::vector<uint16_t> q16;
  double scale16 = 1, bias16 = 0;
  std::vector<uint32_t> ubuf;
  // L2 + precomputed table with per-vector terms (IndexIVFPQ::list_terms):
  // mtab = -2 <x_m, r> per query, screened through q16 like use16
  const bool terms_mode;
  std::vector<float> mtab;

  explicit IVFPQScanner(const IndexIVFPQ& i)
      : idx(i),
        pq(i.pq),
        cb(i.codebooks.get(i.pq)),
        l2(i.metric_type == METRIC_L2),
        precomputed(i.uses_precomputed_table()),
        residual(i.by_residual),
        qtab(i.pq.M * i.pq.ksub),
        buf(256),
        use16(i.pq.nbits == 8 && !(i.metric_type == METRIC_L2 && i.by_residual)),
        terms_mode(i.pq.nbits == 8 && i.metric_type == METRIC_L2 && i.by_residual && i.uses_precomputed_table()) {
    if (terms_mode) mtab.resize(pq.M * 256);
    if (use16 || terms_mode) {
      q16.resize(pq.M * 256 + 2);  // padding: the gather kernel reads 4 bytes per entry
      ubuf.resize(256);
    }
    if (l2 && residual) ltab.resize(pq.M * pq.ksub);
    if (l2 && residual && !precomputed) xres.resize(size_t(i.d));
  }

  void set_query(const float* q_) override {
    q = q_;
    lut = ivfpq_query_tables(pq, *cb, q, l2, residual, precomputed, qtab.data(), ltab.data());
    if (use16) quantize16();
    if (terms_mode) {
      for (size_t i = 0; i < mtab.size(); ++i) mtab[i] = -2.f * qtab[i];
      scale16 = detail::ivfpq_kernels().lut_to_u16(mtab.data(), pq.M, 256, q16.data(), &bias16);
    }
  }

  // List l through its per-vector terms T_i = sum_m P[l][m][c_m] (query-
  // independent, kept by the index):  key = coarse_dis + T_i - 2 sum_m <x_m, r_{m,c_m}>,
  // the per-query part screened in 16 bits as in scan16 (the threshold now
  // depends on T_i), survivors re-scored with the float table.
  template <class Coll>
  size_t scan_terms(size_t n, const uint8_t* codes, size_t code_size, const idx_t* ids, const float* terms,
                    float coarse_dis, Coll& heap) const {
    uint32_t* acc = const_cast<uint32_t*>(ubuf.data());
    auto sums16 = pq.M % 16 == 0 ? detail::ivfpq_kernels().sums_u16 : nullptr;
    const double slack = double(pq.M) * 0.5 + 2.0;
    for (size_t i0 = 0; i0 < n; i0 += 256) {
      const size_t m = std::min<size_t>(256, n - i0);
      if (sums16)
        sums16(codes + i0 * code_size, m, pq.M, q16.data(), acc);
      else
        pq8_code_sums_u16(codes + i0 * code_size, m, pq.M, q16.data(), acc);
      if constexpr (std::is_same<Coll, ApproxReservoir>::value) {
        const float inv = float(1.0 / scale16), off = coarse_dis + float(bias16);
        for (size_t i = 0; i < m; ++i) {
          const float ti = terms[i0 + i];
          const float a = float(acc[i]) * inv + off + ti;
          if (a > heap.threshold()) continue;
          const idx_t id = ids[i0 + i];
          if (sel && !sel->is_member(id)) continue;
          heap.add(a, id, codes + (i0 + i) * code_size, coarse_dis + ti);
        }
        continue;
      }
      for (size_t i = 0; i < m; ++i) {
        const float thr = heap.threshold();
        const float ti = terms[i0 + i];
        if (thr < std::numeric_limits<float>::infinity() &&
            double(acc[i]) > (double(thr) - double(coarse_dis) - double(ti) - bias16) * scale16 + slack)
          continue;
        float s;
        pq8_code_sums(codes + (i0 + i) * code_size, 1, pq.M, mtab.data(), &s);
        const float key = coarse_dis + ti + s;
        if (key > thr) continue;
        const idx_t id = ids[i0 + i];
        if (sel && !sel->is_member(id)) continue;
        heap.push(key, id);
      }
    }
    return n;
  }

  // The float table is 4 * M * 256 bytes (48 KiB for M = 48): as large as L1,
  // so the scan's random reads keep missing it.  A 16-bit copy halves that;
  // its sums (exact integers) only screen codes against the heap threshold,
  // with a bound on the rounding error, and the few codes that pass are
  // re-scored with the float table: results are those of the float scan.
  void quantize16() { scale16 = detail::ivfpq_kernels().lut_to_u16(lut, pq.M, 256, q16.data(), &bias16); }

  // largest integer sum that may still belong to a key <= thr: the float sum
  // is at least acc / scale + bias - (M / 2 + 1) / scale (rounding per entry)
  uint64_t threshold16(float thr) const {
    if (!(thr < std::numeric_limits<float>::infinity())) return UINT64_MAX;
    double t = (double(thr) - double(dis0) - bias16) * scale16 + double(pq.M) * 0.5 + 2.0;
    if (t < 0) return 0;
    if (t > 1e18) return UINT64_MAX;
    return uint64_t(t);
  }

  void set_list(idx_t l, float coarse_dis) override {
    list_no = l;
    dis0 = ivfpq_list_bias(idx.metric_type, residual, precomputed, coarse_dis);
    if (l2 && residual) {
      const size_t ts = pq.M * pq.ksub;
      if (precomputed) {
        madd(ts, idx.precomputed_table.data() + size_t(l) * ts, -2.f, qtab.data(), ltab.data());
      } else {
        idx.compute_residual(q, xres.data(), l);
        pq_l2_table(pq, *cb, xres.data(), ltab.data());
      }
    }
  }

  void sums(const uint8_t* codes, size_t n, float* out) const {
    if (pq.nbits == 8)
      pq8_code_sums(codes, n, pq.M, lut, out);
    else
      pq_code_sums_generic(pq, codes, n, lut, out);
  }

  float distance_to_code(const uint8_t* code) const override {
    float s;
    sums(code, 1, &s);
    return dis0 + s;
  }

  size_t scan_codes(size_t n, const uint8_t* codes, size_t code_size, const idx_t* ids, TopK& heap) const override {
    return scan(n, codes, code_size, ids, heap);
  }

  // Coll: TopK or TopKReservoir (threshold(), push(key, id))
  template <class Coll>
  size_t scan(size_t n, const uint8_t* codes, size_t code_size, const idx_t* ids, Coll& heap) const {
    if (use16) return scan16(n, codes, code_size, ids, heap);
    float* dis = const_cast<float*>(buf.data());
    float thr = heap.threshold() - dis0;
    for (size_t i0 = 0; i0 < n; i0 += 256) {
      const size_t m = std::min<size_t>(256, n - i0);
      sums(codes + i0 * code_size, m, dis);
      for (size_t i = 0; i < m; ++i) {
        if (dis[i] > thr) continue;  // equal keys may still win on a smaller id
        const idx_t id = ids[i0 + i];
        if (sel && !sel->is_member(id)) continue;
        heap.push(dis0 + dis[i], id);
        thr = heap.threshold() - dis0;
      }
    }
    return n;
  }

  template <class Coll>
  size_t scan16(size_t n, const uint8_t* codes, size_t code_size, const idx_t* ids, Coll& heap) const {
    uint32_t* acc = const_cast<uint32_t*>(ubuf.data());
    auto sums16 = pq.M % 16 == 0 ? detail::ivfpq_kernels().sums_u16 : nullptr;
    uint64_t thr = threshold16(heap.threshold());
    for (size_t i0 = 0; i0 < n; i0 += 256) {
      const size_t m = std::min<size_t>(256, n - i0);
      if (sums16)
        sums16(codes + i0 * code_size, m, pq.M, q16.data(), acc);
      else
        pq8_code_sums_u16(codes + i0 * code_size, m, pq.M, q16.data(), acc);
      if constexpr (std::is_same<Coll, ApproxReservoir>::value) {
        const float inv = float(1.0 / scale16), off = dis0 + float(bias16);
        for (size_t i = 0; i < m; ++i) {
          if (acc[i] > thr) continue;
          const float a = float(acc[i]) * inv + off;
          if (a > heap.threshold()) continue;
          const idx_t id = ids[i0 + i];
          if (sel && !sel->is_member(id)) continue;
          heap.add(a, id, codes + (i0 + i) * code_size, dis0);
          thr = threshold16(heap.threshold());
        }
        continue;
      }
      for (size_t i = 0; i < m; ++i) {
        if (acc[i] > thr) continue;
        float s;
        pq8_code_sums(codes + (i0 + i) * code_size, 1, pq.M, lut, &s);
        const float key = dis0 + s;
        if (key > heap.threshold()) continue;
        const idx_t id = ids[i0 + i];
        if (sel && !sel->is_member(id)) continue;
        heap.push(key, id);
        thr = threshold16(heap.threshold());
      }
    }
    return n;
  }
};

}  // namespace

// ---- IndexIVFPQ -----------------------------------------------------------------------
IndexIVFPQ::IndexIVFPQ(IndexPtr q, int d_, size_t nlist_, size_t M, size_t nbits, MetricType metric)
    : IndexIVF(std::move(q), d_, nlist_, ProductQuantizer(size_t(d_ > 0 ? d_ : 1), M, nbits).code_size, metric),
      pq(size_t(d_), M, nbits) {
  by_residual = true;
  is_trained = false;
}

void ivfpq_train(IndexIVF& ivf, ProductQuantizer& pq, bool& skip_encoder_training, idx_t n, const float* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  const bool have_centroids = ivf.quantizer->is_trained && size_t(ivf.quantizer->ntotal) == ivf.nlist;
  if (!have_centroids)
    ANNVIL_CHECK(size_t(n) >= ivf.nlist, "IVF training needs at least nlist=", ivf.nlist, " vectors, got ", n,
                 ": pass more training vectors or use fewer lists");
  ANNVIL_CHECK(size_t(n) >= pq.ksub, "the product quantizer (nbits=", pq.nbits, ") needs at least 2^nbits=", pq.ksub,
               " training vectors, got ", n, ": pass more training vectors or lower nbits");
  // coarse level through the base class (encoder skipped), then the PQ on a subsample
  skip_encoder_training = true;
  try {
    ivf.IndexIVF::train(n, x);
  } catch (...) {
    skip_encoder_training = false;
    throw;
  }
  skip_encoder_training = false;
  ProductQuantizer trained = pq;
  ivfpq_train_pq(ivf, n, x, trained);
  pq = std::move(trained);
}

void IndexIVFPQ::train(idx_t n, const float* x) {
  ivfpq_train(*this, pq, skip_encoder_training_, n, x);
  precomputed_table.clear();
  precompute_table();
  is_trained = true;
}

void IndexIVFPQ::update_terms(bool all) {
  if (!uses_precomputed_table() || pq.nbits != 8) {
    std::vector<std::vector<float>>().swap(list_terms);
    return;
  }
  list_terms.resize(nlist);
  const size_t M = pq.M, ts = M * 256;
  ParallelErrors perr;
#pragma omp parallel for schedule(dynamic, 16) if (ntotal > 100000)
  for (int64_t l = 0; l < int64_t(nlist); ++l) ANNVIL_OMP_TRY(perr) {
      auto& T = list_terms[size_t(l)];
      const size_t ls = invlists->list_size(size_t(l));
      size_t from = all || T.size() > ls ? 0 : T.size();
      T.resize(ls);
      const float* P = precomputed_table.data() + size_t(l) * ts;
      const uint8_t* codes = invlists->get_codes(size_t(l));
      pq8_code_sums(codes + from * code_size, ls - from, M, P, T.data() + from);
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void IndexIVFPQ::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  IndexIVF::add_with_ids(n, x, ids);
  update_terms(false);
}

size_t IndexIVFPQ::remove_ids(const IDSelector& sel) {
  size_t r = IndexIVF::remove_ids(sel);
  if (r) update_terms(true);
  return r;
}

void IndexIVFPQ::reset() {
  IndexIVF::reset();
  update_terms(true);
}

void IndexIVFPQ::merge_from_pq(IndexIVF& other, idx_t add_id) {
  IndexIVF::merge_from(other, add_id);
  update_terms(false);
  if (auto* o = dynamic_cast<IndexIVFPQ*>(&other)) o->update_terms(true);
}

void IndexIVFPQ::merge_from(Index& other, idx_t add_id) {
  auto* o = dynamic_cast<IndexIVF*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  merge_from_pq(*o, add_id);
}

void IndexIVFPQ::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
  IndexIVF::add_sa_codes(n, codes, ids);
  update_terms(false);
}

void IndexIVFPQ::precompute_table() {
  if (use_precomputed_table == -1 || !by_residual || metric_type != METRIC_L2 || !pq.is_trained ||
      !(quantizer->is_trained && size_t(quantizer->ntotal) == nlist)) {
    precomputed_table.clear();
    precomputed_table.shrink_to_fit();
    update_terms(true);
    return;
  }
  const size_t bytes = nlist * pq.M * pq.ksub * sizeof(float);
  if (use_precomputed_table == 0) {
    if (bytes > precomputed_table_max_bytes) return;
    use_precomputed_table = 1;
  }
  ivfpq_compute_precomputed_table(*quantizer, nlist, pq, precomputed_table);
  update_terms(true);
}

const float* ivfpq_query_tables(const ProductQuantizer& pq, const PQCodebooks& cb, const float* q, bool l2,
                                bool residual, bool precomputed, float* qtab, float* ltab) {
  if (l2 && residual) {
    // per-list tables are built into ltab by set_list (from <x, r> when precomputed)
    if (precomputed) pq_ip_table(pq, cb, q, qtab);
    return ltab;
  }
  if (l2) {
    pq_l2_table(pq, cb, q, qtab);
  } else {
    pq_ip_table(pq, cb, q, qtab);
    const size_t n = pq.M * pq.ksub;
    for (size_t i = 0; i < n; ++i) qtab[i] = -qtab[i];
  }
  return qtab;
}

void ivfpq_encode(const IndexIVF& ivf, const ProductQuantizer& pq, const PQCodebooks& cb, idx_t n, const float* x,
                  const idx_t* list_nos, uint8_t* codes) {
  if (n <= 0) return;
  const size_t d = size_t(ivf.d);
  if (!ivf.by_residual) {
    pq_encode(pq, cb, n, x, codes);
  } else {
    std::vector<float> res(size_t(n) * d);
    ParallelErrors perr;
#pragma omp parallel for schedule(static) if (n > 1000)
    for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
        float* r = res.data() + size_t(i) * d;
        if (list_nos[i] < 0)
          std::memset(r, 0, sizeof(float) * d);
        else
          ivf.compute_residual(x + size_t(i) * d, r, list_nos[i]);
      }
    ANNVIL_OMP_CATCH(perr)
    perr.rethrow();
    pq_encode(pq, cb, n, res.data(), codes);
  }
  for (idx_t i = 0; i < n; ++i)
    if (list_nos[i] < 0) std::memset(codes + size_t(i) * pq.code_size, 0, pq.code_size);
}

void IndexIVFPQ::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
  ivfpq_encode(*this, pq, *codebooks.get(pq), n, x, list_nos, codes);
}

void IndexIVFPQ::decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const {
  pq.decode(n, codes, x);
  if (!by_residual) return;
  std::vector<float> c(d);
  for (idx_t i = 0; i < n; ++i) {
    if (list_nos[i] < 0) continue;
    quantizer->reconstruct(list_nos[i], c.data());
    float* xi = x + size_t(i) * d;
    for (int p = 0; p < d; ++p) xi[p] += c[p];
  }
}

std::unique_ptr<InvertedListScanner> IndexIVFPQ::get_scanner() const { return std::make_unique<IVFPQScanner>(*this); }

// Query by query (the table is per query), probed lists in order, each query
// on one thread; large k collects into a reservoir rather than a heap.
void IndexIVFPQ::search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis,
                                    float* D, idx_t* I, size_t np, size_t mc, const IDSelector* sel) const {
  if (n <= 0) return;
  if (mc || n == 1) {  // budgets and single-query list sharing: the base class
    IndexIVF::search_preassigned(n, x, k, keys, coarse_dis, D, I, np, mc, sel);
    return;
  }
  const InvertedLists& il = *invlists;
  size_t work = 0;
  for (size_t i = 0; i < size_t(n) * np; ++i)
    if (keys[i] >= 0) work += il.list_size(size_t(keys[i]));
  const bool parallel = omp_get_max_threads() > 1 && work * pq.M >= kMinParallelWork;
  const bool use_res = k > 20;
  TopKArray heaps{size_t(n), size_t(k)};
  ParallelErrors perr;
#pragma omp parallel if (parallel)
  {
    IVFPQScanner sc(*this);
    sc.sel = sel;
    TopKReservoir R;
    ApproxReservoir A;
    const bool approx = use_res && (sc.use16 || sc.terms_mode);
#pragma omp for schedule(dynamic, 4)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        sc.set_query(x + size_t(q) * d);
        if (approx) {
          // |exact - approximate| <= (M / 2 + 1) / scale for 16-bit sums
          A.init(size_t(k), float((double(pq.M) * 0.5 + 1.0) / sc.scale16));
        } else if (use_res) {
          R.init(size_t(k));
        }
        for (size_t j = 0; j < np; ++j) {
          const idx_t l = keys[size_t(q) * np + j];
          if (l < 0) continue;
          const size_t ls = il.list_size(size_t(l));
          if (!ls) continue;
          const float cd = coarse_dis[size_t(q) * np + j];
          if (sc.terms_mode && size_t(l) < list_terms.size() && list_terms[size_t(l)].size() == ls) {
            const float* T = list_terms[size_t(l)].data();
            if (approx)
              sc.scan_terms(ls, il.get_codes(size_t(l)), code_size, il.get_ids(size_t(l)), T, cd, A);
            else if (use_res)
              sc.scan_terms(ls, il.get_codes(size_t(l)), code_size, il.get_ids(size_t(l)), T, cd, R);
            else
              sc.scan_terms(ls, il.get_codes(size_t(l)), code_size, il.get_ids(size_t(l)), T, cd, heaps[size_t(q)]);
            continue;
          }
          sc.set_list(l, cd);
          if (approx)
            sc.scan(ls, il.get_codes(size_t(l)), code_size, il.get_ids(size_t(l)), A);
          else if (use_res)
            sc.scan(ls, il.get_codes(size_t(l)), code_size, il.get_ids(size_t(l)), R);
          else
            sc.scan(ls, il.get_codes(size_t(l)), code_size, il.get_ids(size_t(l)), heaps[size_t(q)]);
        }
        if (approx) {
          const float* tab = sc.terms_mode ? sc.mtab.data() : sc.lut;
          A.finish(heaps[size_t(q)], [&](const uint8_t* code) {
            float v;
            pq8_code_sums(code, 1, pq.M, tab, &v);
            return v;
          });
        } else if (use_res) {
          R.fill_unordered(heaps[size_t(q)]);
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  heaps.finalize(metric_type, nullptr, D, I);
}

void IndexIVFPQ::check_compatible_for_merge(const IndexIVF& other) const {
  IndexIVF::check_compatible_for_merge(other);
  const auto& o = dynamic_cast<const IndexIVFPQ&>(other);
  ANNVIL_CHECK(o.pq.M == pq.M && o.pq.nbits == pq.nbits && o.pq.centroids == pq.centroids,
               "cannot merge IVFPQ indexes with different product quantizers (train one and copy it)");
}

void IndexIVFPQ::write_payload(Writer& w) const {
  write_index_header(w, *this);
  pq.write(w);
  w.write<int32_t>(use_precomputed_table);
  write_ivf(w);
}

namespace {
IndexPtr read_ivfpq(Reader& r) {
  IndexHeader h = read_header_fields(r);
  ProductQuantizer pq = ProductQuantizer::read(r);
  if (pq.d != size_t(h.d)) r.corrupt("IVFPQ product quantizer dimension differs from the index");
  int32_t upt = r.read<int32_t>();
  if (upt < -1 || upt > 1) r.corrupt("bad use_precomputed_table value");
  IndexIVF::Common c = IndexIVF::read_ivf_common(r, h.d);
  auto idx = std::make_shared<IndexIVFPQ>(c.quantizer, h.d, c.nlist, pq.M, pq.nbits, h.metric);
  idx->pq = std::move(pq);
  IndexIVF::read_ivf_lists(r, *idx, c, h.ntotal, h.is_trained);
  idx->use_precomputed_table = upt;
  if (idx->is_trained && upt == 1) idx->precompute_table();
  return idx;
}
ANNVIL_REGISTER_INDEX("IVFPQ", read_ivfpq);
}  // namespace

}  // namespace annvil
