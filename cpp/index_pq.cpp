#include "index_pq.h"
#include "core/parallel.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/topk.h"
#include "core/io.h"

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
IndexPQ::IndexPQ(int d_, size_t M, size_t nbits, MetricType metric)
    : IndexFlatCodes(d_, metric, 0), pq(size_t(d_), M, nbits) {
  code_size = pq.code_size;
  is_trained = false;
}

void IndexPQ::train(idx_t n, const float* x) {
  pq.train(n, x);
  is_trained = true;
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
            scan_adc(pq, codes.data() + c0 * pq.code_size, nc, tables.data() + size_t(j) * tsize, heaps[size_t(j)], sel,
                     c0);
        }
        for (idx_t j = 0; j < nqb; ++j)
          pq_finalize_row(heaps[size_t(j)], size_t(k), metric_type, D + size_t(q0 + j) * k, I + size_t(q0 + j) * k);
      }
    ANNVIL_OMP_CATCH(perr)
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
      }
    ANNVIL_OMP_CATCH(perr)
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

void IndexPQ::encode_vectors(idx_t n, const float* x, uint8_t* out) const { pq.compute_codes(n, x, out); }

void IndexPQ::decode_vectors(idx_t n, const uint8_t* in, float* x) const { pq.decode(n, in, x); }

size_t IndexPQ::memory_usage() const {
  return sizeof(*this) + codes.capacity_bytes() + pq.centroids.capacity() * sizeof(float);
}

void IndexPQ::write_payload(Writer& w) const {
  write_index_header(w, *this);
  pq.write(w);
  w.write_storage(codes);
}

// ---- merging ------------------------------------------------------------------------
void check_same_pq(const ProductQuantizer& a, const ProductQuantizer& b) {
  ANNVIL_CHECK(a.M == b.M && a.nbits == b.nbits && a.code_size == b.code_size,
               "cannot merge PQ indexes with different M or nbits");
  ANNVIL_CHECK(a.centroids == b.centroids,
               "cannot merge PQ indexes trained differently: their codes decode differently "
               "(train one index and clone it)");
}

void IndexPQ::check_compatible_for_merge(const Index& other) const {
  IndexFlatCodes::check_compatible_for_merge(other);
  auto* o = dynamic_cast<const IndexPQ*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  check_same_pq(pq, o->pq);
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
ANNVIL_REGISTER_INDEX("PQ", read_pq);
}  // namespace

}  // namespace annvil
