// IndexScalarQuantizer: flat scan over SQ codes; batches decode blocks for the
// panel kernel.  (IndexIVFScalarQuantizer is in ivf/index_ivf_sq.cpp.)
#include "index_sq.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "distances/distances.h"
#include "core/topk.h"
#include "core/io.h"
#include "distances/knn.h"
#include "ivf/index_ivf.h"  // kMinParallelWork
#include "quant/sq_common.h"

namespace annvil {

// ---- IndexScalarQuantizer ------------------------------------------------------------------
IndexScalarQuantizer::IndexScalarQuantizer(int d_, int qtype, MetricType metric)
    : IndexFlatCodes(d_, metric, 0), sq(size_t(d_ > 0 ? d_ : 1), qtype) {
  code_size = sq.code_size;
  is_trained = !sq.needs_training();
}

void IndexScalarQuantizer::train(idx_t n, const float* x) {
  ANNVIL_CHECK(n > 0 || !sq.needs_training(), "training needs at least one vector");
  sq.train(size_t(n), x);
  is_trained = true;
}

void IndexScalarQuantizer::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                  const SearchParameters* params) const {
  check_k(k);
  check_trained();
  if (n <= 0) return;
  const IDSelector* sel = params ? params->sel : nullptr;
  const size_t cs = sq.code_size, nb = size_t(ntotal);
  TopKArray heaps{size_t(n), size_t(k)};
  const int nt = omp_get_max_threads();
  const size_t NR = size_t(kernels().panel_width);
  if (size_t(n) >= NR / 2 && nb > 0) {
    search_panels(n, x, k, D, I, sel);
    return;
  }
  if (n < nt && nb * size_t(d) > (1u << 18)) {
    // few queries: the codes are split among threads, heaps merged after
    std::vector<TopKArray> local(nt);
    ParallelErrors perr;
#pragma omp parallel num_threads(nt)
    {ANNVIL_OMP_TRY(perr){int t = omp_get_thread_num(), nth = omp_get_num_threads();
    TopKArray h{size_t(n), size_t(k)};
    SQDistanceComputer dc(sq, metric_type);
    std::vector<float> buf(kSQScanBlock);
    size_t b = nb * t / nth, e = nb * (t + 1) / nth;
    for (idx_t q = 0; q < n; ++q) {
      dc.set_query(x + size_t(q) * d);
      sq_scan_into_heap(dc, e - b, codes.data() + b * cs, cs, nullptr, idx_t(b), sel, h[size_t(q)], buf.data());
    }
    local[t] = std::move(h);
  }
  ANNVIL_OMP_CATCH(perr)
}
perr.rethrow();
for (auto& h : local) heaps.merge_from(h);
}  // namespace annvil
else {
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    SQDistanceComputer dc(sq, metric_type);
    std::vector<float> buf(kSQScanBlock);
#pragma omp for schedule(dynamic, 4)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        dc.set_query(x + size_t(q) * d);
        sq_scan_into_heap(dc, nb, codes.data(), cs, nullptr, 0, sel, heaps[size_t(q)], buf.data());
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}
heaps.finalize(metric_type, nullptr, D, I);
}

// Batches: blocks of codes are decoded to floats once and scanned by every
// panel of queries with the outer-product kernel (distances.h), so decoding
// is amortised over the batch and the kernel does NR queries per element
// loaded.  Threads split the codes, each with its own heaps, merged at the end.
void IndexScalarQuantizer::search_panels(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                         const IDSelector* sel) const {
  const Kernels& K = kernels();
  const size_t NR = size_t(K.panel_width), nq = size_t(n), nb = size_t(ntotal), cs = sq.code_size;
  const bool l2 = metric_type == METRIC_L2;
  const size_t npanels = (nq + NR - 1) / NR;
  const size_t BB = std::max<size_t>(48, (128 * 1024) / (sizeof(float) * size_t(d)));
  int nt = omp_get_max_threads();
  if (nq * nb * size_t(d) < kMinParallelWork) nt = 1;
  nt = std::max(1, std::min<int>(nt, int((nb + BB - 1) / BB)));
  std::vector<float> panels(npanels * size_t(d) * NR + 16);
  // 64-byte aligned start inside the buffer
  float* pan = panels.data();
  while (reinterpret_cast<uintptr_t>(pan) % 64) ++pan;
  for (size_t p = 0; p < npanels; ++p)
    pack_panel(x + p * NR * d, std::min(NR, nq - p * NR), size_t(d), int(NR), pan + p * size_t(d) * NR);
  TopKArray heaps{nq, size_t(k)};
  std::vector<TopKArray> local(size_t(nt > 1 ? nt : 0));
  ParallelErrors perr;
#pragma omp parallel num_threads(nt)
  {ANNVIL_OMP_TRY(perr){const int t = omp_get_thread_num();
  if (nt > 1) local[t] = TopKArray(nq, size_t(k));
  TopKArray& H = nt > 1 ? local[t] : heaps;
  std::vector<float> block(BB * size_t(d)), norms(BB);
  // sinks point at their own threshold arrays: never copied, so held by pointer
  std::vector<std::unique_ptr<TopKSink>> sinks;
  for (size_t p = 0; p < npanels; ++p) {
    sinks.push_back(std::make_unique<TopKSink>(int(NR)));
    sinks.back()->sel = sel;
  }
  const size_t nblocks = (nb + BB - 1) / BB;
  const size_t b0 = nblocks * t / nt, b1 = nblocks * (t + 1) / nt;
  for (size_t b = b0; b < b1; ++b) {
    const size_t r0 = b * BB, m = std::min(BB, nb - r0);
    sq.decode_fast(m, codes.data() + r0 * cs, cs, nullptr, block.data());
    if (l2) K.norms_sqr(block.data(), size_t(d), m, norms.data());
    for (size_t p = 0; p < npanels; ++p) {
      TopKSink& s = *sinks[p];
      for (size_t j = 0; j < NR; ++j) s.set(int(j), p * NR + j < nq ? &H[p * NR + j] : nullptr);
      K.scan_panel(pan + p * size_t(d) * NR, size_t(d), block.data(), m, l2 ? norms.data() : nullptr, l2 ? -2.f : -1.f,
                   int64_t(r0), &s);
    }
  }
}
ANNVIL_OMP_CATCH(perr)
}
perr.rethrow();
for (int t = 0; t < nt && nt > 1; ++t) heaps.merge_from(local[size_t(t)]);
std::vector<float> qn(l2 ? nq : 0);
if (l2) compute_norms(nq, x, size_t(d), qn.data());
heaps.finalize(metric_type, l2 ? qn.data() : nullptr, D, I);
if (!l2) return;
// |q|^2 + |x|^2 - 2<q, x> loses digits when the distance is small next to
// the norms: the k results of each query get their distance again from the
// code-domain computer (sum (a_i - b_i c_i)^2, no cancellation), and the
// row is re-sorted.
#pragma omp parallel if (nq * size_t(k) * size_t(d) > kMinParallelWork)
{
  SQDistanceComputer dc(sq, metric_type);
  std::vector<std::pair<float, idx_t>> row(static_cast<size_t>(k));
#pragma omp for schedule(static)
  for (int64_t q = 0; q < int64_t(nq); ++q) ANNVIL_OMP_TRY(perr) {
      dc.set_query(x + size_t(q) * d);
      float* Dq = D + size_t(q) * k;
      idx_t* Iq = I + size_t(q) * k;
      size_t m = 0;
      for (; m < size_t(k) && Iq[m] >= 0; ++m) row[m] = {dc.key(codes.data() + size_t(Iq[m]) * cs), Iq[m]};
      std::sort(row.begin(), row.begin() + std::ptrdiff_t(m));
      for (size_t j = 0; j < m; ++j) {
        Dq[j] = row[j].first;
        Iq[j] = row[j].second;
      }
    }
  ANNVIL_OMP_CATCH(perr)
}
perr.rethrow();
}

void IndexScalarQuantizer::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                                        const SearchParameters* params) const {
  check_trained();
  const IDSelector* sel = params ? params->sel : nullptr;
  const bool l2 = metric_type == METRIC_L2;
  const float key_radius = l2 ? radius : -radius;
  const size_t nq = size_t(std::max<idx_t>(n, 0));
  std::vector<std::vector<std::pair<float, idx_t>>> hits(nq);
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    SQDistanceComputer dc(sq, metric_type);
    std::vector<float> buf(kSQScanBlock);
#pragma omp for schedule(dynamic, 4)
    for (idx_t q = 0; q < idx_t(nq); ++q) ANNVIL_OMP_TRY(perr) {
        dc.set_query(x + size_t(q) * d);
        sq_scan_into_range(dc, size_t(ntotal), codes.data(), sq.code_size, nullptr, 0, sel, key_radius, hits[size_t(q)],
                           buf.data());
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  fill_range_result(hits, l2, result);
}

size_t IndexScalarQuantizer::memory_usage() const {
  return sizeof(*this) + codes.capacity_bytes() + sq.trained.capacity() * sizeof(float);
}

void IndexScalarQuantizer::write_payload(Writer& w) const {
  write_index_header(w, *this);
  write_sq_params(w, sq);
  w.write_storage(codes);
}

// ---- the codec: the SQ codes ---------------------------------------------------------
void IndexScalarQuantizer::encode_vectors(idx_t n, const float* x, uint8_t* out) const {
  ParallelErrors perr;
#pragma omp parallel for schedule(static) if (n > 4096)
  for (idx_t i0 = 0; i0 < n; i0 += 1024) ANNVIL_OMP_TRY(perr) {
      size_t m = std::min<size_t>(1024, size_t(n - i0));
      sq.compute_codes(x + size_t(i0) * d, out + size_t(i0) * code_size, m);
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void IndexScalarQuantizer::decode_vectors(idx_t n, const uint8_t* c, float* x) const { sq.decode(c, x, size_t(n)); }

void IndexScalarQuantizer::check_compatible_for_merge(const Index& other) const {
  IndexFlatCodes::check_compatible_for_merge(other);
  auto* o = dynamic_cast<const IndexScalarQuantizer*>(&other);
  ANNVIL_CHECK(o != nullptr && o->sq.qtype == sq.qtype && o->sq.code_size == sq.code_size,
               "cannot merge scalar quantizer indexes of different quantizer types");
  ANNVIL_CHECK(o->sq.trained == sq.trained,
               "cannot merge scalar quantizer indexes trained differently: their codes decode differently "
               "(train one index and clone it)");
}

// ---- readers ---------------------------------------------------------------------------------
namespace {

IndexPtr read_sq(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int qt = read_sq_qtype(r);
  auto idx = std::make_shared<IndexScalarQuantizer>(h.d, qt, h.metric);
  read_sq_trained(r, idx->sq, h.is_trained);
  r.read_storage(idx->codes);
  if (idx->codes.size() != size_t(h.ntotal) * idx->sq.code_size) r.corrupt("SQ code storage does not match ntotal");
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  return idx;
}

ANNVIL_REGISTER_INDEX("SQ", read_sq);

}  // namespace

}  // namespace annvil
