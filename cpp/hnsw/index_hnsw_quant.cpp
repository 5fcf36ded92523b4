// IndexHNSWSQ / IndexHNSWPQ: HNSW over SQ or PQ codes (see index_hnsw_quant.h).
#include "hnsw/index_hnsw_quant.h"
#include "core/parallel.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/code_rows.h"
#include "core/io.h"

namespace annvil {

// ---- IndexHNSWCodes -------------------------------------------------------------
IndexHNSWCodes::IndexHNSWCodes(int d_, int M, MetricType metric) : IndexHNSW(d_, M, metric) {
  allow_f16 = false;  // xb / xh are unused: the vectors live in `codes`
}

void IndexHNSWCodes::add_slots(idx_t n, const float* x, idx_t* ids) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative, got ", n);
  check_trained();
  if (n == 0) return;
  std::vector<uint8_t> c(size_t(n) * code_size);
  encode(n, x, c.data());
  add_code_slots(n, c.data(), ids);
}

void IndexHNSWCodes::add_code_slots(idx_t n, const uint8_t* cp, idx_t* ids) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative, got ", n);
  check_trained();
  if (n == 0) return;
  // every check and the encoding first, so that a failed call leaves the
  // index unchanged
  std::vector<int32_t> reuse;
  if (replace_deleted && n_deleted) {
    for (idx_t i = 0; i < ntotal && idx_t(reuse.size()) < n; ++i)
      if (is_deleted(i)) reuse.push_back(int32_t(i));
  }
  const idx_t n_new = n - idx_t(reuse.size());
  ANNVIL_CHECK(ntotal + n_new < idx_t(std::numeric_limits<int32_t>::max()), "IndexHNSW holds at most 2^31 - 1 vectors");
  std::vector<uint8_t> c(cp, cp + size_t(n) * code_size);

  std::vector<int32_t> nodes;
  nodes.reserve(size_t(n));
  const HNSW::Mark mark = hnsw.mark();
  const idx_t n0 = ntotal;
  for (size_t i = 0; i < reuse.size(); ++i) {
    const int32_t s = reuse[i];
    std::memcpy(codes.writable() + size_t(s) * code_size, c.data() + i * code_size, code_size);
    deleted[size_t(s) >> 6] &= ~(uint64_t(1) << (s & 63));
    --n_deleted;
    nodes.push_back(s);
    if (ids) ids[i] = s;
  }
  if (n_new > 0) {
    codes.append(c.data() + reuse.size() * code_size, size_t(n_new) * code_size);
    hnsw.grow(size_t(n_new));
    for (idx_t i = 0; i < n_new; ++i) {
      nodes.push_back(int32_t(ntotal + i));
      if (ids) ids[reuse.size() + size_t(i)] = ntotal + i;
    }
    ntotal += n_new;
    deleted.resize((size_t(ntotal) + 63) / 64, 0);
  }
  try {
    insert_nodes(nodes);
  } catch (...) {
    rollback_add(mark, n0, reuse);
    codes.truncate(size_t(n0) * code_size);
    throw;
  }
  // as IndexHNSW::add_slots: re-home on huge pages after large adds only
  to_huge_pages_after_add();
  hnsw_to_huge_pages(codes);
}

void IndexHNSWCodes::row_f32(idx_t i, float* out) const { decode(1, codes.data() + size_t(i) * code_size, out); }

void IndexHNSWCodes::sa_encode(idx_t n, const float* x, uint8_t* out) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n) encode(n, x, out);
}

void IndexHNSWCodes::sa_decode(idx_t n, const uint8_t* c, float* x) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n) decode(n, c, x);
}

void IndexHNSWCodes::add_sa_codes(idx_t n, const uint8_t* c, const idx_t*) { add_code_slots(n, c, nullptr); }

void IndexHNSWCodes::slot_code(idx_t i, uint8_t* code) const {
  std::memcpy(code, codes.data() + size_t(i) * code_size, code_size);
}

void IndexHNSWCodes::compact_storage(const std::vector<idx_t>& keep) { compact_rows(codes, code_size, keep); }

void IndexHNSWSQ::relink_without(const std::vector<int32_t>& newid) { hnsw_relink_without(hnsw, code_space(), newid); }

void IndexHNSWSQ::check_same_codec(const IndexHNSW& other) const {
  auto& o = static_cast<const IndexHNSWSQ&>(other);
  ANNVIL_CHECK(o.sq.qtype == sq.qtype && o.sq.trained == sq.trained,
               "cannot merge IndexHNSWSQ indexes with different or differently trained scalar quantizers "
               "(train one index and clone it)");
}

void IndexHNSWPQ::relink_without(const std::vector<int32_t>& newid) { hnsw_relink_without(hnsw, code_space(), newid); }

void IndexHNSWPQ::check_same_codec(const IndexHNSW& other) const {
  auto& o = static_cast<const IndexHNSWPQ&>(other);
  ANNVIL_CHECK(o.pq.M == pq.M && o.pq.nbits == pq.nbits && o.pq.centroids == pq.centroids,
               "cannot merge IndexHNSWPQ indexes with different or differently trained product quantizers "
               "(train one index and clone it)");
}

void IndexHNSWCodes::reset() {
  codes.clear();
  IndexHNSW::reset();
}

size_t IndexHNSWCodes::memory_usage() const {
  return IndexHNSW::memory_usage() + (codes.is_view() ? codes.size() : codes.capacity_bytes());
}

// Payload: IndexHNSW's (with empty vector arrays), then the codec, then the
// codes (an array a memory-mapped file is searched from in place).
void IndexHNSWCodes::write_payload(Writer& w) const {
  IndexHNSW::write_payload(w);
  write_codec(w);
  w.write_storage(codes);
}

// ---- IndexHNSWSQ ----------------------------------------------------------------
namespace {
int checked_qtype(int qtype) {
  if (!ScalarQuantizer::valid_qtype(qtype))
    ANNVIL_THROW(value, "unsupported scalar quantizer type ", qtype,
                 " for IndexHNSWSQ; use one of the ScalarQuantizer.QT_* types 0 .. 8");
  return qtype;
}
int checked_d(int d) {
  ANNVIL_CHECK(d > 0, "dimension d must be positive, got ", d);
  return d;
}
}  // namespace

IndexHNSWSQ::IndexHNSWSQ(int d_, int qtype, int M, MetricType metric)
    : IndexHNSWCodes(checked_d(d_), M, metric), sq(size_t(d_), checked_qtype(qtype)) {
  code_size = sq.code_size;
  is_trained = !sq.needs_training();
}

void IndexHNSWSQ::train(idx_t n, const float* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative, got ", n);
  if (!sq.needs_training()) {
    is_trained = true;
    return;
  }
  ANNVIL_CHECK(ntotal == 0,
               "IndexHNSWSQ: train() on an index that holds vectors would invalidate their codes; "
               "reset() first");
  ANNVIL_CHECK(n > 0, "training IndexHNSWSQ needs at least one vector");
  ScalarQuantizer s2 = sq;
  s2.train(size_t(n), x);
  sq = std::move(s2);
  is_trained = true;
}

void IndexHNSWSQ::encode(idx_t n, const float* x, uint8_t* out) const {
  ParallelErrors perr;
#pragma omp parallel for schedule(static) if (n > 4096)
  for (idx_t i0 = 0; i0 < n; i0 += 1024) ANNVIL_OMP_TRY(perr) {
      const size_t m = std::min<size_t>(1024, size_t(n - i0));
      sq.compute_codes(x + size_t(i0) * d, out + size_t(i0) * code_size, m);
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void IndexHNSWSQ::decode(idx_t n, const uint8_t* c, float* out) const { sq.decode(c, out, size_t(n)); }

void IndexHNSWSQ::insert_nodes(const std::vector<int32_t>& nodes) { hnsw.insert(code_space(), nodes); }

void IndexHNSWSQ::search_graph(idx_t n, const float* x, idx_t k, int ef, bool filtered, const HnswAdmitFn& admit,
                               float* D, idx_t* I, HnswRangeCollect* rc) const {
  hnsw_search_batch(*this, code_space(), n, x, k, ef, filtered, admit, D, I, rc);
}

void IndexHNSWSQ::rescore_with_space(idx_t n, const float* x, idx_t k, float* D, idx_t* I) const {
  hnsw_rescore(*this, code_space(), n, x, k, D, I);
}

void IndexHNSWSQ::write_codec(Writer& w) const {
  w.write<int32_t>(sq.qtype);
  w.write_vector(sq.trained);
}

// ---- IndexHNSWPQ ----------------------------------------------------------------
IndexHNSWPQ::IndexHNSWPQ(int d_, int pq_m, int M, int pq_nbits, MetricType metric)
    : IndexHNSWCodes(checked_d(d_), M, metric),
      pq(size_t(d_), size_t(std::max(pq_m, 0)), size_t(std::max(pq_nbits, 0))) {
  code_size = pq.code_size;
  is_trained = false;
}

void IndexHNSWPQ::train(idx_t n, const float* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative, got ", n);
  ANNVIL_CHECK(ntotal == 0,
               "IndexHNSWPQ: train() on an index that holds vectors would invalidate their codes; "
               "reset() first");
  ProductQuantizer p2 = pq;
  p2.train(n, x);
  pq = std::move(p2);
  is_trained = true;
}

void IndexHNSWPQ::encode(idx_t n, const float* x, uint8_t* out) const { pq.compute_codes(n, x, out); }

void IndexHNSWPQ::decode(idx_t n, const uint8_t* c, float* out) const { pq.decode(n, c, out); }

void IndexHNSWPQ::insert_nodes(const std::vector<int32_t>& nodes) { hnsw.insert(code_space(), nodes); }

void IndexHNSWPQ::search_graph(idx_t n, const float* x, idx_t k, int ef, bool filtered, const HnswAdmitFn& admit,
                               float* D, idx_t* I, HnswRangeCollect* rc) const {
  hnsw_search_batch(*this, code_space(), n, x, k, ef, filtered, admit, D, I, rc);
}

void IndexHNSWPQ::rescore_with_space(idx_t n, const float* x, idx_t k, float* D, idx_t* I) const {
  hnsw_rescore(*this, code_space(), n, x, k, D, I);
}

void IndexHNSWPQ::write_codec(Writer& w) const { pq.write(w); }

// ---- readers --------------------------------------------------------------------
namespace {

void read_codes(Reader& r, IndexHNSWCodes& idx) {
  r.read_storage(idx.codes);
  if (idx.codes.size() != size_t(idx.ntotal) * idx.code_size) r.corrupt("HNSW codes do not match ntotal * code_size");
  if (!r.mapped()) hnsw_to_huge_pages(idx.codes);
}

IndexPtr read_hnsw_sq(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int32_t M = r.read<int32_t>();
  if (M < 2 || M > 4096) r.corrupt("bad HNSW M");
  if (h.ntotal >= idx_t(std::numeric_limits<int32_t>::max())) r.corrupt("bad HNSW ntotal");
  if (h.d <= 0) r.corrupt("bad dimension");
  // the codec follows the graph: build with fp16, then replace
  auto idx = std::make_shared<IndexHNSWSQ>(h.d, int(ScalarQuantizer::QT_fp16), M, h.metric);
  idx->ntotal = h.ntotal;
  idx->read_payload_body(r);
  int32_t qt = r.read<int32_t>();
  if (!ScalarQuantizer::valid_qtype(qt)) r.corrupt("unknown scalar quantizer type");
  ScalarQuantizer sq(size_t(h.d), qt);
  r.read_vector(sq.trained);
  if (!sq.trained.empty() && sq.trained.size() != sq.trained_size()) r.corrupt("bad scalar quantizer parameters");
  if (h.is_trained != sq.is_trained()) r.corrupt("scalar quantizer training does not match is_trained");
  idx->sq = std::move(sq);
  idx->code_size = idx->sq.code_size;
  idx->is_trained = h.is_trained;
  read_codes(r, *idx);
  return idx;
}

IndexPtr read_hnsw_pq(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int32_t M = r.read<int32_t>();
  if (M < 2 || M > 4096) r.corrupt("bad HNSW M");
  if (h.ntotal >= idx_t(std::numeric_limits<int32_t>::max())) r.corrupt("bad HNSW ntotal");
  if (h.d <= 0) r.corrupt("bad dimension");
  auto idx = std::make_shared<IndexHNSWPQ>(h.d, 1, M, 1, h.metric);
  idx->ntotal = h.ntotal;
  idx->read_payload_body(r);
  ProductQuantizer pq = ProductQuantizer::read(r);
  if (pq.d != size_t(h.d)) r.corrupt("ProductQuantizer dimension does not match the index");
  if (pq.is_trained != h.is_trained) r.corrupt("ProductQuantizer training does not match is_trained");
  idx->pq = std::move(pq);
  idx->code_size = idx->pq.code_size;
  idx->is_trained = h.is_trained;
  read_codes(r, *idx);
  return idx;
}

ANNVIL_REGISTER_INDEX("HNSWSQ", read_hnsw_sq);
ANNVIL_REGISTER_INDEX("HNSWPQ", read_hnsw_pq);

}  // namespace

}  // namespace annvil
