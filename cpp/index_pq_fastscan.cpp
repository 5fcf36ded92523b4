#include "index_pq_fastscan.h"

#include <omp.h>

#include <cstring>
#include <vector>

#include "core/topk.h"
#include "core/io.h"
#include "core/parallel.h"
#include "quant/pq_fastscan.h"

namespace annvil {

IndexPQFastScan::IndexPQFastScan(int d_, size_t M, size_t nbits, MetricType metric, size_t bbs_)
    : IndexFlatCodes(d_, metric, 0), pq(size_t(d_), M, nbits), bbs(bbs_) {
  code_size = pq.code_size;
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

// Not IndexFlatCodes::add: the codes are packed by block, so the
// sub-quantizer indices are computed and then packed in.
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
  ANNVIL_CHECK(implem == 0 || (implem >= 1 && implem <= 4) || (implem >= 12 && implem <= 15), "IndexPQFastScan implem ",
               implem, " does not exist (0: auto, 1-4: reference scans, 12-15: SIMD)");
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
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

void IndexPQFastScan::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "id ", key, " out of range [0, ", ntotal, ")");
  std::vector<uint8_t> c(code_size);
  pq4_unpack_codes(codes.data(), pq.M, size_t(key), 1, c.data());
  pq.decode(1, c.data(), out);
}

void IndexPQFastScan::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  if (ni == 0) return;
  std::vector<uint8_t> c(size_t(ni) * code_size);
  pq4_unpack_codes(codes.data(), pq.M, size_t(i0), size_t(ni), c.data());
  pq.decode(ni, c.data(), out);
}

std::vector<uint8_t> IndexPQFastScan::kept_indices(const IDSelector* sel, idx_t* n_kept) const {
  const size_t M = pq.M;
  std::vector<uint8_t> idx;
  idx.reserve(size_t(ntotal) * M);
  idx_t j = 0;
  for (idx_t i = 0; i < ntotal; ++i) {
    if (sel && sel->is_member(i)) continue;
    for (size_t m = 0; m < M; ++m) idx.push_back(pq4_get_packed_element(codes.data(), M, size_t(i), m));
    ++j;
  }
  *n_kept = j;
  return idx;
}

size_t IndexPQFastScan::remove_ids(const IDSelector& sel) {
  idx_t j = 0;
  std::vector<uint8_t> idx = kept_indices(&sel, &j);
  size_t removed = size_t(ntotal - j);
  if (removed == 0) return 0;
  codes.clear();
  ntotal = 0;
  add_indices(j, idx.data());
  return removed;
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

// ---- standalone codes (plain PQ codes) and merging -------------------------------------
void IndexPQFastScan::encode_vectors(idx_t n, const float* x, uint8_t* out) const { pq.compute_codes(n, x, out); }

void IndexPQFastScan::decode_vectors(idx_t n, const uint8_t* in, float* x) const { pq.decode(n, in, x); }

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
  IndexFlatCodes::check_compatible_for_merge(other);
  auto* o = dynamic_cast<const IndexPQFastScan*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  check_same_pq(pq, o->pq);
}

void IndexPQFastScan::merge_from(Index& other, idx_t) {
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexPQFastScan&>(other);
  idx_t n = 0;
  std::vector<uint8_t> idx = o.kept_indices(nullptr, &n);
  add_indices(n, idx.data());
  o.reset();
}

// ---- io ----------------------------------------------------------------------------------
namespace {
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
ANNVIL_REGISTER_INDEX("PQFastScan", read_pq_fastscan);
}  // namespace

}  // namespace annvil
