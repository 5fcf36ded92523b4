// Faiss's index file format: IndexFlat and the flat code indexes (IndexScalarQuantizer,
// IndexPQ, IndexPQFastScan).
#include "faiss_io/faiss_io_impl.h"

#include <cstddef>

#include "index_flat.h"
#include "index_pq.h"
#include "index_pq_fastscan.h"
#include "index_sq.h"
#include "quant/pq_fastscan.h"

namespace annvil {
namespace fio {

IndexPtr read_flat(FReader& r, uint32_t h) {
  FHeader hd = read_header(r);
  if (hd.d == 0) r.corrupt("bad dimension");
  if ((h == fourcc("IxF2") && hd.metric != METRIC_L2) || (h == fourcc("IxFI") && hd.metric != METRIC_INNER_PRODUCT))
    r.corrupt("metric does not match the flat index type");
  std::shared_ptr<IndexFlat> idx = build("IndexFlat", [&]() -> std::shared_ptr<IndexFlat> {
    if (h == fourcc("IxF2")) return std::make_shared<IndexFlatL2>(hd.d);
    if (h == fourcc("IxFI")) return std::make_shared<IndexFlatIP>(hd.d);
    return std::make_shared<IndexFlat>(hd.d, hd.metric);
  });
  idx->metric_arg = hd.metric_arg;
  // stored as a count of 4-byte words (code_size / 4 per vector)
  const size_t n = r.vec_count<float>("flat vectors");
  if (n != size_t(hd.ntotal) * size_t(hd.d)) r.corrupt("flat storage size does not match ntotal * d");
  r.storage_elems(idx->codes, n * sizeof(float), "flat vectors", alignof(float));
  idx->ntotal = hd.ntotal;
  return idx;
}

IndexPtr read_sq_index(FReader& r) {
  FHeader hd = read_header(r);
  if (hd.d == 0) r.corrupt("bad dimension");
  ScalarQuantizer sq = read_sq(r, hd.d, hd.is_trained);
  auto idx =
      build("IndexScalarQuantizer", [&] { return std::make_shared<IndexScalarQuantizer>(hd.d, sq.qtype, hd.metric); });
  idx->sq = std::move(sq);
  const size_t n = r.vec_count<uint8_t>("SQ codes");
  if (n != size_t(hd.ntotal) * idx->sq.code_size) r.corrupt("SQ codes do not match ntotal * code_size");
  r.storage_elems(idx->codes, n, "SQ codes");
  idx->ntotal = hd.ntotal;
  idx->is_trained = hd.is_trained;
  idx->metric_arg = hd.metric_arg;
  return idx;
}

IndexPtr read_pq_index(FReader& r) {
  FHeader hd = read_header(r);
  if (hd.d == 0) r.corrupt("bad dimension");
  ProductQuantizer pq = read_pq(r, hd.d, hd.is_trained);
  auto idx = build("IndexPQ", [&] { return std::make_shared<IndexPQ>(hd.d, pq.M, pq.nbits, hd.metric); });
  idx->pq = std::move(pq);
  const size_t n = r.vec_count<uint8_t>("PQ codes");
  if (n != size_t(hd.ntotal) * idx->pq.code_size) r.corrupt("PQ codes do not match ntotal * code_size");
  r.storage_elems(idx->codes, n, "PQ codes");
  int32_t st = r.get<int32_t>("PQ search_type");
  r.get_bool("PQ encode_signs");
  r.get<int32_t>("PQ polysemous_ht");
  if (st != 0 && st != 1)  // ST_PQ, ST_HE: plain ADC search
    ANNVIL_THROW(file_format, "IndexPQ with search_type ", st, " (polysemous / SDC search) is not supported");
  idx->ntotal = hd.ntotal;
  idx->is_trained = hd.is_trained;
  return idx;
}

IndexPtr read_pq_fastscan(FReader& r) {
  FHeader hd = read_header(r);
  if (hd.d == 0) r.corrupt("bad dimension");
  ProductQuantizer pq = read_pq(r, hd.d, hd.is_trained);
  if (pq.nbits != 4) ANNVIL_THROW(file_format, "IndexPQFastScan with nbits=", pq.nbits, " is not supported");
  int32_t implem = r.get<int32_t>("implem"), bbs = r.get<int32_t>("bbs"), qbs = r.get<int32_t>("qbs");
  uint64_t ntotal2 = r.get<uint64_t>("ntotal2"), M2 = r.get<uint64_t>("M2");
  if (bbs <= 0 || bbs % 32 || bbs > (1 << 20)) r.corrupt("bad fast-scan block size");
  if (M2 != ((pq.M + 1) & ~size_t(1))) r.corrupt("bad fast-scan M2");
  const uint64_t nt = uint64_t(hd.ntotal);
  if (ntotal2 != (nt + uint64_t(bbs) - 1) / uint64_t(bbs) * uint64_t(bbs)) r.corrupt("bad fast-scan ntotal2");
  const size_t nc = r.vec_count<uint8_t>("fast-scan codes");
  if (nc != ntotal2 * M2 / 2) r.corrupt("fast-scan codes do not match ntotal");
  const uint8_t* blocks = r.raw(nc, "fast-scan codes");
  auto idx = build("IndexPQFastScan",
                   [&] { return std::make_shared<IndexPQFastScan>(hd.d, pq.M, 4, hd.metric, size_t(bbs)); });
  idx->pq = std::move(pq);
  idx->implem = implem;
  idx->qbs = qbs;
  std::vector<uint8_t> plain(size_t(nt) * idx->pq.code_size);
  faiss_pq4_unpack(blocks, size_t(nt), idx->pq.M, size_t(bbs), plain.data());
  auto& c = idx->codes.mut();
  c.assign(pq4_codes_bytes(size_t(nt), idx->pq.M, size_t(bbs)), 0);
  pq4_pack_codes(plain.data(), size_t(nt), idx->pq.M, c.data());
  idx->ntotal = hd.ntotal;
  idx->is_trained = hd.is_trained;
  return idx;
}

void write_flat_storage(FWriter& w, const Index& like, const float* xb, size_t n, idx_t ntotal) {
  const bool l2 = like.metric_type == METRIC_L2, ip = like.metric_type == METRIC_INNER_PRODUCT;
  w.tag(l2 ? "IxF2" : ip ? "IxFI" : "IxFl");
  write_header(w, like, ntotal);
  w.vec(xb, n);
}

// IndexFlat, IndexScalarQuantizer, IndexPQ, IndexPQFastScan
bool write_flat_family(FWriter& w, const Index& idx) {
  if (auto* p = dynamic_cast<const IndexFlat*>(&idx)) {
    write_flat_storage(w, idx, p->get_xb(), size_t(idx.ntotal) * size_t(idx.d), idx.ntotal);
  } else if (auto* p = dynamic_cast<const IndexScalarQuantizer*>(&idx)) {
    w.tag("IxSQ");
    write_header(w, idx);
    write_sq(w, p->sq);
    w.vec(p->codes.data(), p->codes.size());
  } else if (auto* p = dynamic_cast<const IndexPQ*>(&idx)) {
    w.tag("IxPq");
    write_header(w, idx);
    write_pq(w, p->pq);
    w.vec(p->codes.data(), p->codes.size());
    w.put<int32_t>(0);  // ST_PQ
    w.put_bool(false);
    w.put<int32_t>(int32_t(p->pq.nbits * p->pq.M + 1));
  } else if (auto* p = dynamic_cast<const IndexPQFastScan*>(&idx)) {
    w.tag("IPfs");
    write_header(w, idx);
    write_pq(w, p->pq);
    const size_t M = p->pq.M, M2 = (M + 1) & ~size_t(1), bbs = p->bbs, n = size_t(p->ntotal);
    w.put<int32_t>(p->implem);
    w.put<int32_t>(int32_t(bbs));
    w.put<int32_t>(p->qbs);
    w.put<uint64_t>((n + bbs - 1) / bbs * bbs);
    w.put<uint64_t>(M2);
    std::vector<uint8_t> plain(n * p->pq.code_size);
    if (n) pq4_unpack_codes(p->codes.data(), M, 0, n, plain.data());
    w.vec(faiss_pq4_pack(plain.data(), n, M, bbs));
  } else {
    return false;
  }
  return true;
}

}  // namespace fio
}  // namespace annvil
