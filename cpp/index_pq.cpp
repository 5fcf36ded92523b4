#include "index_pq.h"
#include "core/parallel.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/topk.h"
#include "core/io.h"
#include "quant/pq_fastscan.h"

namespace annvil {

void pq_finalize_row(TopK& h, size_t k, MetricType metric, float* D, idx_t* I) {
  h.sort();
  const bool l2 = metric == METRIC_L2;
  const float pad = l2 ? missing_result_distance(METRIC_L2) : missing_result_distance(METRIC_INNER_PRODUCT);
  // h.keys / h.ids may alias D / I: write the valid part in place first
  for (size_t i = 0; i < h.size; ++i) {
    float key = h.keys[i];
    idx_t id = h.ids[i];
    D[i] = l2 ? key : -key;
    I[i] = id;
  }
  for (size_t i = h.size; i < k; ++i) {
    D[i] = pad;
    I[i] = -1;
  }
}

namespace {

// Scan codes [0, n) against a table of M * ksub keys (smaller = better).
// The nbits = 8 path reads one byte per sub-quantizer with four independent
// sums so the loads overlap; other widths decode the bit stream.
void scan_adc(const ProductQuantizer& pq, const uint8_t* codes, size_t n, const float* table, TopK& heap,
              const IDSelector* sel, size_t id0 = 0) {
  const size_t M = pq.M, ksub = pq.ksub, cs = pq.code_size;
  constexpr size_t kBatch = 256;
  float dis[kBatch];
  for (size_t i0 = 0; i0 < n; i0 += kBatch) {
    size_t nb = std::min(kBatch, n - i0);
    if (pq.nbits == 8) {
      // Loads are the bottleneck: fetch 8 code bytes with one load and pull
      // the bytes out with shifts, so the load ports serve only table reads.
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* c = codes + (i0 + b) * cs;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t m = 0;
        for (; m + 8 <= M; m += 8) {
          uint64_t w;
          std::memcpy(&w, c + m, 8);
          const float* t = table + m * 256;
          s0 += t[w & 255];
          s1 += t[256 + ((w >> 8) & 255)];
          s2 += t[512 + ((w >> 16) & 255)];
          s3 += t[768 + ((w >> 24) & 255)];
          s0 += t[1024 + ((w >> 32) & 255)];
          s1 += t[1280 + ((w >> 40) & 255)];
          s2 += t[1536 + ((w >> 48) & 255)];
          s3 += t[1792 + (w >> 56)];
        }
        for (; m < M; ++m) s0 += table[m * 256 + c[m]];
        dis[b] = (s0 + s1) + (s2 + s3);
      }
    } else {
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* c = codes + (i0 + b) * cs;
        float s = 0;
        for (size_t m = 0; m < M; ++m) s += table[m * ksub + ProductQuantizer::read_index(c, m, pq.nbits)];
        dis[b] = s;
      }
    }
    float thr = heap.threshold();
    for (size_t b = 0; b < nb; ++b) {
      if (dis[b] > thr) continue;  // equal keys may still win on a smaller id
      idx_t id = idx_t(id0 + i0 + b);
      if (sel && !sel->is_member(id)) continue;
      heap.push(dis[b], id);
      thr = heap.threshold();
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- IndexPQ
IndexPQ::IndexPQ(int d_, size_t M, size_t nbits, MetricType metric) : Index(d_, metric), pq(size_t(d_), M, nbits) {
  is_trained = false;
}

void IndexPQ::train(idx_t n, const float* x) {
  pq.train(n, x);
  is_trained = true;
}

void IndexPQ::add(idx_t n, const float* x) {
  check_trained();
  if (n <= 0) return;
  std::vector<uint8_t> c(size_t(n) * pq.code_size);
  pq.compute_codes(n, x, c.data());
  auto& v = codes.mut();
  v.insert(v.end(), c.begin(), c.end());
  ntotal += n;
}

void IndexPQ::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_trained();
  check_k(k);
  const IDSelector* sel = params ? params->sel : nullptr;
  const size_t tsize = pq.M * pq.ksub;
  // Queries go in small batches that share each chunk of codes while it is
  // in cache (about 64 KiB of codes; the tables of a batch stay in L2).
  const idx_t batch = tsize <= 16384 ? 4 : 1;
  const size_t chunk = std::max<size_t>(64, (64 * 1024) / pq.code_size);
  const idx_t nbatch = (n + batch - 1) / batch;
  ParallelErrors perr;
#pragma omp parallel if (nbatch > 1)
  {
    std::vector<float> tables(tsize * size_t(batch));
    std::vector<TopK> heaps(static_cast<size_t>(batch));
#pragma omp for schedule(dynamic, 1)
    for (idx_t bi = 0; bi < nbatch; ++bi) ANNVIL_OMP_TRY(perr) {
      const idx_t q0 = bi * batch, nqb = std::min(batch, n - q0);
      for (idx_t j = 0; j < nqb; ++j) {
        const float* xq = x + size_t(q0 + j) * d;
        float* table = tables.data() + size_t(j) * tsize;
        if (metric_type == METRIC_L2) {
          pq.compute_distance_table(xq, table);
        } else {
          pq.compute_inner_prod_table(xq, table);
          for (size_t t = 0; t < tsize; ++t) table[t] = -table[t];
        }
        TopK& h = heaps[size_t(j)];
        h.k = size_t(k);
        h.size = 0;
        h.keys = D + size_t(q0 + j) * k;
        h.ids = I + size_t(q0 + j) * k;
      }
      for (size_t c0 = 0; c0 < size_t(ntotal); c0 += chunk) {
        size_t nc = std::min(chunk, size_t(ntotal) - c0);
        for (idx_t j = 0; j < nqb; ++j)
          scan_adc(pq, codes.data() + c0 * pq.code_size, nc, tables.data() + size_t(j) * tsize, heaps[size_t(j)],
                   sel, c0);
      }
      for (idx_t j = 0; j < nqb; ++j)
        pq_finalize_row(heaps[size_t(j)], size_t(k), metric_type, D + size_t(q0 + j) * k, I + size_t(q0 + j) * k);
    } ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

void IndexPQ::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                           const SearchParameters* params) const {
  check_trained();
  const IDSelector* sel = params ? params->sel : nullptr;
  const size_t tsize = pq.M * pq.ksub, cs = pq.code_size, N = size_t(ntotal);
  const bool l2 = metric_type == METRIC_L2;
  std::vector<std::vector<std::pair<float, idx_t>>> hits(static_cast<size_t>(n));
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    std::vector<float> table(tsize);
#pragma omp for schedule(dynamic, 1)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
      const float* xq = x + size_t(q) * d;
      if (l2)
        pq.compute_distance_table(xq, table.data());
      else
        pq.compute_inner_prod_table(xq, table.data());
      auto& out = hits[size_t(q)];
      for (size_t i = 0; i < N; ++i) {
        const uint8_t* c = codes.data() + i * cs;
        float s = 0;
        if (pq.nbits == 8)
          for (size_t m = 0; m < pq.M; ++m) s += table[m * 256 + c[m]];
        else
          for (size_t m = 0; m < pq.M; ++m) s += table[m * pq.ksub + ProductQuantizer::read_index(c, m, pq.nbits)];
        if (l2 ? !(s < radius) : !(s > radius)) continue;
        if (sel && !sel->is_member(idx_t(i))) continue;
        out.emplace_back(s, idx_t(i));
      }
    } ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  result->nq = size_t(n);
  result->lims.assign(size_t(n) + 1, 0);
  for (idx_t q = 0; q < n; ++q) result->lims[size_t(q) + 1] = result->lims[size_t(q)] + hits[size_t(q)].size();
  result->distances.resize(result->lims.back());
  result->labels.resize(result->lims.back());
  for (idx_t q = 0; q < n; ++q) {
    size_t o = result->lims[size_t(q)];
    for (auto& h : hits[size_t(q)]) {
      result->distances[o] = h.first;
      result->labels[o++] = h.second;
    }
  }
}

void IndexPQ::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "id ", key, " out of range [0, ", ntotal, ")");
  pq.decode(1, codes.data() + size_t(key) * pq.code_size, out);
}

void IndexPQ::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  pq.decode(ni, codes.data() + size_t(i0) * pq.code_size, out);
}

size_t IndexPQ::remove_ids(const IDSelector& sel) {
  const size_t cs = pq.code_size;
  std::vector<uint8_t> kept;
  kept.reserve(size_t(ntotal) * cs);
  const uint8_t* src = codes.data();
  idx_t j = 0;
  for (idx_t i = 0; i < ntotal; ++i) {
    if (sel.is_member(i)) continue;
    kept.insert(kept.end(), src + size_t(i) * cs, src + size_t(i + 1) * cs);
    ++j;
  }
  size_t removed = size_t(ntotal - j);
  if (removed == 0) return 0;
  codes.mut().swap(kept);
  ntotal = j;
  return removed;
}

void IndexPQ::reset() {
  codes.clear();
  ntotal = 0;
}

size_t IndexPQ::memory_usage() const {
  return sizeof(*this) + codes.capacity_bytes() + pq.centroids.capacity() * sizeof(float);
}

void IndexPQ::write_payload(Writer& w) const {
  write_index_header(w, *this);
  pq.write(w);
  w.write_storage(codes);
}

// ---------------------------------------------------------------- fast-scan
IndexPQFastScan::IndexPQFastScan(int d_, size_t M, size_t nbits, MetricType metric, size_t bbs_)
    : Index(d_, metric), pq(size_t(d_), M, nbits), bbs(bbs_) {
  ANNVIL_CHECK(nbits == 4, "IndexPQFastScan only supports nbits=4, got ", nbits, " (use IndexPQ for other widths)");
  ANNVIL_CHECK(bbs_ > 0 && bbs_ % kBlockSize == 0, "IndexPQFastScan bbs must be a positive multiple of 32, got ", bbs_);
  is_trained = false;
}

IndexPQFastScan::IndexPQFastScan(const IndexPQ& orig, size_t bbs_)
    : IndexPQFastScan(orig.d, orig.pq.M, orig.pq.nbits, orig.metric_type, bbs_) {
  pq = orig.pq;
  is_trained = orig.is_trained;
  if (orig.ntotal > 0) {
    auto& v = codes.mut();
    v.assign(pq4_codes_bytes(size_t(orig.ntotal), pq.M, bbs), 0);
    pq4_pack_codes(orig.codes.data(), size_t(orig.ntotal), pq.M, v.data());
    ntotal = orig.ntotal;
  }
}

void IndexPQFastScan::train(idx_t n, const float* x) {
  pq.train(n, x);
  is_trained = true;
}

void IndexPQFastScan::add_indices(idx_t n, const uint8_t* idx) {
  auto& v = codes.mut();
  v.resize(pq4_codes_bytes(size_t(ntotal + n), pq.M, bbs), 0);
  pq4_pack_indices(idx, size_t(n), pq.M, size_t(ntotal), v.data());
  ntotal += n;
}

void IndexPQFastScan::add(idx_t n, const float* x) {
  check_trained();
  if (n <= 0) return;
  std::vector<uint16_t> idx16(size_t(n) * pq.M);
  pq.compute_code_indices(n, x, idx16.data());
  std::vector<uint8_t> idx(idx16.begin(), idx16.end());
  add_indices(n, idx.data());
}

void IndexPQFastScan::compute_float_lut(const float* x, float* lut) const {
  if (metric_type == METRIC_L2) {
    pq.compute_distance_table(x, lut);
  } else {
    pq.compute_inner_prod_table(x, lut);
    for (size_t i = 0; i < pq.M * pq.ksub; ++i) lut[i] = -lut[i];
  }
}

void IndexPQFastScan::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                             const SearchParameters* params) const {
  check_trained();
  check_k(k);
  const IDSelector* sel = params ? params->sel : nullptr;
  ANNVIL_CHECK(implem == 0 || (implem >= 1 && implem <= 4) || (implem >= 12 && implem <= 15),
               "IndexPQFastScan implem ", implem, " does not exist (0: auto, 1-4: reference scans, 12-15: SIMD)");
  if (implem >= 1 && implem <= 4) {
    search_reference(n, x, k, D, I, sel);
    return;
  }
  // queries go in batches that share each chunk of codes (see pq4_scan_multi)
  constexpr idx_t kBatch = 8;
  const idx_t nbatch = (n + kBatch - 1) / kBatch;
  ParallelErrors perr;
#pragma omp parallel if (nbatch > 1)
  {
    std::vector<float> lut(pq.M * pq.ksub);
    std::vector<QuantizedLUT> qluts(kBatch);
    std::vector<PQ4Reservoir> res(kBatch);
    std::vector<uint32_t> sums(static_cast<size_t>(k));
#pragma omp for schedule(dynamic, 1)
    for (idx_t bi = 0; bi < nbatch; ++bi) ANNVIL_OMP_TRY(perr) {
      const idx_t q0 = bi * kBatch, nqb = std::min(kBatch, n - q0);
      const uint8_t* lut_ptrs[kBatch];
      uint32_t thr[kBatch];
      for (idx_t j = 0; j < nqb; ++j) {
        compute_float_lut(x + size_t(q0 + j) * d, lut.data());
        pq4_quantize_lut(lut.data(), pq.M, qluts[size_t(j)]);
        lut_ptrs[j] = qluts[size_t(j)].q.data();
        res[size_t(j)].reset(size_t(k));
        thr[j] = res[size_t(j)].threshold;
      }
      pq4_scan_multi(codes.data(), size_t(ntotal), pq.M, size_t(nqb), lut_ptrs, thr,
                     [&](size_t j, uint32_t acc, size_t i) {
                       if (sel && !sel->is_member(idx_t(i))) return;
                       res[j].push(acc, idx_t(i));
                       thr[j] = res[j].threshold;
                     });
      const bool l2 = metric_type == METRIC_L2;
      for (idx_t j = 0; j < nqb; ++j) {
        float* Dq = D + size_t(q0 + j) * k;
        idx_t* Iq = I + size_t(q0 + j) * k;
        size_t got = res[size_t(j)].finish(sums.data(), Iq);
        for (size_t i = 0; i < got; ++i) {
          float v = qluts[size_t(j)].to_float(sums[i]);  // back to float distances
          Dq[i] = l2 ? v : -v;
        }
        for (size_t i = got; i < size_t(k); ++i) {
          Dq[i] = l2 ? missing_result_distance(METRIC_L2) : missing_result_distance(METRIC_INNER_PRODUCT);
          Iq[i] = -1;
        }
      }
    } ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

void IndexPQFastScan::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "id ", key, " out of range [0, ", ntotal, ")");
  std::vector<uint8_t> c(pq.code_size);
  pq4_unpack_codes(codes.data(), pq.M, size_t(key), 1, c.data());
  pq.decode(1, c.data(), out);
}

size_t IndexPQFastScan::remove_ids(const IDSelector& sel) {
  const size_t M = pq.M;
  std::vector<uint8_t> idx;
  idx.reserve(size_t(ntotal) * M);
  idx_t j = 0;
  for (idx_t i = 0; i < ntotal; ++i) {
    if (sel.is_member(i)) continue;
    for (size_t m = 0; m < M; ++m) idx.push_back(pq4_get_packed_element(codes.data(), M, size_t(i), m));
    ++j;
  }
  size_t removed = size_t(ntotal - j);
  if (removed == 0) return 0;
  codes.clear();
  ntotal = 0;
  add_indices(j, idx.data());
  return removed;
}

void IndexPQFastScan::reset() {
  codes.clear();
  ntotal = 0;
}

size_t IndexPQFastScan::memory_usage() const {
  return sizeof(*this) + codes.capacity_bytes() + pq.centroids.capacity() * sizeof(float);
}

void IndexPQFastScan::write_payload(Writer& w) const {
  write_index_header(w, *this);
  pq.write(w);
  w.write<uint64_t>(bbs);
  w.write<int32_t>(implem);
  w.write<int32_t>(qbs);
  w.write_storage(codes);
}

// ---- standalone codes and merging ------------------------------------------------------
namespace {
void check_same_pq(const ProductQuantizer& a, const ProductQuantizer& b) {
  ANNVIL_CHECK(a.M == b.M && a.nbits == b.nbits && a.code_size == b.code_size,
               "cannot merge PQ indexes with different M or nbits");
  ANNVIL_CHECK(a.centroids == b.centroids,
               "cannot merge PQ indexes trained differently: their codes decode differently "
               "(train one index and clone it)");
}
}  // namespace

size_t IndexPQ::sa_code_size() const { return pq.code_size; }

void IndexPQ::sa_encode(idx_t n, const float* x, uint8_t* out) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n) pq.compute_codes(n, x, out);
}

void IndexPQ::sa_decode(idx_t n, const uint8_t* c, float* x) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n) pq.decode(n, c, x);
}

void IndexPQ::add_sa_codes(idx_t n, const uint8_t* c, const idx_t*) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  auto& v = codes.mut();
  v.insert(v.end(), c, c + size_t(n) * pq.code_size);
  ntotal += n;
}

void IndexPQ::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  auto* o = dynamic_cast<const IndexPQ*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  check_same_pq(pq, o->pq);
}

void IndexPQ::merge_from(Index& other, idx_t add_id) {
  ANNVIL_CHECK(add_id == 0, "merge_from: add_id must be 0 for ", type_tag(), " (its ids are positions)");
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexPQ&>(other);
  auto& v = codes.mut();
  v.insert(v.end(), o.codes.data(), o.codes.data() + o.codes.size());
  ntotal += o.ntotal;
  o.reset();
}

size_t IndexPQFastScan::sa_code_size() const { return pq.code_size; }

void IndexPQFastScan::sa_encode(idx_t n, const float* x, uint8_t* out) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n) pq.compute_codes(n, x, out);
}

void IndexPQFastScan::sa_decode(idx_t n, const uint8_t* c, float* x) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n) pq.decode(n, c, x);
}

void IndexPQFastScan::add_sa_codes(idx_t n, const uint8_t* c, const idx_t*) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n == 0) return;
  const size_t M = pq.M;
  std::vector<uint8_t> idx(size_t(n) * M);
  for (idx_t i = 0; i < n; ++i)
    for (size_t m = 0; m < M; ++m)
      idx[size_t(i) * M + m] = uint8_t(ProductQuantizer::read_index(c + size_t(i) * pq.code_size, m, pq.nbits));
  add_indices(n, idx.data());
}

void IndexPQFastScan::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  auto* o = dynamic_cast<const IndexPQFastScan*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  check_same_pq(pq, o->pq);
}

void IndexPQFastScan::merge_from(Index& other, idx_t) {
  // add_id is accepted and ignored, as in Faiss: the ids are positions
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexPQFastScan&>(other);
  const size_t M = pq.M;
  std::vector<uint8_t> idx(size_t(o.ntotal) * M);
  for (idx_t i = 0; i < o.ntotal; ++i)
    for (size_t m = 0; m < M; ++m) idx[size_t(i) * M + m] = pq4_get_packed_element(o.codes.data(), M, size_t(i), m);
  add_indices(o.ntotal, idx.data());
  o.reset();
}

// ---------------------------------------------------------------- io
namespace {
IndexPtr read_pq(Reader& r) {
  IndexHeader h = read_header_fields(r);
  ProductQuantizer pq = ProductQuantizer::read(r);
  if (pq.d != size_t(h.d)) r.corrupt("PQ dimension differs from the index");
  auto idx = std::make_shared<IndexPQ>(h.d, pq.M, pq.nbits, h.metric);
  idx->pq = std::move(pq);
  r.read_storage(idx->codes);
  if (idx->codes.size() != size_t(h.ntotal) * idx->pq.code_size) r.corrupt("PQ code array size does not match ntotal");
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  return idx;
}
IndexPtr read_pq_fastscan(Reader& r) {
  IndexHeader h = read_header_fields(r);
  ProductQuantizer pq = ProductQuantizer::read(r);
  if (pq.d != size_t(h.d) || pq.nbits != 4) r.corrupt("bad PQ of a fast-scan index");
  uint64_t bbs = r.read<uint64_t>();
  if (bbs == 0 || bbs % IndexPQFastScan::kBlockSize != 0 || bbs > (uint64_t(1) << 20))
    r.corrupt("unsupported fast-scan block size");
  const int32_t implem = r.read<int32_t>(), qbs = r.read<int32_t>();
  auto idx = std::make_shared<IndexPQFastScan>(h.d, pq.M, 4, h.metric, bbs);
  idx->pq = std::move(pq);
  idx->implem = implem;
  idx->qbs = qbs;
  r.read_storage(idx->codes);
  if (idx->codes.size() != pq4_codes_bytes(size_t(h.ntotal), idx->pq.M, size_t(bbs)))
    r.corrupt("fast-scan code array size does not match ntotal");
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  return idx;
}
ANNVIL_REGISTER_INDEX("PQ", read_pq);
ANNVIL_REGISTER_INDEX("PQFastScan", read_pq_fastscan);
}  // namespace

}  // namespace annvil
