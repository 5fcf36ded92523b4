// IndexScalarQuantizer (flat scan over SQ codes; batches decode blocks for the
// panel kernel) and IndexIVFScalarQuantizer (IVF codec, scanner, io).
#include "index_sq.h"
#include "core/code_rows.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "distances/distances.h"
#include "core/topk.h"
#include "core/io.h"
#include "distances/knn.h"

namespace annvil {

namespace {

constexpr size_t kBlock = 256;

// keys of n codes, pushed into a heap (ids = id0 + i, or ids[i])
void scan_into_heap(const SQDistanceComputer& dc, size_t n, const uint8_t* codes, size_t cs, const idx_t* ids,
                    idx_t id0, const IDSelector* sel, TopK& heap, float* buf) {
  float thr = heap.threshold();
  for (size_t i0 = 0; i0 < n; i0 += kBlock) {
    size_t m = std::min(kBlock, n - i0);
    dc.keys(m, codes + i0 * cs, cs, buf);
    for (size_t i = 0; i < m; ++i)
      if (buf[i] < thr) {
        idx_t id = ids ? ids[i0 + i] : id0 + idx_t(i0 + i);
        if (sel && !sel->is_member(id)) continue;
        heap.push(buf[i], id);
        thr = heap.threshold();
      }
  }
}

void scan_into_range(const SQDistanceComputer& dc, size_t n, const uint8_t* codes, size_t cs, const idx_t* ids,
                     idx_t id0, const IDSelector* sel, float key_radius, std::vector<std::pair<float, idx_t>>& out,
                     float* buf) {
  for (size_t i0 = 0; i0 < n; i0 += kBlock) {
    size_t m = std::min(kBlock, n - i0);
    dc.keys(m, codes + i0 * cs, cs, buf);
    for (size_t i = 0; i < m; ++i)
      if (buf[i] < key_radius) {
        idx_t id = ids ? ids[i0 + i] : id0 + idx_t(i0 + i);
        if (sel && !sel->is_member(id)) continue;
        out.emplace_back(buf[i], id);
      }
  }
}

}  // namespace

// ---- IndexScalarQuantizer ------------------------------------------------------------------
IndexScalarQuantizer::IndexScalarQuantizer(int d_, int qtype, MetricType metric)
    : Index(d_, metric), sq(size_t(d_ > 0 ? d_ : 1), qtype) {
  is_trained = !sq.needs_training();
}

void IndexScalarQuantizer::train(idx_t n, const float* x) {
  ANNVIL_CHECK(n > 0 || !sq.needs_training(), "training needs at least one vector");
  sq.train(size_t(n), x);
  is_trained = true;
}

void IndexScalarQuantizer::add(idx_t n, const float* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n == 0) return;
  std::vector<uint8_t> c(size_t(n) * sq.code_size);
  ParallelErrors perr;
#pragma omp parallel for schedule(static) if (n > 4096)
  for (idx_t i0 = 0; i0 < n; i0 += 1024) ANNVIL_OMP_TRY(perr) {
    size_t m = std::min<size_t>(1024, size_t(n - i0));
    sq.compute_codes(x + size_t(i0) * d, c.data() + size_t(i0) * sq.code_size, m);
  } ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
  auto& v = codes.mut();
  v.insert(v.end(), c.begin(), c.end());
  ntotal += n;
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
    { ANNVIL_OMP_TRY(perr) {
      int t = omp_get_thread_num(), nth = omp_get_num_threads();
      TopKArray h{size_t(n), size_t(k)};
      SQDistanceComputer dc(sq, metric_type);
      std::vector<float> buf(kBlock);
      size_t b = nb * t / nth, e = nb * (t + 1) / nth;
      for (idx_t q = 0; q < n; ++q) {
        dc.set_query(x + size_t(q) * d);
        scan_into_heap(dc, e - b, codes.data() + b * cs, cs, nullptr, idx_t(b), sel, h[size_t(q)], buf.data());
      }
      local[t] = std::move(h);
    } ANNVIL_OMP_CATCH(perr)
    }
    perr.rethrow();
    for (auto& h : local) heaps.merge_from(h);
  } else {
    ParallelErrors perr;
#pragma omp parallel if (n > 1)
    {
      SQDistanceComputer dc(sq, metric_type);
      std::vector<float> buf(kBlock);
#pragma omp for schedule(dynamic, 4)
      for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        dc.set_query(x + size_t(q) * d);
        scan_into_heap(dc, nb, codes.data(), cs, nullptr, 0, sel, heaps[size_t(q)], buf.data());
      } ANNVIL_OMP_CATCH(perr)
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
  { ANNVIL_OMP_TRY(perr) {
    const int t = omp_get_thread_num();
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
        K.scan_panel(pan + p * size_t(d) * NR, size_t(d), block.data(), m, l2 ? norms.data() : nullptr,
                     l2 ? -2.f : -1.f, int64_t(r0), &s);
      }
    }
  } ANNVIL_OMP_CATCH(perr)
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
    } ANNVIL_OMP_CATCH(perr)
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
    std::vector<float> buf(kBlock);
#pragma omp for schedule(dynamic, 4)
    for (idx_t q = 0; q < idx_t(nq); ++q) ANNVIL_OMP_TRY(perr) {
      dc.set_query(x + size_t(q) * d);
      scan_into_range(dc, size_t(ntotal), codes.data(), sq.code_size, nullptr, 0, sel, key_radius,
                      hits[size_t(q)], buf.data());
    } ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  fill_range_result(hits, l2, result);
}

void IndexScalarQuantizer::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "id ", key, " out of range [0, ", ntotal, ")");
  sq.decode(codes.data() + size_t(key) * sq.code_size, out, 1);
}

void IndexScalarQuantizer::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  sq.decode(codes.data() + size_t(i0) * sq.code_size, out, size_t(ni));
}

size_t IndexScalarQuantizer::remove_ids(const IDSelector& sel) {
  return remove_code_rows(codes, ntotal, sq.code_size, sel);
}

void IndexScalarQuantizer::reset() {
  codes.clear();
  ntotal = 0;
}

size_t IndexScalarQuantizer::memory_usage() const {
  return sizeof(*this) + codes.capacity_bytes() + sq.trained.capacity() * sizeof(float);
}

void IndexScalarQuantizer::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write<int32_t>(sq.qtype);
  w.write_vector(sq.trained);
  w.write_storage(codes);
}

// ---- standalone codes: the SQ codes ---------------------------------------------------
size_t IndexScalarQuantizer::sa_code_size() const { return sq.code_size; }

void IndexScalarQuantizer::sa_encode(idx_t n, const float* x, uint8_t* out) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  ParallelErrors perr;
#pragma omp parallel for schedule(static) if (n > 4096)
  for (idx_t i0 = 0; i0 < n; i0 += 1024) ANNVIL_OMP_TRY(perr) {
    size_t m = std::min<size_t>(1024, size_t(n - i0));
    sq.compute_codes(x + size_t(i0) * d, out + size_t(i0) * sq.code_size, m);
  } ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void IndexScalarQuantizer::sa_decode(idx_t n, const uint8_t* c, float* x) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n) sq.decode(c, x, size_t(n));
}

void IndexScalarQuantizer::add_sa_codes(idx_t n, const uint8_t* c, const idx_t*) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  auto& v = codes.mut();
  v.insert(v.end(), c, c + size_t(n) * sq.code_size);
  ntotal += n;
}

void IndexScalarQuantizer::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  auto* o = dynamic_cast<const IndexScalarQuantizer*>(&other);
  ANNVIL_CHECK(o != nullptr && o->sq.qtype == sq.qtype && o->sq.code_size == sq.code_size,
               "cannot merge scalar quantizer indexes of different quantizer types");
  ANNVIL_CHECK(o->sq.trained == sq.trained,
               "cannot merge scalar quantizer indexes trained differently: their codes decode differently "
               "(train one index and clone it)");
}

void IndexScalarQuantizer::merge_from(Index& other, idx_t add_id) {
  ANNVIL_CHECK(add_id == 0, "merge_from: add_id must be 0 for ", type_tag(), " (its ids are positions)");
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexScalarQuantizer&>(other);
  auto& v = codes.mut();
  v.insert(v.end(), o.codes.data(), o.codes.data() + o.codes.size());
  ntotal += o.ntotal;
  o.reset();
}

// ---- IndexIVFScalarQuantizer -------------------------------------------------------------------
IndexIVFScalarQuantizer::IndexIVFScalarQuantizer(IndexPtr q, int d_, size_t nlist_, int qtype, MetricType metric,
                                                 bool by_res)
    : IndexIVF(std::move(q), d_, nlist_, ScalarQuantizer(size_t(d_ > 0 ? d_ : 1), qtype).code_size, metric),
      sq(size_t(d_), qtype) {
  by_residual = by_res;
  is_trained = is_trained && sq.is_trained();
}

void IndexIVFScalarQuantizer::train_encoder(idx_t n, const float* x, const idx_t*) { sq.train(size_t(n), x); }

void IndexIVFScalarQuantizer::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
  const size_t cs = code_size;
  ParallelErrors perr;
#pragma omp parallel if (n > 1000)
  {
    std::vector<float> res(d);
#pragma omp for schedule(static)
    for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
      uint8_t* c = codes + size_t(i) * cs;
      if (list_nos[i] < 0) {
        std::memset(c, 0, cs);
        continue;
      }
      const float* xi = x + size_t(i) * d;
      if (by_residual) {
        compute_residual(xi, res.data(), list_nos[i]);
        xi = res.data();
      }
      sq.compute_codes(xi, c, 1);
    } ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

void IndexIVFScalarQuantizer::decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const {
  sq.decode(codes, x, size_t(n));
  if (!by_residual) return;
  std::vector<float> cent(d);
  for (idx_t i = 0; i < n; ++i) {
    if (list_nos[i] < 0) continue;
    quantizer->reconstruct(list_nos[i], cent.data());
    for (int p = 0; p < d; ++p) x[size_t(i) * d + p] += cent[p];
  }
}

const float* IndexIVFScalarQuantizer::list_vectors(size_t l, std::vector<float>& buf) const {
  const size_t nb = invlists->list_size(l);
  buf.resize(nb * size_t(d));
  std::vector<float> cent;
  if (by_residual) {
    cent.resize(d);
    quantizer->reconstruct(idx_t(l), cent.data());
  }
  sq.decode_fast(nb, invlists->get_codes(l), code_size, by_residual ? cent.data() : nullptr, buf.data());
  return buf.data();
}

namespace {

// Residual scanning: for L2 the query residual q - c is coded into the
// computer's tables per list; for the inner product <q, c + r> = <q, c> +
// <q, r>, so the tables stay per query and <q, c> is a per-list constant.
struct SQScanner : InvertedListScanner {
  const IndexIVFScalarQuantizer& idx;
  SQDistanceComputer dc;
  const float* q = nullptr;
  bool l2;
  std::vector<float> cent, res;
  mutable std::vector<float> buf;
  explicit SQScanner(const IndexIVFScalarQuantizer& i)
      : idx(i), dc(i.sq, i.metric_type), l2(i.metric_type == METRIC_L2), cent(i.d), res(i.d), buf(kBlock) {}
  void set_query(const float* x) override {
    q = x;
    if (!idx.by_residual || !l2) dc.set_query(x);
  }
  void set_list(idx_t l, float) override {
    list_no = l;
    if (!idx.by_residual) return;
    idx.quantizer->reconstruct(l, cent.data());
    if (l2) {
      for (int p = 0; p < idx.d; ++p) res[p] = q[p] - cent[p];
      dc.set_query(res.data());
    } else {
      dc.extra = kernels().inner_product(q, cent.data(), size_t(idx.d));
    }
  }
  float distance_to_code(const uint8_t* code) const override { return dc.key(code); }
  size_t scan_codes(size_t n, const uint8_t* codes, size_t cs, const idx_t* ids, TopK& heap) const override {
    scan_into_heap(dc, n, codes, cs, ids, 0, sel, heap, buf.data());
    return n;
  }
  void scan_codes_range(size_t n, const uint8_t* codes, size_t cs, const idx_t* ids, float key_radius,
                        std::vector<std::pair<float, idx_t>>& out) const override {
    scan_into_range(dc, n, codes, cs, ids, 0, sel, key_radius, out, buf.data());
  }
};

}  // namespace

std::unique_ptr<InvertedListScanner> IndexIVFScalarQuantizer::get_scanner() const {
  return std::make_unique<SQScanner>(*this);
}

void IndexIVFScalarQuantizer::check_compatible_for_merge(const IndexIVF& other) const {
  IndexIVF::check_compatible_for_merge(other);
  auto* o = dynamic_cast<const IndexIVFScalarQuantizer*>(&other);
  ANNVIL_CHECK(o && o->sq.qtype == sq.qtype && o->sq.trained == sq.trained,
               "cannot merge IVFScalarQuantizer indexes with different scalar quantizers");
}

void IndexIVFScalarQuantizer::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write<int32_t>(sq.qtype);
  w.write_vector(sq.trained);
  write_ivf(w);
}

// ---- readers ---------------------------------------------------------------------------------
namespace {

int read_qtype(Reader& r) {
  int32_t qt = r.read<int32_t>();
  if (!ScalarQuantizer::valid_qtype(qt))
    r.corrupt("unknown scalar quantizer type");
  return qt;
}

void read_trained(Reader& r, ScalarQuantizer& sq, bool is_trained) {
  r.read_vector(sq.trained);
  if (!sq.trained.empty() && sq.trained.size() != sq.trained_size())
    r.corrupt("scalar quantizer parameters have the wrong size");
  if (is_trained && sq.needs_training() && sq.trained.empty()) r.corrupt("trained index without SQ parameters");
}

IndexPtr read_sq(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int qt = read_qtype(r);
  auto idx = std::make_shared<IndexScalarQuantizer>(h.d, qt, h.metric);
  read_trained(r, idx->sq, h.is_trained);
  r.read_storage(idx->codes);
  if (idx->codes.size() != size_t(h.ntotal) * idx->sq.code_size) r.corrupt("SQ code storage does not match ntotal");
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  return idx;
}

IndexPtr read_ivf_sq(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int qt = read_qtype(r);
  ScalarQuantizer tmp(size_t(h.d), qt);
  read_trained(r, tmp, h.is_trained);
  IndexIVF::Common c = IndexIVF::read_ivf_common(r, h.d);
  auto idx = std::make_shared<IndexIVFScalarQuantizer>(c.quantizer, h.d, c.nlist, qt, h.metric, c.by_residual);
  idx->sq.trained = tmp.trained;
  IndexIVF::read_ivf_lists(r, *idx, c, h.ntotal, h.is_trained);
  return idx;
}

ANNVIL_REGISTER_INDEX("SQ", read_sq);
ANNVIL_REGISTER_INDEX("IVFSQ", read_ivf_sq);

}  // namespace

}  // namespace annvil
