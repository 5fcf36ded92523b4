// IndexQG: training, adds (graph + codes + blocks), the quantized-block walk,
// and the index-file payload.  Layout and math in index_qg.h.
#include "hnsw/index_qg.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/code_rows.h"
#include "core/topk.h"
#include "core/io.h"
#include "core/parallel.h"
#include "simd/dispatch.h"

namespace annvil {

namespace detail {
const QGKernels& qg_kernels() {
  static const KernelDispatch<QGKernels> d(&qg_kernels_scalar(), ANNVIL_ISA_TABLE(qg_kernels_avx2),
                                           ANNVIL_ISA_TABLE(qg_kernels_avx512));
  return d.get();
}
}  // namespace detail

namespace {

size_t auto_pq_M(int d, int pq_M) {
  ANNVIL_CHECK(d > 0, "d must be positive, got ", d);
  ANNVIL_CHECK(pq_M >= 0, "pq_M must be >= 0 (0: automatic), got ", pq_M);
  // 4 dimensions per sub-quantizer; one per dimension for small d, where a
  // coarser code would leave too few distinct estimates
  return pq_M > 0 ? size_t(pq_M) : d <= 16 ? size_t(d) : (size_t(d) + 3) / 4;
}

int check_R(int R) {
  ANNVIL_CHECK(R >= 4 && R % 2 == 0 && R <= 1024, "IndexQG: R (out-degree) must be even and in [4, 1024], got ", R);
  return R;
}

}  // namespace

IndexQG::IndexQG(int d_, int R_, int pq_M_, MetricType metric)
    : IndexHNSW(d_, check_R(R_) / 2, metric),
      R(R_),
      pq_M(auto_pq_M(d_, pq_M_)),
      dpad((size_t(d_) + pq_M - 1) / pq_M * pq_M),
      pq(dpad, pq_M, 4) {
  ANNVIL_CHECK(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
               "IndexQG supports METRIC_L2 and METRIC_INNER_PRODUCT only");
  ANNVIL_CHECK(pq_M <= size_t(d_) * 4 && pq_M <= 4096, "IndexQG: pq_M = ", pq_M, " is too large for d = ", d_);
  const size_t raw = ids_bytes() + ngroups() * pq4_block_bytes(pq_M);
  block_stride = (raw + 63) / 64 * 64;
  is_trained = false;
  hnsw.efSearch = 32;
}

void IndexQG::pad(idx_t n, const float* x, float* out) const {
  const size_t D = size_t(d);
  for (idx_t i = 0; i < n; ++i) {
    std::memcpy(out + size_t(i) * dpad, x + size_t(i) * D, sizeof(float) * D);
    std::fill(out + size_t(i) * dpad + D, out + size_t(i + 1) * dpad, 0.f);
  }
}

void IndexQG::train(idx_t n, const float* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative, got ", n);
  ANNVIL_CHECK(n >= 16, "IndexQG::train needs at least 16 vectors (the 4-bit codebooks have 16 entries), got ", n);
  std::vector<float> xp(size_t(n) * dpad);
  pad(n, x, xp.data());
  ProductQuantizer p(dpad, pq_M, 4);
  p.cp = pq.cp;
  p.train(n, xp.data());  // throws before anything changes
  pq = std::move(p);
  is_trained = true;
}

void IndexQG::query_lut(const float* x, float* lut, QuantizedLUT& qlut) const {
  std::vector<float> xp(dpad, 0.f);
  std::memcpy(xp.data(), x, sizeof(float) * size_t(d));
  if (metric_type == METRIC_INNER_PRODUCT) {
    pq.compute_inner_prod_table(xp.data(), lut);
    for (size_t i = 0; i < pq_M * 16; ++i) lut[i] = -lut[i];
  } else {
    pq.compute_distance_table(xp.data(), lut);
  }
  pq4_quantize_lut(lut, pq_M, qlut);
}

void IndexQG::add_slots(idx_t n, const float* x, idx_t* ids) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative, got ", n);
  check_trained();
  if (n == 0) return;
  const size_t cs = pq.code_size;
  // encode first: a failure leaves the index unchanged
  std::vector<uint8_t> c(size_t(n) * cs);
  {
    const idx_t chunk = 4096;
    std::vector<float> xp;
    for (idx_t i0 = 0; i0 < n; i0 += chunk) {
      idx_t ni = std::min(chunk, n - i0);
      xp.resize(size_t(ni) * dpad);
      pad(ni, x + size_t(i0) * d, xp.data());
      pq.compute_codes(ni, xp.data(), c.data() + size_t(i0) * cs);
    }
  }
  std::vector<idx_t> slots(static_cast<size_t>(n));
  const idx_t n0 = ntotal;
  const bool had_reuse = replace_deleted && n_deleted > 0;
  IndexHNSW::add_slots(n, x, slots.data());
  auto& cv = codes.mut();
  cv.resize(size_t(ntotal) * cs);
  for (idx_t i = 0; i < n; ++i) std::memcpy(cv.data() + size_t(slots[size_t(i)]) * cs, c.data() + size_t(i) * cs, cs);
  if (ids) std::copy(slots.begin(), slots.end(), ids);
  // a reused slot changes the code of a vertex that other blocks may hold
  rebuild_blocks(had_reuse, n0);
}

void IndexQG::rebuild_blocks(bool all, idx_t first_new) {
  const size_t N = size_t(ntotal), Rs = size_t(R), G = ngroups(), B = pq4_block_bytes(pq_M), cs = pq.code_size;
  const size_t M = pq_M;
  const size_t stride = block_stride;
  std::vector<uint8_t> nb;
  const bool fresh = all || blocks.size() != size_t(first_new) * stride || blocks.is_view();
  if (fresh) {
    nb.assign(N * stride, 0);
  } else {
    nb.swap(blocks.mut());
    nb.resize(N * stride, 0);
  }
  const int32_t* L0 = hnsw.links0.data();
  const uint8_t* C = codes.data();
  ParallelErrors perr;
#pragma omp parallel for schedule(dynamic, 256) if (N > 4096)
  for (int64_t v = 0; v < int64_t(N); ++v) ANNVIL_OMP_TRY(perr) {
      uint8_t* blk = nb.data() + size_t(v) * stride;
      int32_t* bid = reinterpret_cast<int32_t*>(blk);
      const int32_t* links = L0 + size_t(v) * Rs;
      if (!fresh && v < first_new && std::memcmp(bid, links, Rs * sizeof(int32_t)) == 0) continue;
      std::memcpy(bid, links, Rs * sizeof(int32_t));
      uint8_t* fs = blk + ids_bytes();
      std::memset(fs, 0, G * B);
      for (size_t g = 0; g < G; ++g) {
        uint8_t* b = fs + g * B;
        for (size_t j = 0; j < kPQ4BlockSize; ++j) {
          const size_t r = g * kPQ4BlockSize + j;
          if (r >= Rs || links[r] < 0) break;
          const uint8_t* code = C + size_t(links[r]) * cs;
          const size_t off = (j & 15), shift = j >= 16 ? 4 : 0;
          // sub-quantizer m of vector j: byte 32 (m / 2) + 16 (m % 2) + (j % 16), nibble j / 16
          for (size_t m = 0; m < M; ++m) {
            const uint8_t c = uint8_t((code[m >> 1] >> ((m & 1) * 4)) & 15);
            b[(m >> 1) * 32 + (m & 1) * 16 + off] |= uint8_t(c << shift);
          }
        }
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
  blocks.mut().swap(nb);
  if (N * stride >= (size_t(4) << 20)) hnsw_to_huge_pages(blocks);
}

void IndexQG::reference_block_sums(int32_t v, const uint8_t* lut_q, uint16_t* out) const {
  ANNVIL_CHECK(v >= 0 && v < ntotal, "vertex ", v, " out of range");
  const int32_t* links = hnsw.links(v, 0);
  for (int r = 0; r < R; ++r) {
    uint32_t s = 0;
    if (links[r] >= 0) {
      const uint8_t* code = codes.data() + size_t(links[r]) * pq.code_size;
      for (size_t m = 0; m < pq_M; ++m) s += lut_q[m * 16 + ((code[m >> 1] >> ((m & 1) * 4)) & 15)];
    }
    out[r] = uint16_t(s);
  }
}

size_t IndexQG::remove_ids(const IDSelector& sel) {
  size_t removed = IndexHNSW::remove_ids(sel);
  if (removed) rebuild_blocks(true, 0);
  return removed;
}

void IndexQG::compact_storage(const std::vector<idx_t>& keep) {
  IndexHNSW::compact_storage(keep);
  compact_rows(codes, pq.code_size, keep);
}

void IndexQG::reset() {
  IndexHNSW::reset();
  codes.clear();
  blocks.clear();
}

size_t IndexQG::memory_usage() const {
  auto bytes = [](const Storage<uint8_t>& s) { return s.is_view() ? s.size() : s.capacity_bytes(); };
  return IndexHNSW::memory_usage() + bytes(codes) + bytes(blocks) + pq.centroids.size() * sizeof(float);
}

// ---- search -------------------------------------------------------------------

namespace {

// The candidate list: up to cap (key, id) pairs sorted by key, an expanded
// flag in the id's top bit, and `cur`, the first position not yet expanded.
struct QGPool {
  std::vector<uint32_t> key;
  std::vector<uint32_t> id;
  size_t n = 0, cap = 0, cur = 0;
  static constexpr uint32_t kDone = 0x80000000u;

  void reset(size_t c) {
    cap = c;
    if (key.size() < c + 1) {
      key.resize(c + 1);
      id.resize(c + 1);
    }
    n = cur = 0;
  }
  bool full() const { return n == cap; }
  uint32_t worst() const { return key[n - 1]; }
  void insert(uint32_t k, uint32_t v) {
    // first position whose key is > k (equal keys keep arrival order)
    size_t lo = 0, hi = n;
    while (lo < hi) {
      size_t mid = (lo + hi) >> 1;
      if (key[mid] <= k)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo >= cap) return;
    size_t last = n < cap ? n : cap - 1;
    std::memmove(&key[lo + 1], &key[lo], (last - lo) * sizeof(uint32_t));
    std::memmove(&id[lo + 1], &id[lo], (last - lo) * sizeof(uint32_t));
    key[lo] = k;
    id[lo] = v;
    if (n < cap) ++n;
    if (lo < cur) cur = lo;
  }
  // the next vertex to expand (marks it; *pos receives its position), or -1
  int32_t pop(size_t* pos) {
    while (cur < n && (id[cur] & kDone)) ++cur;
    if (cur >= n) return -1;
    uint32_t v = id[cur];
    id[cur] |= kDone;
    *pos = cur++;
    return int32_t(v);
  }
  // give the entry at pos (expanded) a new key
  void rekey(size_t pos, uint32_t k) {
    const uint32_t v = id[pos];
    std::memmove(&key[pos], &key[pos + 1], (n - pos - 1) * sizeof(uint32_t));
    std::memmove(&id[pos], &id[pos + 1], (n - pos - 1) * sizeof(uint32_t));
    --n;
    if (cur > pos) --cur;
    insert(k, v);
  }
  // the vertex pop() would return next, without marking it
  int32_t peek() {
    while (cur < n && (id[cur] & kDone)) ++cur;
    return cur < n ? int32_t(id[cur]) : -1;
  }
};

struct QGScratch {
  HnswScratch::Visited visited;
  QGPool pool;
  std::vector<float> lut;
  QuantizedLUT qlut;
  std::vector<uint16_t> acc;
  std::vector<uint32_t> masks;
  std::vector<float> topk_d;
  std::vector<int64_t> topk_i;
};

QGScratch& qg_scratch() {
  static thread_local QGScratch s;
  return s;
}

inline void prefetch_range(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
}

}  // namespace

void IndexQG::search_graph(idx_t n, const float* x, idx_t k, int ef, bool filtered, const HnswAdmitFn& admit, float* D,
                           idx_t* I, HnswRangeCollect* rc) const {
  if (rc) {
    IndexHNSW::search_graph(n, x, k, ef, filtered, admit, D, I, rc);
    return;
  }
  const FlatSpace sp = space();
  const size_t Dd = size_t(d), G = ngroups(), M2 = pq4_M2(pq_M);
  const size_t vec_bytes = sp.row_bytes;
  const bool sim = is_similarity_metric(metric_type);
  const detail::QGScanFn scan = detail::qg_scan_fn();
  const size_t ncode_bytes = G * pq4_block_bytes(pq_M);
  const uint8_t* blk0 = blocks.data();
  const size_t stride = block_stride;
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    QGScratch& S = qg_scratch();
    HnswScratch& HS = hnsw_scratch();
#pragma omp for schedule(dynamic, 1)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        const float* xq = x + size_t(q) * Dd;
        S.lut.resize(pq_M * 16);
        S.acc.resize(G * kPQ4BlockSize);
        S.masks.resize(G);
        query_lut(xq, S.lut.data(), S.qlut);
        const uint8_t* lq = S.qlut.q.data();

        int32_t ep = hnsw.entry_point;
        float ep_d = sp.to_query(xq, ep);
        hnsw.descend(sp, xq, &ep, &ep_d, 0);

        S.visited.begin(size_t(ntotal));
        S.pool.reset(size_t(ef));
        S.topk_d.resize(size_t(k));
        S.topk_i.resize(size_t(k));
        TopK top{size_t(k), 0, S.topk_d.data(), S.topk_i.data()};
        S.visited.test_and_set(ep);
        S.pool.insert(0, uint32_t(ep));
        // Exact distances go into the pool in the estimates' uint16 domain,
        // acc = (dist - bias) * scale, so that expanded vertices are ranked by
        // their exact distance and bound the pool as in HNSW's result set.
        const float qscale = S.qlut.scale, qbias = S.qlut.bias;
        size_t pos = 0;
        int32_t v = S.pool.pop(&pos);
        prefetch_range(blk0 + size_t(v) * stride, stride);
        while (v >= 0) {
          // the next vertex's block and vector load while v is processed
          const int32_t nxt = S.pool.peek();
          if (nxt >= 0) {
            prefetch_range(blk0 + size_t(nxt) * stride, stride);
            prefetch_range(sp.row(nxt), vec_bytes);
          }
          const float dv = sp.to_query(xq, v);
          if (!filtered || admit(v)) top.push(dv, v);
          const float ka = (dv - qbias) * qscale;
          S.pool.rekey(pos, ka <= 0.f ? 0u : ka >= 65535.f ? 65535u : uint32_t(ka));
          const uint8_t* blk = blk0 + size_t(v) * stride;
          const int32_t* nid = reinterpret_cast<const int32_t*>(blk);
          const uint16_t tmax = S.pool.full() ? uint16_t(std::min<uint32_t>(S.pool.worst(), 0x10000) - 1) : 0xffff;
          size_t g_used = G;
          while (g_used > 1 && nid[(g_used - 1) * kPQ4BlockSize] < 0) --g_used;
          scan(blk + ids_bytes(), g_used, M2, lq, S.acc.data(), tmax, S.masks.data());
          for (size_t g = 0; g < g_used; ++g) {
            uint32_t m = S.masks[g];
            while (m) {
              const size_t j = size_t(__builtin_ctz(m));
              m &= m - 1;
              const int32_t u = nid[g * kPQ4BlockSize + j];
              if (u < 0) break;  // lists are -1 terminated
              if (S.visited.test_and_set(u)) continue;
              const uint32_t a = S.acc[g * kPQ4BlockSize + j];
              if (S.pool.full() && a >= S.pool.worst()) continue;
              S.pool.insert(a, uint32_t(u));
            }
          }
          v = S.pool.pop(&pos);
        }
        (void)ncode_bytes;
        (void)HS;
        top.sort();
        for (size_t j = 0; j < top.size; ++j) {
          D[size_t(q) * k + j] = sim ? -top.keys[j] : top.keys[j];
          I[size_t(q) * k + j] = top.ids[j];
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

// ---- index files ---------------------------------------------------------------
// Payload: IndexHNSW's (header, graph, vectors, deletes), then R (i32), pq_M
// (u64), the ProductQuantizer, codes (u8[ntotal * code_size]), blocks
// (u8[ntotal * block_stride], searched in place when memory-mapped).
void IndexQG::write_payload(Writer& w) const {
  IndexHNSW::write_payload(w);
  w.write<int32_t>(R);
  w.write<uint64_t>(pq_M);
  pq.write(w);
  w.write_storage(codes);
  w.write_storage(blocks);
}

namespace {
IndexPtr read_qg(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int32_t M = r.read<int32_t>();
  if (M < 2 || M > 512) r.corrupt("bad QG degree");
  if (h.ntotal >= idx_t(std::numeric_limits<int32_t>::max())) r.corrupt("bad QG ntotal");
  if (h.metric != METRIC_L2 && h.metric != METRIC_INNER_PRODUCT) r.corrupt("bad QG metric");
  // R and pq_M follow the HNSW part: read that into an index with the right
  // R first, then move it into one with the right pq_M
  if (h.d <= 0 || h.d > (1 << 20)) r.corrupt("bad QG d");
  auto idx = std::make_shared<IndexQG>(h.d, 2 * M, 1, h.metric);
  idx->metric_arg = h.metric_arg;
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  idx->read_payload_body(r);
  int32_t R = r.read<int32_t>();
  uint64_t pqM = r.read<uint64_t>();
  if (R != 2 * M || pqM == 0 || pqM > size_t(h.d) * 4 || pqM > 4096) r.corrupt("bad QG R / pq_M");
  // re-create with the right pq_M and move the HNSW part over
  auto out = std::make_shared<IndexQG>(h.d, R, int(pqM), h.metric);
  out->metric_arg = h.metric_arg;
  out->ntotal = h.ntotal;
  out->is_trained = h.is_trained;
  out->hnsw = std::move(idx->hnsw);
  out->xb = std::move(idx->xb);
  out->xh = std::move(idx->xh);
  out->deleted = std::move(idx->deleted);
  out->n_deleted = idx->n_deleted;
  out->replace_deleted = idx->replace_deleted;
  out->is_f16 = idx->is_f16;
  out->allow_f16 = idx->allow_f16;
  ProductQuantizer p = ProductQuantizer::read(r);
  if (p.d != out->dpad || p.M != out->pq_M || p.nbits != 4) r.corrupt("IndexQG quantizer shape does not match");
  out->pq = std::move(p);
  if (out->is_trained != out->pq.is_trained) r.corrupt("IndexQG trained flag does not match its quantizer");
  r.read_storage(out->codes);
  r.read_storage(out->blocks);
  const size_t N = size_t(out->ntotal);
  if (out->codes.size() != N * out->pq.code_size) r.corrupt("IndexQG codes do not match ntotal");
  if (out->blocks.size() != N * out->block_stride) r.corrupt("IndexQG blocks do not match ntotal");
  const int32_t* L0 = out->hnsw.links0.data();
  for (size_t v = 0; v < N; ++v)
    if (std::memcmp(out->blocks.data() + v * out->block_stride, L0 + v * size_t(R), out->ids_bytes()) != 0)
      r.corrupt("IndexQG block ids do not match the graph");
  if (!r.mapped() && N * out->block_stride >= (size_t(4) << 20)) hnsw_to_huge_pages(out->blocks);
  return out;
}
ANNVIL_REGISTER_INDEX("QG", read_qg);
}  // namespace

}  // namespace annvil
