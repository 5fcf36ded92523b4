// Faiss's index file format: the binary indexes (IndexBinaryFlat, IDMap, IVF, HNSW, Hash,
// MultiHash, FromFloat).
#include "faiss_io.h"
#include "faiss_io/faiss_io_impl.h"

#include <algorithm>

#include "binary/index_binary.h"
#include "binary/index_binary_hash.h"
#include "binary/index_binary_hnsw.h"
#include "binary/index_binary_ivf.h"
#include "hnsw/hnsw.h"
#include "ivf/index_ivf.h"

namespace annvil {
namespace fio {

struct BHeader {
  int d = 0, code_size = 0;
  idx_t ntotal = 0;
  bool is_trained = true;
};

BHeader read_bheader(FReader& r) {
  BHeader h;
  h.d = r.get<int32_t>("d");
  h.code_size = r.get<int32_t>("code_size");
  h.ntotal = r.get<int64_t>("ntotal");
  h.is_trained = r.get_bool("is_trained");
  r.get<int32_t>("metric_type");
  if (h.d <= 0 || h.d % 8 || h.d > (1 << 24) || h.code_size != h.d / 8) r.corrupt("bad binary index dimension");
  if (h.ntotal < 0) r.corrupt("bad ntotal");
  return h;
}

void write_bheader(FWriter& w, const IndexBinary& idx) {
  w.put<int32_t>(idx.d);
  w.put<int32_t>(idx.code_size);
  w.put<int64_t>(idx.ntotal);
  w.put_bool(idx.is_trained);
  w.put<int32_t>(int32_t(METRIC_L2));
}

IndexBinaryPtr read_binary(FReader& r);

IndexBinaryPtr read_binary_nonnull(FReader& r, const char* what) {
  IndexBinaryPtr p = read_binary(r);
  if (!p) r.corrupt(std::string("missing (null) ") + what);
  return p;
}

// Faiss's BitstringReader / BitstringWriter: values of nbit bits, least
// significant bit first, packed one after the other.
class BitReader {
 public:
  BitReader(const uint8_t* p, size_t nbytes) : p_(p), nbits_(nbytes * 8) {}
  bool read(int nbit, uint64_t* out) {
    if (nbit < 0 || nbit > 64 || size_t(nbit) > nbits_ - pos_) return false;
    uint64_t v = 0;
    for (int k = 0; k < nbit; ++k, ++pos_) v |= uint64_t((p_[pos_ >> 3] >> (pos_ & 7)) & 1) << k;
    *out = v;
    return true;
  }

 private:
  const uint8_t* p_;
  size_t nbits_, pos_ = 0;
};

class BitWriter {
 public:
  explicit BitWriter(size_t nbytes) : buf(nbytes, 0) {}
  void write(uint64_t v, int nbit) {
    for (int k = 0; k < nbit; ++k, ++pos_) buf[pos_ >> 3] |= uint8_t(((v >> k) & 1) << (pos_ & 7));
  }
  std::vector<uint8_t> buf;

 private:
  size_t pos_ = 0;
};

IndexBinaryPtr read_binary_hash(FReader& r) {
  BHeader hd = read_bheader(r);
  int32_t b = r.get<int32_t>("hash b"), nflip = r.get<int32_t>("hash nflip");
  if (b <= 0 || b > 64 || b > hd.d) r.corrupt("bad IndexBinaryHash b");
  auto idx = build("IndexBinaryHash", [&] { return std::make_shared<IndexBinaryHash>(hd.d, b); });
  idx->nflip = nflip;
  uint64_t sz = r.get<uint64_t>("hash table size");
  int32_t il_nbit = r.get<int32_t>("hash il_nbit");
  if (il_nbit < 0 || il_nbit > 63) r.corrupt("bad IndexBinaryHash list size width");
  std::vector<uint8_t> buf;
  r.vec(buf, "hash table");
  if (sz > buf.size() * 8 || (b + il_nbit) * sz > buf.size() * 8) r.corrupt("hash table larger than its bits");
  BitReader br(buf.data(), buf.size());
  uint64_t tot = 0;
  for (uint64_t e = 0; e < sz; ++e) {
    uint64_t key, n;
    if (!br.read(b, &key) || !br.read(il_nbit, &n)) r.corrupt("truncated hash table");
    auto& bucket = idx->invlists[key];
    r.vec(bucket.ids, "hash bucket ids");
    r.vec(bucket.codes, "hash bucket codes");
    if (bucket.ids.size() != n || bucket.codes.size() != n * size_t(hd.code_size))
      r.corrupt("hash bucket does not match its size");
    tot += n;
  }
  if (idx->invlists.size() != sz) r.corrupt("duplicate hash keys");
  if (tot != uint64_t(hd.ntotal)) r.corrupt("hash buckets do not add up to ntotal");
  idx->ntotal = hd.ntotal;
  idx->is_trained = hd.is_trained;
  return idx;
}

IndexBinaryPtr read_binary_multihash(FReader& r) {
  BHeader hd = read_bheader(r);
  IndexBinaryPtr st = read_binary_nonnull(r, "IndexBinaryMultiHash storage");
  auto flat = std::dynamic_pointer_cast<IndexBinaryFlat>(st);
  if (!flat || flat->d != hd.d || flat->ntotal != hd.ntotal) r.corrupt("IndexBinaryMultiHash storage does not match");
  int32_t b = r.get<int32_t>("hash b"), nhash = r.get<int32_t>("nhash"), nflip = r.get<int32_t>("hash nflip");
  if (b <= 0 || b > 64 || nhash <= 0 || int64_t(nhash) * b > hd.d) r.corrupt("bad IndexBinaryMultiHash b / nhash");
  auto idx = build("IndexBinaryMultiHash", [&] { return std::make_shared<IndexBinaryMultiHash>(hd.d, nhash, b); });
  idx->nflip = nflip;
  idx->storage = flat;
  idx->maps.assign(size_t(nhash), {});
  const uint64_t N = uint64_t(hd.ntotal);
  for (int h = 0; h < nhash; ++h) {
    int32_t id_bits = r.get<int32_t>("id_bits");
    if (id_bits < 0 || id_bits > 63) r.corrupt("bad IndexBinaryMultiHash id width");
    uint64_t sz = r.get<uint64_t>("hash table size");
    std::vector<uint8_t> buf;
    r.vec(buf, "hash table");
    if (sz > buf.size() * 8) r.corrupt("hash table larger than its bits");
    BitReader br(buf.data(), buf.size());
    uint64_t tot = 0;
    auto& map = idx->maps[size_t(h)];
    for (uint64_t e = 0; e < sz; ++e) {
      uint64_t key, n;
      if (!br.read(b, &key) || !br.read(id_bits, &n)) r.corrupt("truncated hash table");
      if (n > N - std::min(tot, N)) r.corrupt("hash lists hold more ids than ntotal");
      auto& ids = map[key];
      for (uint64_t j = 0; j < n; ++j) {
        uint64_t id;
        if (!br.read(id_bits, &id)) r.corrupt("truncated hash table");
        if (id >= N) r.corrupt("hash list id out of range");
        ids.push_back(idx_t(id));
      }
      tot += n;
    }
    if (map.size() != sz) r.corrupt("duplicate hash keys");
    if (tot != N) r.corrupt("hash lists do not add up to ntotal");
  }
  idx->ntotal = hd.ntotal;
  idx->is_trained = hd.is_trained;
  return idx;
}

void write_binary(FWriter& w, const IndexBinary& idx);

void write_binary_hash(FWriter& w, const IndexBinaryHash& p) {
  w.tag("IBHh");
  write_bheader(w, p);
  w.put<int32_t>(p.b);
  w.put<int32_t>(p.nflip);
  const size_t sz = p.invlists.size();
  w.put<uint64_t>(sz);
  size_t maxil = 0;
  for (const auto& kv : p.invlists) maxil = std::max(maxil, kv.second.ids.size());
  int il_nbit = 0;
  while (maxil >= (uint64_t(1) << il_nbit)) il_nbit++;
  w.put<int32_t>(il_nbit);
  BitWriter bw((size_t(p.b + il_nbit) * sz + 7) / 8);
  for (const auto& kv : p.invlists) {
    bw.write(kv.first, p.b);
    bw.write(kv.second.ids.size(), il_nbit);
  }
  w.vec(bw.buf);
  for (const auto& kv : p.invlists) {
    w.vec(kv.second.ids);
    w.vec(kv.second.codes);
  }
}

void write_binary_multihash(FWriter& w, const IndexBinaryMultiHash& p) {
  w.tag("IBHm");
  write_bheader(w, p);
  write_binary(w, *p.storage);
  w.put<int32_t>(p.b);
  w.put<int32_t>(p.nhash);
  w.put<int32_t>(p.nflip);
  const size_t N = size_t(p.ntotal);
  for (const auto& map : p.maps) {
    int id_bits = 0;
    while (N > (size_t(1) << id_bits)) id_bits++;
    w.put<int32_t>(id_bits);
    w.put<uint64_t>(map.size());
    BitWriter bw((size_t(p.b + id_bits) * map.size() + N * size_t(id_bits) + 7) / 8);
    for (const auto& kv : map) {
      bw.write(kv.first, p.b);
      bw.write(kv.second.size(), id_bits);
      for (idx_t id : kv.second) bw.write(uint64_t(id), id_bits);
    }
    w.vec(bw.buf);
  }
}

IndexBinaryPtr read_binary(FReader& r) {
  DepthGuard guard(r);
  const uint32_t h = r.get<uint32_t>("binary index fourcc");
  if (h == fourcc("null")) return nullptr;
  if (h == fourcc("IBxF")) {
    BHeader hd = read_bheader(r);
    auto idx = build("IndexBinaryFlat", [&] { return std::make_shared<IndexBinaryFlat>(hd.d); });
    const size_t n = r.vec_count<uint8_t>("binary codes");
    if (n != size_t(hd.ntotal) * size_t(hd.code_size)) r.corrupt("binary codes do not match ntotal * code_size");
    r.storage_elems(idx->xb, n, "binary codes");
    idx->ntotal = hd.ntotal;
    idx->is_trained = hd.is_trained;
    return idx;
  }
  if (h == fourcc("IBMp") || h == fourcc("IBM2")) {
    const bool map2 = h == fourcc("IBM2");
    BHeader hd = read_bheader(r);
    IndexBinaryPtr sub = read_binary_nonnull(r, "binary IDMap inner index");
    return read_idmap_of<IndexBinaryIDMap, IndexBinaryIDMap2>(r, sub, hd.d, hd.ntotal, hd.is_trained, map2,
                                                              "IndexBinaryIDMap", "IndexBinaryIDMap2");
  }
  if (h == fourcc("IBwF")) {
    BHeader hd = read_bheader(r);
    uint64_t nlist = r.get<uint64_t>("nlist"), nprobe = r.get<uint64_t>("nprobe");
    if (nlist == 0 || nlist >= (uint64_t(1) << 31)) r.corrupt("bad nlist");
    IndexBinaryPtr q = read_binary_nonnull(r, "binary IVF quantizer");
    if (q->d != hd.d) r.corrupt("binary IVF quantizer dimension differs from the index");
    if (q->ntotal != 0 && uint64_t(q->ntotal) != nlist) r.corrupt("the IVF quantizer does not hold nlist centroids");
    int8_t dm = r.get<int8_t>("direct map type");
    if (dm < 0 || dm > 2) r.corrupt("bad direct map type");
    size_t na = r.vec_count<int64_t>("direct map");
    r.raw(na * 8, "direct map");
    if (dm == 2) {
      size_t nh = r.vec_count<int64_t>("direct map hashtable");
      if (nh % 2) r.corrupt("bad direct map hashtable");
      r.raw(nh * 8, "direct map hashtable");
    }
    auto idx = build("IndexBinaryIVF", [&] { return std::make_shared<IndexBinaryIVF>(q, hd.d, size_t(nlist)); });
    idx->nprobe = size_t(std::max<uint64_t>(1, std::min(nprobe, nlist)));
    uint32_t ih = r.get<uint32_t>("inverted lists fourcc");
    if (ih != fourcc("ilar")) unsupported(ih, " as the inverted lists of IndexBinaryIVF");
    uint64_t inl = r.get<uint64_t>("invlists nlist"), cs = r.get<uint64_t>("invlists code_size");
    if (inl != nlist || cs != uint64_t(hd.code_size)) r.corrupt("inverted lists do not match the index");
    std::vector<uint64_t> sizes(nlist, 0);
    uint32_t lt = r.get<uint32_t>("list type");
    size_t ns = r.vec_count<uint64_t>("list sizes");
    const uint8_t* sp = r.raw(ns * 8, "list sizes");
    if (lt == fourcc("full")) {
      if (ns != nlist) r.corrupt("wrong number of list sizes");
      std::memcpy(sizes.data(), sp, ns * 8);
    } else if (lt == fourcc("sprs")) {
      if (ns % 2) r.corrupt("bad sparse list sizes");
      for (size_t j = 0; j < ns; j += 2) {
        uint64_t l, s;
        std::memcpy(&l, sp + 8 * j, 8);
        std::memcpy(&s, sp + 8 * j + 8, 8);
        if (l >= nlist) r.corrupt("sparse list number out of range");
        sizes[l] = s;
      }
    } else {
      r.corrupt("unknown inverted list size encoding");
    }
    uint64_t tot = 0;
    for (auto s : sizes) {
      if (s > r.remaining()) r.corrupt("inverted list larger than the file");
      tot += s;
    }
    if (tot != uint64_t(hd.ntotal)) r.corrupt("inverted list sizes do not add up to ntotal");
    if (tot > r.remaining() / (cs + 8)) r.corrupt("inverted lists larger than the file");
    for (size_t l = 0; l < nlist; ++l) {
      const size_t n = size_t(sizes[l]);
      if (!n) continue;
      const uint8_t* codes = r.raw(n * cs, "list codes");
      const uint8_t* ids = r.raw(n * 8, "list ids");
      idx->invlists->codes[l].assign(codes, codes + n * cs);
      idx->invlists->ids[l].resize(n);
      std::memcpy(idx->invlists->ids[l].data(), ids, n * 8);
    }
    idx->ntotal = hd.ntotal;
    idx->is_trained = hd.is_trained;
    if (dm) {
      try {
        idx->set_direct_map_type(dm);
      } catch (const Error&) {
        r.corrupt("ids do not fit the stored direct map type");
      }
    }
    return idx;
  }
  if (h == fourcc("IBHf")) {
    BHeader hd = read_bheader(r);
    HNSW g;
    int M = 0;
    read_faiss_hnsw(r, g, &M);
    if (g.levels.size() != size_t(hd.ntotal)) r.corrupt("HNSW graph size does not match ntotal");
    IndexBinaryPtr st = read_binary_nonnull(r, "binary HNSW storage");
    auto* fl = dynamic_cast<IndexBinaryFlat*>(st.get());
    if (!fl || fl->d != hd.d || fl->ntotal != hd.ntotal) r.corrupt("binary HNSW storage does not match the index");
    auto idx = build("IndexBinaryHNSW", [&] { return std::make_shared<IndexBinaryHNSW>(hd.d, M); });
    g.seed = idx->hnsw.seed;
    idx->hnsw = std::move(g);
    idx->codes = fl->xb;
    idx->ntotal = hd.ntotal;
    idx->is_trained = hd.is_trained;
    return idx;
  }
  if (h == fourcc("IBHh")) return read_binary_hash(r);
  if (h == fourcc("IBHm")) return read_binary_multihash(r);
  if (h == fourcc("IBFf")) {
    BHeader hd = read_bheader(r);
    IndexPtr sub = read_index_nonnull(r, "IndexBinaryFromFloat inner index");
    if (sub->d != hd.d || sub->ntotal != hd.ntotal) r.corrupt("IndexBinaryFromFloat inner index does not match");
    const idx_t n = sub->ntotal;
    sub->ntotal = 0;
    std::shared_ptr<IndexBinaryFromFloat> idx;
    try {
      idx = build("IndexBinaryFromFloat", [&] { return std::make_shared<IndexBinaryFromFloat>(sub); });
    } catch (...) {
      sub->ntotal = n;
      throw;
    }
    sub->ntotal = n;
    idx->ntotal = n;
    idx->is_trained = hd.is_trained;
    return idx;
  }
  const FourccInfo* f = find_fourcc(h);
  if (f && f->kind == FKind::index)
    ANNVIL_THROW(file_format, "this is a Faiss float index (", f->cls, ", fourcc ", f->code,
                 "): read it with read_index");
  if (f) ANNVIL_THROW(file_format, f->cls, " (fourcc ", f->code, ") is not supported");
  r.corrupt("unknown binary index fourcc '" + fourcc_str(h) + "'");
}

void write_binary(FWriter& w, const IndexBinary& idx) {
  if (auto* p = dynamic_cast<const IndexBinaryFlat*>(&idx)) {
    w.tag("IBxF");
    write_bheader(w, idx);
    w.vec(p->xb.data(), p->xb.size());
  } else if (auto* p = dynamic_cast<const IndexBinaryIDMap*>(&idx)) {
    w.tag(dynamic_cast<const IndexBinaryIDMap2*>(&idx) ? "IBM2" : "IBMp");
    write_bheader(w, idx);
    write_binary(w, *p->index);
    w.vec(p->id_map);
  } else if (auto* p = dynamic_cast<const IndexBinaryIVF*>(&idx)) {
    w.tag("IBwF");
    write_bheader(w, idx);
    w.put<uint64_t>(p->nlist);
    w.put<uint64_t>(p->nprobe);
    write_binary(w, *p->quantizer);
    w.put<int8_t>(int8_t(p->direct_map_type));
    if (p->direct_map_type == DIRECT_MAP_ARRAY)
      w.vec(p->direct_map_array);
    else
      w.put<uint64_t>(0);
    if (p->direct_map_type == DIRECT_MAP_HASHTABLE) {
      std::vector<int64_t> pairs;
      for (const auto& kv : p->direct_map_hash) {
        pairs.push_back(kv.first);
        pairs.push_back(kv.second);
      }
      w.put<uint64_t>(pairs.size() / 2);
      w.bytes(pairs.data(), pairs.size() * 8);
    }
    write_array_invlists(w, *p->invlists, size_t(idx.code_size));
  } else if (auto* p = dynamic_cast<const IndexBinaryHNSW*>(&idx)) {
    w.tag("IBHf");
    write_bheader(w, idx);
    write_faiss_hnsw(w, p->hnsw);
    w.tag("IBxF");
    write_bheader(w, idx);
    w.vec(p->codes.data(), p->codes.size());
  } else if (auto* p = dynamic_cast<const IndexBinaryHash*>(&idx)) {
    write_binary_hash(w, *p);
  } else if (auto* p = dynamic_cast<const IndexBinaryMultiHash*>(&idx)) {
    write_binary_multihash(w, *p);
  } else if (auto* p = dynamic_cast<const IndexBinaryFromFloat*>(&idx)) {
    w.tag("IBFf");
    write_bheader(w, idx);
    write_index(w, *p->index);
  } else {
    ANNVIL_THROW(value, "the binary index type ", idx.type_tag(), " cannot be written in Faiss's format");
  }
}

}  // namespace fio

std::shared_ptr<IndexBinary> faiss_deserialize_index_binary(const uint8_t* data, size_t n) {
  return fio::parse_whole<IndexBinaryPtr>(data, n, nullptr, false, [](fio::FReader& r) { return fio::read_binary(r); });
}

std::shared_ptr<IndexBinary> faiss_read_index_binary_file(const std::string& path) {
  auto buf = fio::read_whole_file(path);
  return faiss_deserialize_index_binary(buf->data(), buf->size());
}

std::vector<uint8_t> faiss_serialize_index_binary(const IndexBinary& index) {
  std::vector<uint8_t> out;
  fio::FWriter w(&out);
  fio::write_binary(w, index);
  return out;
}

void faiss_write_index_binary_file(const IndexBinary& index, const std::string& path) {
  fio::write_file_atomic(path, faiss_serialize_index_binary(index));
}

}  // namespace annvil
