// Faiss's index file format: the IVF header, array inverted lists, and IndexIVFFlat,
// IndexIVFScalarQuantizer, IndexIVFPQ, IndexIVFPQFastScan.
#include "faiss_io/faiss_io_impl.h"

#include <algorithm>
#include <limits>

#include "index_sq.h"
#include "ivf/index_ivf.h"
#include "ivf/index_ivf_flat.h"
#include "ivf/index_ivf_pq.h"
#include "ivf/index_ivf_pq_fastscan.h"
#include "ivf/index_ivf_sq.h"
#include "quant/pq_fastscan.h"

namespace annvil {
namespace fio {

namespace {

struct IvfHeader {
  FHeader h;
  size_t nlist = 0, nprobe = 1;
  IndexPtr quantizer;
  int direct_map_type = 0;
};

IvfHeader read_ivf_header(FReader& r) {
  IvfHeader v;
  v.h = read_header(r);
  uint64_t nlist = r.get<uint64_t>("nlist"), nprobe = r.get<uint64_t>("nprobe");
  if (nlist == 0 || nlist >= (uint64_t(1) << 31)) r.corrupt("bad nlist");
  v.nlist = size_t(nlist);
  v.nprobe = size_t(std::max<uint64_t>(1, std::min<uint64_t>(nprobe, nlist)));
  v.quantizer = read_index_nonnull(r, "IVF quantizer");
  if (v.quantizer->d != v.h.d) r.corrupt("IVF quantizer dimension differs from the index");
  if (v.quantizer->ntotal != 0 && size_t(v.quantizer->ntotal) != v.nlist)
    r.corrupt("the IVF quantizer does not hold nlist centroids");
  int8_t dm = r.get<int8_t>("direct map type");
  if (dm < 0 || dm > 2) r.corrupt("bad direct map type");
  v.direct_map_type = dm;
  // the stored map is rebuilt from the lists (and so checked against them)
  size_t na = r.vec_count<int64_t>("direct map");
  r.raw(na * sizeof(int64_t), "direct map");
  if (dm == 2) {
    size_t nh = r.vec_count<int64_t>("direct map hashtable");
    if (nh % 2) r.corrupt("bad direct map hashtable");
    r.raw(nh * sizeof(int64_t), "direct map hashtable");
  }
  return v;
}

// Reads "ilar" lists into idx->invlists (codes of code_size bytes).
void read_array_invlists(FReader& r, IndexIVF& idx, size_t expect_code_size) {
  uint32_t h = r.get<uint32_t>("inverted lists fourcc");
  if (h != fourcc("ilar")) unsupported(h, " as the inverted lists of this index");
  uint64_t nlist = r.get<uint64_t>("invlists nlist"), cs = r.get<uint64_t>("invlists code_size");
  if (nlist != idx.nlist) r.corrupt("inverted lists do not have nlist lists");
  if (cs != expect_code_size) r.corrupt("inverted lists code size does not match the index");
  std::vector<uint64_t> sizes(idx.nlist, 0);
  uint32_t lt = r.get<uint32_t>("list type");
  if (lt == fourcc("full")) {
    size_t n = r.vec_count<uint64_t>("list sizes");
    if (n != idx.nlist) r.corrupt("wrong number of list sizes");
    std::memcpy(sizes.data(), r.raw(n * 8, "list sizes"), n * 8);
  } else if (lt == fourcc("sprs")) {
    size_t n = r.vec_count<uint64_t>("list sizes");
    if (n % 2) r.corrupt("bad sparse list sizes");
    const uint8_t* p = r.raw(n * 8, "list sizes");
    for (size_t j = 0; j < n; j += 2) {
      uint64_t l, s;
      std::memcpy(&l, p + 8 * j, 8);
      std::memcpy(&s, p + 8 * j + 8, 8);
      if (l >= idx.nlist) r.corrupt("sparse list number out of range");
      sizes[l] = s;
    }
  } else {
    r.corrupt("unknown inverted list size encoding '" + fourcc_str(lt) + "'");
  }
  uint64_t tot = 0;
  for (auto s : sizes) {
    if (s > r.remaining()) r.corrupt("inverted list larger than the file");
    tot += s;
  }
  if (tot != uint64_t(idx.ntotal)) r.corrupt("inverted list sizes do not add up to ntotal");
  if (cs && tot > r.remaining() / (cs + 8)) r.corrupt("inverted lists larger than the file");
  for (size_t l = 0; l < idx.nlist; ++l) {
    const size_t n = size_t(sizes[l]);
    if (!n) continue;
    const uint8_t* codes = r.raw(n * cs, "list codes");
    const uint8_t* ids = r.raw(n * 8, "list ids");
    auto& C = idx.invlists->codes[l];
    auto& I = idx.invlists->ids[l];
    C.assign(codes, codes + n * cs);
    I.resize(n);
    std::memcpy(I.data(), ids, n * 8);
  }
}

// the common tail of every IVF reader: counts, nprobe, direct map
void finish_ivf(FReader& r, IndexIVF& idx, const IvfHeader& v) {
  idx.nprobe = v.nprobe;
  idx.is_trained = v.h.is_trained;
  idx.metric_arg = v.h.metric_arg;
  if (v.direct_map_type) {
    try {
      idx.set_direct_map_type(v.direct_map_type);
    } catch (const Error&) {
      r.corrupt("ids do not fit the stored direct map type");
    }
  }
}

void write_ivf_header(FWriter& w, const IndexIVF& ivf) {
  write_header(w, ivf);
  w.put<uint64_t>(ivf.nlist);
  w.put<uint64_t>(ivf.nprobe);
  write_index(w, *ivf.quantizer);
  w.put<int8_t>(int8_t(ivf.direct_map_type));
  if (ivf.direct_map_type == DIRECT_MAP_ARRAY) {
    w.vec(ivf.direct_map_array);
  } else {
    w.put<uint64_t>(0);
  }
  if (ivf.direct_map_type == DIRECT_MAP_HASHTABLE) {
    std::vector<int64_t> pairs;
    pairs.reserve(2 * ivf.direct_map_hash.size());
    for (const auto& kv : ivf.direct_map_hash) {
      pairs.push_back(kv.first);
      pairs.push_back(kv.second);
    }
    w.put<uint64_t>(pairs.size() / 2);
    w.bytes(pairs.data(), pairs.size() * 8);
  }
}

}  // namespace

void write_array_invlists(FWriter& w, const InvertedLists& il, size_t code_size) {
  w.tag("ilar");
  w.put<uint64_t>(il.nlist);
  w.put<uint64_t>(code_size);
  w.tag("full");
  std::vector<uint64_t> sizes(il.nlist);
  for (size_t l = 0; l < il.nlist; ++l) sizes[l] = il.list_size(l);
  w.vec(sizes);
  for (size_t l = 0; l < il.nlist; ++l) {
    const size_t n = il.list_size(l);
    if (!n) continue;
    w.bytes(il.get_codes(l), n * code_size);
    w.bytes(il.get_ids(l), n * 8);
  }
}

IndexPtr read_ivf_flat(FReader& r) {
  IvfHeader v = read_ivf_header(r);
  if (v.h.d == 0) r.corrupt("bad dimension");
  auto idx =
      build("IndexIVFFlat", [&] { return std::make_shared<IndexIVFFlat>(v.quantizer, v.h.d, v.nlist, v.h.metric); });
  idx->ntotal = v.h.ntotal;
  read_array_invlists(r, *idx, size_t(v.h.d) * 4);
  finish_ivf(r, *idx, v);
  return idx;
}

IndexPtr read_ivf_sq(FReader& r) {
  IvfHeader v = read_ivf_header(r);
  if (v.h.d == 0) r.corrupt("bad dimension");
  ScalarQuantizer sq = read_sq(r, v.h.d, v.h.is_trained);
  uint64_t cs = r.get<uint64_t>("code_size");
  bool by_residual = r.get_bool("by_residual");
  if (cs != sq.code_size) r.corrupt("IVF code size does not match the ScalarQuantizer");
  auto idx = build("IndexIVFScalarQuantizer", [&] {
    return std::make_shared<IndexIVFScalarQuantizer>(v.quantizer, v.h.d, v.nlist, sq.qtype, v.h.metric, by_residual);
  });
  idx->sq = std::move(sq);
  idx->by_residual = by_residual;
  idx->ntotal = v.h.ntotal;
  read_array_invlists(r, *idx, idx->code_size);
  finish_ivf(r, *idx, v);
  return idx;
}

IndexPtr read_ivf_pq(FReader& r) {
  IvfHeader v = read_ivf_header(r);
  if (v.h.d == 0) r.corrupt("bad dimension");
  bool by_residual = r.get_bool("by_residual");
  uint64_t cs = r.get<uint64_t>("code_size");
  ProductQuantizer pq = read_pq(r, v.h.d, v.h.is_trained);
  if (cs != pq.code_size) r.corrupt("IVF code size does not match the ProductQuantizer");
  auto idx = build("IndexIVFPQ", [&] {
    return std::make_shared<IndexIVFPQ>(v.quantizer, v.h.d, v.nlist, pq.M, pq.nbits, v.h.metric);
  });
  idx->pq = std::move(pq);
  idx->by_residual = by_residual;
  idx->ntotal = v.h.ntotal;
  read_array_invlists(r, *idx, idx->code_size);
  finish_ivf(r, *idx, v);
  // Faiss does not store the precomputed table: it rebuilds it (when it fits)
  idx->use_precomputed_table = 0;
  idx->precomputed_table.clear();
  if (idx->is_trained)
    build("IndexIVFPQ", [&] {
      idx->precompute_table();
      return 0;
    });
  return idx;
}

IndexPtr read_ivf_pq_fastscan(FReader& r) {
  IvfHeader v = read_ivf_header(r);
  if (v.h.d == 0) r.corrupt("bad dimension");
  bool by_residual = r.get_bool("by_residual");
  uint64_t cs = r.get<uint64_t>("code_size");
  int32_t bbs = r.get<int32_t>("bbs");
  uint64_t M2 = r.get<uint64_t>("M2");
  int32_t implem = r.get<int32_t>("implem");
  uint64_t qbs2 = r.get<uint64_t>("qbs2");
  ProductQuantizer pq = read_pq(r, v.h.d, v.h.is_trained);
  if (pq.nbits != 4) ANNVIL_THROW(file_format, "IndexIVFPQFastScan with nbits=", pq.nbits, " is not supported");
  if (cs != pq.code_size) r.corrupt("IVF code size does not match the ProductQuantizer");
  if (bbs <= 0 || bbs % 32 || bbs > (1 << 20)) r.corrupt("bad fast-scan block size");
  if (M2 != ((pq.M + 1) & ~size_t(1))) r.corrupt("bad fast-scan M2");
  auto idx = build("IndexIVFPQFastScan", [&] {
    return std::make_shared<IndexIVFPQFastScan>(v.quantizer, v.h.d, v.nlist, pq.M, 4, v.h.metric, size_t(bbs));
  });
  idx->pq = std::move(pq);
  idx->by_residual = by_residual;
  idx->implem = implem;
  idx->qbs = int(std::min<uint64_t>(qbs2, uint64_t(std::numeric_limits<int>::max())));
  uint32_t h = r.get<uint32_t>("inverted lists fourcc");
  if (h != fourcc("ilbl")) unsupported(h, " as the inverted lists of IndexIVFPQFastScan");
  uint64_t nlist = r.get<uint64_t>("invlists nlist"), ics = r.get<uint64_t>("invlists code_size");
  uint64_t npb = r.get<uint64_t>("n_per_block"), bs = r.get<uint64_t>("block_size");
  if (nlist != v.nlist) r.corrupt("inverted lists do not have nlist lists");
  if (ics != std::numeric_limits<uint64_t>::max() && ics != cs) r.corrupt("inverted lists code size does not match");
  if (npb != uint64_t(bbs) || bs != uint64_t(bbs) * M2 / 2) r.corrupt("inverted list blocks do not match bbs");
  uint64_t tot = 0;
  std::vector<uint8_t> plain;
  for (size_t l = 0; l < v.nlist; ++l) {
    const size_t n = r.vec_count<int64_t>("list ids");
    const uint8_t* ids = r.raw(n * 8, "list ids");
    const size_t nc = r.vec_count<uint8_t>("list codes");
    const size_t nblk = (n + size_t(bbs) - 1) / size_t(bbs);
    if (nc != nblk * bs) r.corrupt("inverted list codes do not match its size");
    const uint8_t* blocks = r.raw(nc, "list codes");
    tot += n;
    if (!n) continue;
    plain.resize(n * cs);
    faiss_pq4_unpack(blocks, n, idx->pq.M, size_t(bbs), plain.data());
    idx->invlists->codes[l].assign(plain.begin(), plain.end());
    idx->invlists->ids[l].resize(n);
    std::memcpy(idx->invlists->ids[l].data(), ids, n * 8);
  }
  if (tot != uint64_t(v.h.ntotal)) r.corrupt("inverted list sizes do not add up to ntotal");
  idx->ntotal = v.h.ntotal;
  finish_ivf(r, *idx, v);
  idx->npacked.assign(v.nlist, 0);
  idx->pack_lists();
  idx->use_precomputed_table = 0;
  idx->precomputed_table.clear();
  if (idx->is_trained)
    build("IndexIVFPQFastScan", [&] {
      idx->precompute_table();
      return 0;
    });
  return idx;
}

// IndexIVFFlat, IndexIVFScalarQuantizer, IndexIVFPQ, IndexIVFPQFastScan
bool write_ivf_family(FWriter& w, const Index& idx) {
  if (auto* p = dynamic_cast<const IndexIVFFlat*>(&idx)) {
    w.tag("IwFl");
    write_ivf_header(w, *p);
    write_array_invlists(w, *p->invlists, p->code_size);
  } else if (auto* p = dynamic_cast<const IndexIVFScalarQuantizer*>(&idx)) {
    w.tag("IwSq");
    write_ivf_header(w, *p);
    write_sq(w, p->sq);
    w.put<uint64_t>(p->code_size);
    w.put_bool(p->by_residual);
    write_array_invlists(w, *p->invlists, p->code_size);
  } else if (auto* p = dynamic_cast<const IndexIVFPQ*>(&idx)) {
    w.tag("IwPQ");
    write_ivf_header(w, *p);
    w.put_bool(p->by_residual);
    w.put<uint64_t>(p->code_size);
    write_pq(w, p->pq);
    write_array_invlists(w, *p->invlists, p->code_size);
  } else if (auto* p = dynamic_cast<const IndexIVFPQFastScan*>(&idx)) {
    w.tag("IwPf");
    write_ivf_header(w, *p);
    const size_t M = p->pq.M, M2 = (M + 1) & ~size_t(1), bbs = p->bbs;
    w.put_bool(p->by_residual);
    w.put<uint64_t>(p->code_size);
    w.put<int32_t>(int32_t(bbs));
    w.put<uint64_t>(M2);
    w.put<int32_t>(p->implem);
    w.put<uint64_t>(uint64_t(std::max(p->qbs, 0)));
    write_pq(w, p->pq);
    w.tag("ilbl");
    w.put<uint64_t>(p->nlist);
    w.put<uint64_t>(std::numeric_limits<uint64_t>::max());  // Faiss's INVALID_CODE_SIZE
    w.put<uint64_t>(bbs);
    w.put<uint64_t>(bbs * M2 / 2);
    std::vector<uint8_t> plain;
    for (size_t l = 0; l < p->nlist; ++l) {
      const size_t n = p->invlists->list_size(l);
      w.vec(p->invlists->get_ids(l), n);
      plain.resize(n * p->code_size);
      for (size_t i = 0; i < n; ++i) p->get_list_code(l, i, plain.data() + i * p->code_size);
      w.vec(faiss_pq4_pack(plain.data(), n, M, bbs));
    }
  } else {
    return false;
  }
  return true;
}

}  // namespace fio
}  // namespace annvil
