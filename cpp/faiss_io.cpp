// Faiss's index file format: reader and writer (see faiss_io.h).
#include "faiss_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <unordered_set>

#include "hnsw/hnsw.h"
#include "binary/index_binary.h"
#include "binary/index_binary_hash.h"
#include "binary/index_binary_hnsw.h"
#include "binary/index_binary_ivf.h"
#include "index_flat.h"
#include "hnsw/index_hnsw.h"
#include "hnsw/index_hnsw_quant.h"
#include "index_idmap.h"
#include "ivf/index_ivf.h"
#include "ivf/index_ivf_flat.h"
#include "ivf/index_ivf_pq.h"
#include "ivf/index_ivf_pq_fastscan.h"
#include "index_pq.h"
#include "index_pq_fastscan.h"
#include "index_refine.h"
#include "index_sq.h"
#include "ivf/index_ivf_sq.h"
#include "core/io.h"
#include "quant/pq.h"
#include "quant/pq_fastscan.h"
#include "quant/sq.h"
#include "quant/vector_transform.h"

namespace annvil {

namespace {

constexpr uint32_t fourcc(const char* s) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}

std::string fourcc_str(uint32_t h) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    char c = char((h >> (8 * i)) & 0xff);
    if (c >= 32 && c < 127)
      s += c;
    else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", unsigned(uint8_t(c)));
      s += buf;
    }
  }
  return s;
}

// Faiss's fourccs and the classes they stand for (index_read.cpp), so that a
// file of a class annvil lacks gets an error that names it.
enum class FKind { index, binary, transform, invlists };
struct FourccInfo {
  const char* code;
  const char* cls;
  FKind kind;
};
const FourccInfo kFourccs[] = {
    {"null", "a missing index (null)", FKind::index},
    {"IxF2", "IndexFlatL2", FKind::index},
    {"IxFI", "IndexFlatIP", FKind::index},
    {"IxFl", "IndexFlat", FKind::index},
    {"IxFP", "IndexFlatL2Panorama", FKind::index},
    {"IxFp", "IndexFlatIPPanorama", FKind::index},
    {"IxHe", "IndexLSH", FKind::index},
    {"IxHE", "IndexLSH (old format)", FKind::index},
    {"IxPq", "IndexPQ", FKind::index},
    {"IxPQ", "IndexPQ (old format)", FKind::index},
    {"IxPo", "IndexPQ (old format)", FKind::index},
    {"IxRq", "IndexResidualQuantizer", FKind::index},
    {"IxRQ", "IndexResidualQuantizer (old format)", FKind::index},
    {"IxLS", "IndexLocalSearchQuantizer", FKind::index},
    {"IxPR", "IndexProductResidualQuantizer", FKind::index},
    {"IxPL", "IndexProductLocalSearchQuantizer", FKind::index},
    {"ImRQ", "ResidualCoarseQuantizer", FKind::index},
    {"ILfs", "IndexLocalSearchQuantizerFastScan", FKind::index},
    {"IRfs", "IndexResidualQuantizerFastScan", FKind::index},
    {"IPRf", "IndexProductResidualQuantizerFastScan", FKind::index},
    {"IPLf", "IndexProductLocalSearchQuantizerFastScan", FKind::index},
    {"IVLf", "IndexIVFLocalSearchQuantizerFastScan", FKind::index},
    {"IVRf", "IndexIVFResidualQuantizerFastScan", FKind::index},
    {"NPLf", "IndexIVFProductLocalSearchQuantizerFastScan", FKind::index},
    {"NPRf", "IndexIVFProductResidualQuantizerFastScan", FKind::index},
    {"IvFl", "IndexIVFFlat (legacy format)", FKind::index},
    {"IvFL", "IndexIVFFlat (legacy format)", FKind::index},
    {"IwFd", "IndexIVFFlatDedup", FKind::index},
    {"IwPn", "IndexIVFFlatPanorama", FKind::index},
    {"IwP2", "IndexIVFFlatPanorama", FKind::index},
    {"IwFl", "IndexIVFFlat", FKind::index},
    {"IxSQ", "IndexScalarQuantizer", FKind::index},
    {"IxLa", "IndexLattice", FKind::index},
    {"IvSQ", "IndexIVFScalarQuantizer (legacy format)", FKind::index},
    {"IwSQ", "IndexIVFScalarQuantizer", FKind::index},
    {"IwSq", "IndexIVFScalarQuantizer", FKind::index},
    {"IwLS", "IndexIVFLocalSearchQuantizer", FKind::index},
    {"IwRQ", "IndexIVFResidualQuantizer", FKind::index},
    {"IwPL", "IndexIVFProductLocalSearchQuantizer", FKind::index},
    {"IwPR", "IndexIVFProductResidualQuantizer", FKind::index},
    {"IwSh", "IndexIVFSpectralHash", FKind::index},
    {"IvPQ", "IndexIVFPQ (legacy format)", FKind::index},
    {"IwPQ", "IndexIVFPQ", FKind::index},
    {"IvQR", "IndexIVFPQR (legacy format)", FKind::index},
    {"IwQR", "IndexIVFPQR", FKind::index},
    {"IwIQ", "IndexIVFIndependentQuantizer", FKind::index},
    {"IxPT", "IndexPreTransform", FKind::index},
    {"Imiq", "MultiIndexQuantizer", FKind::index},
    {"IxRF", "IndexRefine", FKind::index},
    {"IxRP", "IndexRefinePanorama", FKind::index},
    {"IxMp", "IndexIDMap", FKind::index},
    {"IxM2", "IndexIDMap2", FKind::index},
    {"Ix2L", "Index2Layer", FKind::index},
    {"IHNf", "IndexHNSWFlat", FKind::index},
    {"IHNp", "IndexHNSWPQ", FKind::index},
    {"IHNs", "IndexHNSWSQ", FKind::index},
    {"IHN2", "IndexHNSW2Level", FKind::index},
    {"IHNc", "IndexHNSWCagra", FKind::index},
    {"IHc2", "IndexHNSWCagra", FKind::index},
    {"IHfP", "IndexHNSWFlatPanorama", FKind::index},
    {"IH00", "IndexHNSW", FKind::index},
    {"INSf", "IndexNSGFlat", FKind::index},
    {"INSp", "IndexNSGPQ", FKind::index},
    {"INSs", "IndexNSGSQ", FKind::index},
    {"INNf", "IndexNNDescentFlat", FKind::index},
    {"IPfs", "IndexPQFastScan", FKind::index},
    {"IwPf", "IndexIVFPQFastScan", FKind::index},
    {"IRMf", "IndexRowwiseMinMax", FKind::index},
    {"IRMh", "IndexRowwiseMinMaxFP16", FKind::index},
    {"IxEd", "IndexEDEN", FKind::index},
    {"IxEe", "IndexEDEN", FKind::index},
    {"IwEd", "IndexIVFEDEN", FKind::index},
    {"IwEe", "IndexIVFEDEN", FKind::index},
    {"Irfn", "IndexRaBitQFastScan", FKind::index},
    {"Irfs", "IndexRaBitQFastScan", FKind::index},
    {"Ixrq", "IndexRaBitQ", FKind::index},
    {"Ixrr", "IndexRaBitQ", FKind::index},
    {"Iwrq", "IndexIVFRaBitQ", FKind::index},
    {"Iwrr", "IndexIVFRaBitQ", FKind::index},
    {"Iwrn", "IndexIVFRaBitQFastScan", FKind::index},
    {"Iwrf", "IndexIVFRaBitQFastScan", FKind::index},
    {"ILVQ", "IndexSVSVamanaLVQ", FKind::index},
    {"ISVL", "IndexSVSVamanaLeanVec", FKind::index},
    {"ISVD", "IndexSVSVamana", FKind::index},
    {"ISV2", "IndexSVSVamana", FKind::index},
    {"ISVF", "IndexSVSFlat", FKind::index},
    {"ISIQ", "IndexSVSIVFLVQ", FKind::index},
    {"ISIL", "IndexSVSIVFLeanVec", FKind::index},
    {"ISID", "IndexSVSIVF", FKind::index},
    {"IBxF", "IndexBinaryFlat", FKind::binary},
    {"IBwF", "IndexBinaryIVF", FKind::binary},
    {"IBFf", "IndexBinaryFromFloat", FKind::binary},
    {"IBHf", "IndexBinaryHNSW", FKind::binary},
    {"IBHc", "IndexBinaryHNSWCagra", FKind::binary},
    {"IBMp", "IndexBinaryIDMap", FKind::binary},
    {"IBM2", "IndexBinaryIDMap2", FKind::binary},
    {"IBHh", "IndexBinaryHash", FKind::binary},
    {"IBHm", "IndexBinaryMultiHash", FKind::binary},
    {"rrot", "RandomRotationMatrix", FKind::transform},
    {"PCAm", "PCAMatrix", FKind::transform},
    {"PcAm", "PCAMatrix", FKind::transform},
    {"Pcam", "PCAMatrix", FKind::transform},
    {"LTra", "LinearTransform", FKind::transform},
    {"Viqm", "ITQMatrix", FKind::transform},
    {"Viqt", "ITQTransform", FKind::transform},
    {"RmDT", "RemapDimensionsTransform", FKind::transform},
    {"VNrm", "NormalizationTransform", FKind::transform},
    {"VCnt", "CenteringTransform", FKind::transform},
    {"HRot", "HadamardRotation", FKind::transform},
    {"ilar", "ArrayInvertedLists", FKind::invlists},
    {"ilbl", "BlockInvertedLists", FKind::invlists},
    {"il00", "no inverted lists (null)", FKind::invlists},
    {"ilod", "OnDiskInvertedLists", FKind::invlists},
    {"ilpn", "ArrayInvertedListsPanorama", FKind::invlists},
    {"ilp2", "ArrayInvertedListsPanorama", FKind::invlists},
};

const FourccInfo* find_fourcc(uint32_t h) {
  for (const auto& f : kFourccs)
    if (fourcc(f.code) == h) return &f;
  return nullptr;
}

[[noreturn]] void unsupported(uint32_t h, const char* what) {
  const FourccInfo* f = find_fourcc(h);
  if (f)
    ANNVIL_THROW(file_format, f->cls, " (fourcc ", f->code, ") is not supported", what);
  ANNVIL_THROW(file_format, "not a Faiss ", what[0] ? "index" : "index", " file: unknown fourcc '", fourcc_str(h), "'",
               what);
}

constexpr int kMaxDepth = 50;  // nesting of indexes (as Faiss): bounds the recursion

// ---- bounded reader over the file's bytes -------------------------------------------------
class FReader {
 public:
  FReader(const uint8_t* data, size_t n, std::shared_ptr<const void> keep, bool mapped)
      : data_(data), n_(n), keep_(std::move(keep)), mapped_(mapped) {}

  [[noreturn]] void corrupt(const std::string& why) const {
    ANNVIL_THROW(file_format, "corrupt or truncated Faiss index file: ", why, " (at byte ", pos_, ")");
  }
  size_t remaining() const { return n_ - pos_; }
  size_t pos() const { return pos_; }

  const uint8_t* raw(size_t nbytes, const char* what) {
    if (nbytes > n_ - pos_) corrupt(std::string("unexpected end of data in ") + what);
    const uint8_t* p = data_ + pos_;
    pos_ += nbytes;
    return p;
  }
  template <class T>
  T get(const char* what) {
    T v;
    std::memcpy(&v, raw(sizeof(T), what), sizeof(T));
    return v;
  }
  bool get_bool(const char* what) {
    uint8_t b = get<uint8_t>(what);
    if (b > 1) corrupt(std::string("bad boolean for ") + what);
    return b != 0;
  }
  uint32_t peek_fourcc() const {
    if (n_ - pos_ < 4) return 0;
    uint32_t h;
    std::memcpy(&h, data_ + pos_, 4);
    return h;
  }
  // u64 element count, checked against the bytes left
  template <class T>
  size_t vec_count(const char* what) {
    uint64_t n = get<uint64_t>(what);
    if (n > (n_ - pos_) / sizeof(T)) corrupt(std::string("vector larger than the file: ") + what);
    return size_t(n);
  }
  template <class T>
  void vec(std::vector<T>& v, const char* what) {
    size_t n = vec_count<T>(what);
    const uint8_t* p = raw(n * sizeof(T), what);
    v.resize(n);
    if (n) std::memcpy(v.data(), p, n * sizeof(T));
  }
  // n elements into a Storage: a view of the mapped file when aligned
  template <class T>
  void storage_elems(Storage<T>& s, size_t n, const char* what, size_t align = alignof(T)) {
    if (n > (n_ - pos_) / sizeof(T)) corrupt(std::string("array larger than the file: ") + what);
    const uint8_t* p = raw(n * sizeof(T), what);
    if (mapped_ && reinterpret_cast<uintptr_t>(p) % align == 0) {
      s.set_view(reinterpret_cast<const T*>(p), n, keep_);
    } else {
      auto& v = s.mut();
      v.resize(n);
      if (n) std::memcpy(v.data(), p, n * sizeof(T));
    }
  }
  template <class T>
  void storage(Storage<T>& s, const char* what) {
    size_t n = vec_count<T>(what);
    storage_elems(s, n, what);
  }

  int depth = 0;

 private:
  const uint8_t* data_;
  size_t n_;
  size_t pos_ = 0;
  std::shared_ptr<const void> keep_;
  bool mapped_;
};

struct DepthGuard {
  FReader& r;
  explicit DepthGuard(FReader& r_) : r(r_) {
    if (++r.depth > kMaxDepth) r.corrupt("indexes nested too deeply");
  }
  ~DepthGuard() { --r.depth; }
};

// annvil's own check helpers take a Reader for their error message
Reader& dummy_reader() {
  static thread_local Reader r(nullptr, 0, nullptr, false);
  return r;
}

// ---- writer -----------------------------------------------------------------------------
class FWriter {
 public:
  explicit FWriter(std::vector<uint8_t>* out) : out_(out) {}
  void bytes(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable<T>::value, "POD only");
    bytes(&v, sizeof(T));
  }
  void put_bool(bool b) { put<uint8_t>(b ? 1 : 0); }
  void tag(const char* s) { put<uint32_t>(fourcc(s)); }
  template <class T>
  void vec(const T* p, size_t n) {
    put<uint64_t>(n);
    bytes(p, n * sizeof(T));
  }
  template <class T>
  void vec(const std::vector<T>& v) {
    vec(v.data(), v.size());
  }

 private:
  std::vector<uint8_t>* out_;
};

// ---- the index header -----------------------------------------------------------------
struct FHeader {
  int d = 0;
  idx_t ntotal = 0;
  bool is_trained = true;
  MetricType metric = METRIC_L2;
  float metric_arg = 0;
};

FHeader read_header(FReader& r) {
  FHeader h;
  h.d = r.get<int32_t>("d");
  h.ntotal = r.get<int64_t>("ntotal");
  if (h.d < 0 || h.d > (1 << 20)) r.corrupt("bad dimension");
  if (h.ntotal < 0) r.corrupt("bad ntotal");
  r.get<int64_t>("header");
  r.get<int64_t>("header");
  h.is_trained = r.get_bool("is_trained");
  int32_t m = r.get<int32_t>("metric_type");
  if (!is_known_metric(m)) ANNVIL_THROW(file_format, "Faiss metric type ", m, " is not supported");
  h.metric = MetricType(m);
  if (m > 1) h.metric_arg = r.get<float>("metric_arg");
  return h;
}

void write_header(FWriter& w, const Index& idx, idx_t ntotal_override = -1) {
  w.put<int32_t>(idx.d);
  w.put<int64_t>(ntotal_override >= 0 ? ntotal_override : idx.ntotal);
  w.put<int64_t>(int64_t(1) << 20);
  w.put<int64_t>(int64_t(1) << 20);
  w.put_bool(idx.is_trained);
  w.put<int32_t>(int32_t(idx.metric_type));
  if (int(idx.metric_type) > 1) w.put<float>(idx.metric_arg);
}

// Errors of annvil's constructors (bad parameter combinations in the file)
// become file errors that say which Faiss class could not be built.
template <class F>
auto build(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::file_format) throw;
    ANNVIL_THROW(file_format, "invalid Faiss ", what, ": ", e.what());
  }
}

// ---- quantizers ---------------------------------------------------------------------------
ProductQuantizer read_pq(FReader& r, int d, bool is_trained) {
  uint64_t pd = r.get<uint64_t>("PQ d"), M = r.get<uint64_t>("PQ M"), nbits = r.get<uint64_t>("PQ nbits");
  if (pd != uint64_t(d)) r.corrupt("ProductQuantizer dimension differs from the index");
  if (M == 0 || M > pd || pd % M != 0) r.corrupt("bad ProductQuantizer M");
  if (nbits < 1 || nbits > 16) ANNVIL_THROW(file_format, "ProductQuantizer with nbits=", nbits, " is not supported");
  ProductQuantizer pq = build("ProductQuantizer", [&] { return ProductQuantizer(pd, M, nbits); });
  size_t n = r.vec_count<float>("PQ centroids");
  if (n != pq.d * pq.ksub) r.corrupt("ProductQuantizer centroid count is not d * ksub");
  std::memcpy(pq.centroids.data(), r.raw(n * sizeof(float), "PQ centroids"), n * sizeof(float));
  pq.is_trained = is_trained;
  return pq;
}

void write_pq(FWriter& w, const ProductQuantizer& pq) {
  w.put<uint64_t>(pq.d);
  w.put<uint64_t>(pq.M);
  w.put<uint64_t>(pq.nbits);
  w.vec(pq.centroids);
}

ScalarQuantizer read_sq(FReader& r, int d, bool is_trained) {
  int32_t qt = r.get<int32_t>("SQ qtype");
  r.get<int32_t>("SQ rangestat");
  r.get<float>("SQ rangestat_arg");
  uint64_t sd = r.get<uint64_t>("SQ d");
  uint64_t cs = r.get<uint64_t>("SQ code_size");
  if (sd != uint64_t(d)) r.corrupt("ScalarQuantizer dimension differs from the index");
  if (!ScalarQuantizer::valid_qtype(qt))
    ANNVIL_THROW(file_format, "ScalarQuantizer type ", qt, " is not supported (annvil has types 0 .. 8)");
  ScalarQuantizer sq = build("ScalarQuantizer", [&] { return ScalarQuantizer(size_t(sd), qt); });
  if (cs != sq.code_size) r.corrupt("ScalarQuantizer code size does not match its type");
  r.vec(sq.trained, "SQ trained");
  if (!sq.trained.empty() && sq.trained.size() != sq.trained_size()) r.corrupt("bad ScalarQuantizer parameters");
  if (is_trained && !sq.is_trained()) r.corrupt("trained index with an untrained ScalarQuantizer");
  if (!sq.needs_training()) sq.trained.clear();
  return sq;
}

void write_sq(FWriter& w, const ScalarQuantizer& sq) {
  w.put<int32_t>(sq.qtype);
  w.put<int32_t>(0);  // RS_minmax
  w.put<float>(0.f);
  w.put<uint64_t>(sq.d);
  w.put<uint64_t>(sq.code_size);
  w.vec(sq.trained);
}

// ---- Faiss's 4-bit fast-scan block layout -------------------------------------------------
// Within a block of bbs vectors (a multiple of 32), for each pair of
// sub-quantizers (2p, 2p + 1) and each group of 32 vectors, 32 bytes: the
// first 16 for sub-quantizer 2p, the next 16 for 2p + 1; byte j holds vector
// perm[j] in its low nibble and perm[j] + 16 in its high nibble, with
// perm = 0, 8, 1, 9, ..., 7, 15.  (annvil's own blocks are always 32 vectors
// without the permutation, pq_fastscan.h.)
inline size_t faiss_pq4_byte(size_t i, size_t m, size_t bbs, size_t M2, int* shift) {
  const size_t b = i / bbs, ii = i % bbs, s = ii / 32, j = ii % 32;
  const size_t jj = j & 15;
  const size_t pos = jj < 8 ? 2 * jj : 2 * (jj - 8) + 1;  // inverse of perm
  *shift = j < 16 ? 0 : 4;
  return b * bbs * M2 / 2 + ((m / 2) * (bbs / 32) + s) * 32 + 16 * (m & 1) + pos;
}

// blocks (Faiss layout) -> n plain 4-bit PQ codes (ceil(M / 2) bytes each)
void faiss_pq4_unpack(const uint8_t* blocks, size_t n, size_t M, size_t bbs, uint8_t* codes) {
  const size_t M2 = (M + 1) & ~size_t(1), cs = (M + 1) / 2;
  std::memset(codes, 0, n * cs);
  for (size_t i = 0; i < n; ++i)
    for (size_t m = 0; m < M; ++m) {
      int sh;
      uint8_t c = (blocks[faiss_pq4_byte(i, m, bbs, M2, &sh)] >> sh) & 15;
      codes[i * cs + m / 2] |= uint8_t(c << (4 * (m & 1)));
    }
}

// n plain codes -> blocks (Faiss layout), nblocks(n) * bbs * M2 / 2 bytes, zero padded
std::vector<uint8_t> faiss_pq4_pack(const uint8_t* codes, size_t n, size_t M, size_t bbs) {
  const size_t M2 = (M + 1) & ~size_t(1), cs = (M + 1) / 2;
  const size_t nb = (n + bbs - 1) / bbs;
  std::vector<uint8_t> out(nb * bbs * M2 / 2, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t m = 0; m < M; ++m) {
      int sh;
      uint8_t c = (codes[i * cs + m / 2] >> (4 * (m & 1))) & 15;
      out[faiss_pq4_byte(i, m, bbs, M2, &sh)] |= uint8_t(c << sh);
    }
  return out;
}

// ---- forward declarations ---------------------------------------------------------------
IndexPtr read_index(FReader& r);
void write_index(FWriter& w, const Index& idx);

IndexPtr read_index_nonnull(FReader& r, const char* what) {
  IndexPtr p = read_index(r);
  if (!p) r.corrupt(std::string("missing (null) ") + what);
  return p;
}

// ---- IVF ----------------------------------------------------------------------------------
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

// ---- HNSW ---------------------------------------------------------------------------------
// Faiss's graph: per node i, levels[i] = number of levels it is on (>= 1);
// its neighbours at level l are neighbors[offsets[i] + cum[l] ..
// offsets[i] + cum[l + 1]), -1 padded, with cum = cum_nneighbor_per_level
// (0, 2M, 3M, 4M, ... for Faiss's defaults).  annvil: links0 holds 2M per
// node, upper_links M per (node, level >= 1) block, levels[i] = top level.
void read_faiss_hnsw(FReader& r, HNSW& g, int* M_out) {
  std::vector<double> probas;
  std::vector<int32_t> cum, levels;
  std::vector<uint64_t> offsets;
  r.vec(probas, "HNSW assign_probas");
  r.vec(cum, "HNSW cum_nneighbor_per_level");
  r.vec(levels, "HNSW levels");
  r.vec(offsets, "HNSW offsets");
  const size_t nnb = r.vec_count<int32_t>("HNSW neighbors");
  const int32_t* nb_raw = reinterpret_cast<const int32_t*>(r.raw(nnb * 4, "HNSW neighbors"));
  std::vector<int32_t> nb(nnb);
  if (nnb) std::memcpy(nb.data(), nb_raw, nnb * 4);
  const int32_t ep = r.get<int32_t>("HNSW entry_point");
  const int32_t max_level = r.get<int32_t>("HNSW max_level");
  const int32_t efc = r.get<int32_t>("HNSW efConstruction");
  const int32_t efs = r.get<int32_t>("HNSW efSearch");
  r.get<int32_t>("HNSW upper_beam");

  if (cum.size() < 2 || cum[0] != 0 || cum[1] <= 0 || cum[1] % 2) r.corrupt("bad HNSW cum_nneighbor_per_level");
  const int M = cum[1] / 2;
  if (M < 2 || M > 4096) ANNVIL_THROW(file_format, "HNSW with ", cum[1], " level-0 neighbours is not supported");
  for (size_t l = 1; l + 1 < cum.size(); ++l)
    if (cum[l + 1] - cum[l] != M)
      ANNVIL_THROW(file_format, "HNSW with per-level neighbour counts other than (2M, M, M, ...) is not supported");
  const size_t N = levels.size();
  if (N >= size_t(std::numeric_limits<int32_t>::max())) r.corrupt("HNSW too large");
  if (offsets.size() != N + 1 || offsets[0] != 0) r.corrupt("HNSW offsets do not match the levels");
  if (efc <= 0 || efs <= 0 || efc > (1 << 20) || efs > (1 << 20)) r.corrupt("bad HNSW ef parameters");
  g.M = M;
  g.efConstruction = efc;
  g.efSearch = efs;
  g.levels.resize(N);
  g.upper_begin.assign(N, 0);
  size_t blocks = 0;
  int top = -1;
  for (size_t i = 0; i < N; ++i) {
    const int32_t L = levels[i];
    if (L < 1 || size_t(L) >= cum.size() || L > 101) r.corrupt("bad HNSW node level");
    if (offsets[i + 1] != offsets[i] + uint64_t(cum[size_t(L)])) r.corrupt("HNSW offsets do not match the levels");
    g.levels[i] = int8_t(L - 1);
    g.upper_begin[i] = L > 1 ? uint32_t(blocks) : 0;
    blocks += size_t(L - 1);
    if (blocks > std::numeric_limits<uint32_t>::max()) r.corrupt("HNSW too large");
    top = std::max(top, L - 1);
  }
  if (offsets[N] > nb.size()) r.corrupt("HNSW neighbors shorter than the offsets");
  auto& l0 = g.links0.mut();
  auto& up = g.upper_links.mut();
  l0.assign(N * 2 * size_t(M), -1);
  up.assign(blocks * size_t(M), -1);
  for (size_t i = 0; i < N; ++i) {
    const int32_t* src = nb.data() + offsets[i];
    std::memcpy(l0.data() + i * 2 * M, src, size_t(2 * M) * 4);
    for (int lev = 1; lev < levels[i]; ++lev)
      std::memcpy(up.data() + (size_t(g.upper_begin[i]) + lev - 1) * M, src + cum[size_t(lev)], size_t(M) * 4);
  }
  // Faiss may leave entries after a -1; annvil ends a list at the first -1
  auto clean = [&](int32_t* p, size_t n) {
    bool end = false;
    for (size_t j = 0; j < n; ++j) {
      if (p[j] < 0) end = true;
      if (end) p[j] = -1;
    }
  };
  for (size_t i = 0; i < N; ++i) clean(l0.data() + i * 2 * M, size_t(2 * M));
  for (size_t b = 0; b < blocks; ++b) clean(up.data() + b * M, size_t(M));
  g.max_level = N ? max_level : -1;
  g.entry_point = N ? ep : -1;
  if (N && max_level != top) r.corrupt("HNSW max_level does not match the node levels");
  check_hnsw_graph(dummy_reader(), g, N);
  *M_out = M;
}

void write_faiss_hnsw(FWriter& w, const HNSW& g) {
  const int M = g.M;
  const size_t N = g.ntotal;
  // Faiss's set_default_probas(M, 1 / ln M): levels while the probability >= 1e-9
  std::vector<double> probas;
  std::vector<int32_t> cum{0};
  const float mult = float(1.0 / std::log(double(M)));
  int nn = 0;
  for (int level = 0;; ++level) {
    // the quotients in float, exp in double, the product rounded to float (as Faiss)
    float p = float(std::exp(double(-level / mult)) * (1 - std::exp(double(-1 / mult))));
    if (p < 1e-9) break;
    probas.push_back(p);
    nn += level == 0 ? 2 * M : M;
    cum.push_back(nn);
  }
  int top = 0;
  for (size_t i = 0; i < N; ++i) top = std::max(top, int(g.levels[i]));
  while (int(cum.size()) < top + 2) {  // a node above Faiss's default levels
    nn += M;
    cum.push_back(nn);
    probas.push_back(0.0);
  }
  std::vector<int32_t> levels(N);
  std::vector<uint64_t> offsets(N + 1, 0);
  for (size_t i = 0; i < N; ++i) {
    levels[i] = int32_t(g.levels[i]) + 1;
    offsets[i + 1] = offsets[i] + uint64_t(cum[size_t(levels[i])]);
  }
  std::vector<int32_t> nb(offsets[N], -1);
  for (size_t i = 0; i < N; ++i) {
    int32_t* dst = nb.data() + offsets[i];
    std::memcpy(dst, g.links(int32_t(i), 0), size_t(2 * M) * 4);
    for (int lev = 1; lev < levels[i]; ++lev) std::memcpy(dst + cum[size_t(lev)], g.links(int32_t(i), lev), size_t(M) * 4);
  }
  w.vec(probas);
  w.vec(cum);
  w.vec(levels);
  w.vec(offsets);
  w.vec(nb);
  w.put<int32_t>(g.entry_point);
  w.put<int32_t>(g.max_level);
  w.put<int32_t>(g.efConstruction);
  w.put<int32_t>(g.efSearch);
  w.put<int32_t>(1);  // upper_beam (deprecated)
}

// ---- vector transforms --------------------------------------------------------------------
bool orthonormal_rows(const std::vector<float>& A, int d_in, int d_out) {
  if (d_out > d_in) return false;
  for (int i = 0; i < d_out; ++i)
    for (int j = 0; j < d_out; ++j) {
      double s = 0;
      for (int k = 0; k < d_in; ++k) s += double(A[size_t(i) * d_in + k]) * A[size_t(j) * d_in + k];
      if (std::fabs(s - (i == j ? 1.0 : 0.0)) > 4e-5) return false;
    }
  return true;
}

VectorTransformPtr read_transform(FReader& r) {
  uint32_t h = r.get<uint32_t>("transform fourcc");
  if (h == fourcc("rrot") || h == fourcc("LTra")) {
    bool have_bias = r.get_bool("have_bias");
    std::vector<float> A, b;
    r.vec(A, "transform matrix");
    r.vec(b, "transform bias");
    int32_t din = r.get<int32_t>("d_in"), dout = r.get<int32_t>("d_out");
    bool trained = r.get_bool("transform is_trained");
    if (din <= 0 || dout <= 0 || din > (1 << 20) || dout > (1 << 20)) r.corrupt("bad transform dimensions");
    if (A.size() != size_t(din) * size_t(dout)) r.corrupt("transform matrix size is not d_in * d_out");
    if (have_bias ? b.size() != size_t(dout) : !b.empty()) r.corrupt("transform bias size is not d_out");
    std::shared_ptr<LinearTransform> t;
    if (h == fourcc("rrot"))
      t = build("RandomRotationMatrix", [&] { return std::make_shared<RandomRotationMatrix>(din, dout); });
    else
      t = build("LinearTransform", [&] { return std::make_shared<LinearTransform>(din, dout, have_bias); });
    t->have_bias = have_bias;
    t->A = std::move(A);
    t->b = std::move(b);
    t->is_trained = trained;
    t->is_orthonormal = trained && orthonormal_rows(t->A, din, dout);
    return t;
  }
  if (h == fourcc("VNrm")) {
    float norm = r.get<float>("norm");
    int32_t din = r.get<int32_t>("d_in"), dout = r.get<int32_t>("d_out");
    r.get_bool("transform is_trained");
    if (din <= 0 || din > (1 << 20) || din != dout) r.corrupt("bad normalization transform dimensions");
    if (norm != 2.f) ANNVIL_THROW(file_format, "NormalizationTransform with norm ", norm, " is not supported (only L2)");
    return build("NormalizationTransform", [&] { return std::make_shared<NormalizationTransform>(din, norm); });
  }
  const FourccInfo* f = find_fourcc(h);
  if (f && f->kind == FKind::transform) {
    ANNVIL_THROW(file_format, f->cls, " (fourcc ", f->code, ") is not supported yet");
  }
  r.corrupt("unknown vector transform fourcc '" + fourcc_str(h) + "'");
}

void write_transform(FWriter& w, const VectorTransform& vt) {
  if (auto* nt = dynamic_cast<const NormalizationTransform*>(&vt)) {
    w.tag("VNrm");
    w.put<float>(nt->norm);
  } else if (auto* lt = dynamic_cast<const LinearTransform*>(&vt)) {
    // OPQMatrix is written as Faiss writes it: a plain LinearTransform
    w.tag(dynamic_cast<const RandomRotationMatrix*>(&vt) ? "rrot" : "LTra");
    w.put_bool(lt->have_bias);
    w.vec(lt->A);
    if (lt->have_bias)
      w.vec(lt->b);
    else
      w.put<uint64_t>(0);
  } else {
    ANNVIL_THROW(value, "the vector transform ", vt.type_tag(), " cannot be written in Faiss's format");
  }
  w.put<int32_t>(vt.d_in);
  w.put<int32_t>(vt.d_out);
  w.put_bool(vt.is_trained);
}

// ---- the index readers --------------------------------------------------------------------
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

IndexPtr read_idmap(FReader& r, bool map2) {
  FHeader hd = read_header(r);
  IndexPtr sub = read_index_nonnull(r, "IDMap inner index");
  if (sub->d != hd.d) r.corrupt("IDMap dimension differs from its index");
  const idx_t sub_n = sub->ntotal;
  sub->ntotal = 0;  // the constructor wants an empty index
  std::shared_ptr<IndexIDMap> idx = build("IndexIDMap", [&]() -> std::shared_ptr<IndexIDMap> {
    if (map2) return std::make_shared<IndexIDMap2>(sub);
    return std::make_shared<IndexIDMap>(sub);
  });
  sub->ntotal = sub_n;
  r.vec(idx->id_map, "IDMap ids");
  if (idx->id_map.size() != size_t(sub_n) || hd.ntotal != sub_n) r.corrupt("IDMap size does not match its index");
  idx->ntotal = hd.ntotal;
  idx->is_trained = hd.is_trained;
  if (map2) {
    auto* m2 = static_cast<IndexIDMap2*>(idx.get());
    m2->construct_rev_map();
    if (m2->rev_map.size() != m2->id_map.size()) r.corrupt("IndexIDMap2 with duplicate ids");
  }
  return idx;
}

IndexPtr read_ivf_flat(FReader& r) {
  IvfHeader v = read_ivf_header(r);
  if (v.h.d == 0) r.corrupt("bad dimension");
  auto idx = build("IndexIVFFlat",
                   [&] { return std::make_shared<IndexIVFFlat>(v.quantizer, v.h.d, v.nlist, v.h.metric); });
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
  if (idx->is_trained) build("IndexIVFPQ", [&] { idx->precompute_table(); return 0; });
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
  if (idx->is_trained) build("IndexIVFPQFastScan", [&] { idx->precompute_table(); return 0; });
  return idx;
}

IndexPtr read_sq_index(FReader& r) {
  FHeader hd = read_header(r);
  if (hd.d == 0) r.corrupt("bad dimension");
  ScalarQuantizer sq = read_sq(r, hd.d, hd.is_trained);
  auto idx = build("IndexScalarQuantizer",
                   [&] { return std::make_shared<IndexScalarQuantizer>(hd.d, sq.qtype, hd.metric); });
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

IndexPtr read_hnsw(FReader& r, uint32_t h) {
  FHeader hd = read_header(r);
  if (hd.d == 0) r.corrupt("bad dimension");
  HNSW g;
  int M = 0;
  read_faiss_hnsw(r, g, &M);
  if (g.levels.size() != size_t(hd.ntotal)) r.corrupt("HNSW graph size does not match ntotal");
  IndexPtr storage = read_index_nonnull(r, "HNSW storage");
  if (storage->d != hd.d || storage->ntotal != hd.ntotal) r.corrupt("HNSW storage does not match the index");
  std::shared_ptr<IndexHNSW> idx;
  if (h == fourcc("IHNf")) {
    auto* fl = dynamic_cast<IndexFlat*>(storage.get());
    if (!fl) r.corrupt("IndexHNSWFlat storage is not an IndexFlat");
    idx = build("IndexHNSWFlat", [&] { return std::make_shared<IndexHNSWFlat>(hd.d, M, hd.metric); });
    idx->xb.assign_bytes_of(fl->codes);  // shares a mapped view, or copies
  } else if (h == fourcc("IHNs")) {
    auto* sq = dynamic_cast<IndexScalarQuantizer*>(storage.get());
    if (!sq) r.corrupt("IndexHNSWSQ storage is not an IndexScalarQuantizer");
    auto q = build("IndexHNSWSQ", [&] { return std::make_shared<IndexHNSWSQ>(hd.d, sq->sq.qtype, M, hd.metric); });
    q->sq = sq->sq;
    q->code_size = q->sq.code_size;
    q->codes = sq->codes;
    idx = q;
  } else {
    auto* pq = dynamic_cast<IndexPQ*>(storage.get());
    if (!pq) r.corrupt("IndexHNSWPQ storage is not an IndexPQ");
    auto q = build("IndexHNSWPQ", [&] {
      return std::make_shared<IndexHNSWPQ>(hd.d, int(pq->pq.M), M, int(pq->pq.nbits), hd.metric);
    });
    q->pq = pq->pq;
    q->code_size = q->pq.code_size;
    q->codes = pq->codes;
    idx = q;
  }
  if (storage->metric_type != hd.metric) r.corrupt("HNSW storage metric differs from the index");
  g.seed = idx->hnsw.seed;
  idx->hnsw = std::move(g);
  idx->ntotal = hd.ntotal;
  idx->metric_arg = hd.metric_arg;
  idx->is_trained = hd.is_trained;
  idx->is_f16 = false;
  idx->allow_f16 = false;  // keep float32 storage, as Faiss
  idx->deleted.assign((size_t(hd.ntotal) + 63) / 64, 0);
  idx->n_deleted = 0;
  return idx;
}

IndexPtr read_refine(FReader& r) {
  FHeader hd = read_header(r);
  IndexPtr base = read_index_nonnull(r, "IndexRefine base index");
  IndexPtr refine = read_index_nonnull(r, "IndexRefine refine index");
  float kf = r.get<float>("k_factor");
  if (!std::isfinite(kf) || kf < 1.f || kf > 1000.f) r.corrupt("bad IndexRefine k_factor");
  if (base->d != hd.d || refine->d != hd.d || base->ntotal != hd.ntotal || refine->ntotal != hd.ntotal)
    r.corrupt("refine index parts do not match");
  std::shared_ptr<IndexRefine> idx = build("IndexRefine", [&]() -> std::shared_ptr<IndexRefine> {
    if (dynamic_cast<IndexFlat*>(refine.get())) return std::make_shared<IndexRefineFlat>(base, refine);
    return std::make_shared<IndexRefine>(base, refine);
  });
  idx->k_factor = kf;
  idx->is_trained = hd.is_trained;
  return idx;
}

IndexPtr read_pretransform(FReader& r) {
  FHeader hd = read_header(r);
  int32_t nt = r.get<int32_t>("transform chain length");
  if (nt < 0 || nt > 1024) r.corrupt("bad transform chain length");
  std::vector<VectorTransformPtr> chain;
  for (int i = 0; i < nt; ++i) chain.push_back(read_transform(r));
  IndexPtr sub = read_index_nonnull(r, "IndexPreTransform inner index");
  auto idx = build("IndexPreTransform", [&] { return std::make_shared<IndexPreTransform>(sub); });
  try {
    for (size_t i = chain.size(); i-- > 0;) idx->prepend_transform(chain[i]);
  } catch (const Error&) {
    r.corrupt("transform chain dimensions do not match");
  }
  if (idx->d != hd.d || idx->ntotal != hd.ntotal) r.corrupt("pre-transform index does not match its parts");
  idx->is_trained = hd.is_trained;
  return idx;
}

IndexPtr read_index(FReader& r) {
  DepthGuard guard(r);
  const uint32_t h = r.get<uint32_t>("index fourcc");
  if (h == fourcc("null")) return nullptr;
  if (h == fourcc("IxF2") || h == fourcc("IxFI") || h == fourcc("IxFl")) return read_flat(r, h);
  if (h == fourcc("IxMp") || h == fourcc("IxM2")) return read_idmap(r, h == fourcc("IxM2"));
  if (h == fourcc("IwFl")) return read_ivf_flat(r);
  if (h == fourcc("IwSq")) return read_ivf_sq(r);
  if (h == fourcc("IwPQ")) return read_ivf_pq(r);
  if (h == fourcc("IwPf")) return read_ivf_pq_fastscan(r);
  if (h == fourcc("IxSQ")) return read_sq_index(r);
  if (h == fourcc("IxPq")) return read_pq_index(r);
  if (h == fourcc("IPfs")) return read_pq_fastscan(r);
  if (h == fourcc("IHNf") || h == fourcc("IHNs") || h == fourcc("IHNp")) return read_hnsw(r, h);
  if (h == fourcc("IxRF")) return read_refine(r);
  if (h == fourcc("IxPT")) return read_pretransform(r);
  const FourccInfo* f = find_fourcc(h);
  if (f && f->kind == FKind::binary)
    ANNVIL_THROW(file_format, "this is a Faiss binary index (", f->cls, ", fourcc ", f->code,
                 "): read it with read_index_binary");
  if (f) ANNVIL_THROW(file_format, f->cls, " (fourcc ", f->code, ") is not supported");
  r.corrupt("unknown index fourcc '" + fourcc_str(h) + "'");
}

// ---- the index writers --------------------------------------------------------------------
void write_flat_storage(FWriter& w, const Index& like, const float* xb, size_t n, idx_t ntotal) {
  const bool l2 = like.metric_type == METRIC_L2, ip = like.metric_type == METRIC_INNER_PRODUCT;
  w.tag(l2 ? "IxF2" : ip ? "IxFI" : "IxFl");
  write_header(w, like, ntotal);
  w.vec(xb, n);
}

// An index of the same header fields as `like` (for HNSW storage)
void write_index(FWriter& w, const Index& idx) {
  if (auto* p = dynamic_cast<const IndexFlat*>(&idx)) {
    write_flat_storage(w, idx, p->get_xb(), size_t(idx.ntotal) * size_t(idx.d), idx.ntotal);
  } else if (auto* p = dynamic_cast<const IndexIDMap*>(&idx)) {
    w.tag(dynamic_cast<const IndexIDMap2*>(&idx) ? "IxM2" : "IxMp");
    write_header(w, idx);
    write_index(w, *p->index);
    w.vec(p->id_map);
  } else if (auto* p = dynamic_cast<const IndexIVFFlat*>(&idx)) {
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
  } else if (auto* p = dynamic_cast<const IndexHNSW*>(&idx)) {
    if (p->n_deleted)
      ANNVIL_THROW(value, "this HNSW index has ", p->n_deleted,
                   " vectors marked deleted, which Faiss's format cannot hold: call compact() first");
    auto* sq = dynamic_cast<const IndexHNSWSQ*>(&idx);
    auto* pq = dynamic_cast<const IndexHNSWPQ*>(&idx);
    if (!sq && !pq && !dynamic_cast<const IndexHNSWFlat*>(&idx))
      ANNVIL_THROW(value, "this HNSW index type cannot be written in Faiss's format");
    w.tag(sq ? "IHNs" : pq ? "IHNp" : "IHNf");
    write_header(w, idx);
    write_faiss_hnsw(w, p->hnsw);
    const size_t N = size_t(p->ntotal);
    if (sq) {
      w.tag("IxSQ");
      write_header(w, idx);
      write_sq(w, sq->sq);
      w.vec(sq->codes.data(), sq->codes.size());
    } else if (pq) {
      w.tag("IxPq");
      write_header(w, idx);
      write_pq(w, pq->pq);
      w.vec(pq->codes.data(), pq->codes.size());
      w.put<int32_t>(0);
      w.put_bool(false);
      w.put<int32_t>(int32_t(pq->pq.nbits * pq->pq.M + 1));
    } else if (p->is_f16) {
      std::vector<float> xb(N * size_t(p->d));
      for (size_t i = 0; i < xb.size(); ++i) xb[i] = half_to_float(p->xh[i]);
      write_flat_storage(w, idx, xb.data(), xb.size(), p->ntotal);
    } else {
      write_flat_storage(w, idx, p->xb.data(), p->xb.size(), p->ntotal);
    }
  } else if (auto* p = dynamic_cast<const IndexRefine*>(&idx)) {
    w.tag("IxRF");
    write_header(w, idx);
    write_index(w, *p->base_index);
    write_index(w, *p->refine_index);
    w.put<float>(p->k_factor);
  } else if (auto* p = dynamic_cast<const IndexPreTransform*>(&idx)) {
    w.tag("IxPT");
    write_header(w, idx);
    w.put<int32_t>(int32_t(p->chain.size()));
    for (const auto& t : p->chain) write_transform(w, *t);
    write_index(w, *p->index);
  } else {
    ANNVIL_THROW(value, "the index type ", idx.type_tag(), " cannot be written in Faiss's format");
  }
}

// ---- files ----------------------------------------------------------------------------------
struct Mapping {
  void* addr = nullptr;
  size_t len = 0;
  ~Mapping() {
    if (addr && addr != MAP_FAILED) munmap(addr, len);
  }
};

std::shared_ptr<std::vector<uint8_t>> read_whole_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ANNVIL_THROW(io, "cannot open index file '", path, "': ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    ANNVIL_THROW(io, "cannot stat '", path, "': ", std::strerror(errno));
  }
  auto buf = std::make_shared<std::vector<uint8_t>>(size_t(st.st_size));
  size_t off = 0;
  while (off < buf->size()) {
    ssize_t k = ::read(fd, buf->data() + off, buf->size() - off);
    if (k < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      ANNVIL_THROW(io, "read failed on '", path, "': ", std::strerror(errno));
    }
    if (k == 0) break;
    off += size_t(k);
  }
  ::close(fd);
  buf->resize(off);
  return buf;
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::random_device rd;
  char suffix[48];
  std::snprintf(suffix, sizeof(suffix), ".tmp-%ld-%08x", long(::getpid()), unsigned(rd()));
  const std::string tmp = path + suffix;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) ANNVIL_THROW(io, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t k = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (k < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      ANNVIL_THROW(io, "write failed on '", tmp, "': ", std::strerror(e));
    }
    off += size_t(k);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    ANNVIL_THROW(io, "fsync failed: ", std::strerror(e));
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    ANNVIL_THROW(io, "cannot rename '", tmp, "' to '", path, "': ", std::strerror(e));
  }
}

template <class T, class F>
T parse_whole(const uint8_t* data, size_t n, std::shared_ptr<const void> keep, bool mapped, F&& read_one) {
  FReader r(data, n, std::move(keep), mapped);
  T idx = build("index", [&] { return read_one(r); });
  if (!idx) ANNVIL_THROW(file_format, "the Faiss file holds no index (null)");
  if (r.remaining() != 0) r.corrupt("trailing bytes after the index");
  return idx;
}

}  // namespace

// ---- public: float indexes -------------------------------------------------------------------
std::string faiss_class_of_fourcc(uint32_t h) {
  const FourccInfo* f = find_fourcc(h);
  return f ? f->cls : "";
}

bool is_faiss_index_data(const uint8_t* data, size_t n) {
  if (n < 4) return false;
  uint32_t h;
  std::memcpy(&h, data, 4);
  const FourccInfo* f = find_fourcc(h);
  return f && (f->kind == FKind::index || f->kind == FKind::binary);
}

bool is_faiss_binary_index_data(const uint8_t* data, size_t n) {
  if (n < 4) return false;
  uint32_t h;
  std::memcpy(&h, data, 4);
  const FourccInfo* f = find_fourcc(h);
  return f && f->kind == FKind::binary;
}

IndexPtr faiss_deserialize_index(const uint8_t* data, size_t n, std::shared_ptr<const void> keep, bool mapped) {
  return parse_whole<IndexPtr>(data, n, std::move(keep), mapped, [](FReader& r) { return read_index(r); });
}

IndexPtr faiss_read_index_file(const std::string& path, bool mmap) {
  // The file is mapped either way: parsed in place, its arrays either viewed
  // (mmap) or copied straight into the index (no intermediate whole-file
  // buffer); without mmap the mapping is released after the read.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ANNVIL_THROW(io, "cannot open index file '", path, "': ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size == 0) {
    ::close(fd);
    ANNVIL_THROW(file_format, "corrupt or truncated Faiss index file: empty file '", path, "'");
  }
  auto m = std::make_shared<Mapping>();
  m->len = size_t(st.st_size);
  m->addr = ::mmap(nullptr, m->len, PROT_READ, mmap ? MAP_SHARED : (MAP_PRIVATE | MAP_POPULATE), fd, 0);
  ::close(fd);
  if (m->addr == MAP_FAILED) {
    if (mmap) ANNVIL_THROW(io, "cannot mmap '", path, "': ", std::strerror(errno));
    auto buf = read_whole_file(path);  // e.g. a file system without mmap
    return faiss_deserialize_index(buf->data(), buf->size(), nullptr, false);
  }
  if (!mmap) return faiss_deserialize_index(static_cast<const uint8_t*>(m->addr), m->len, nullptr, false);
  return faiss_deserialize_index(static_cast<const uint8_t*>(m->addr), m->len, m, true);
}

std::vector<uint8_t> faiss_serialize_index(const Index& index) {
  std::vector<uint8_t> out;
  FWriter w(&out);
  write_index(w, index);
  return out;
}

void faiss_write_index_file(const Index& index, const std::string& path) {
  write_file_atomic(path, faiss_serialize_index(index));
}

// ---- binary indexes ---------------------------------------------------------------------------
namespace {

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
    if (sub->d != hd.d) r.corrupt("IDMap dimension differs from its index");
    const idx_t sub_n = sub->ntotal;
    sub->ntotal = 0;
    std::shared_ptr<IndexBinaryIDMap> idx = build("IndexBinaryIDMap", [&]() -> std::shared_ptr<IndexBinaryIDMap> {
      if (map2) return std::make_shared<IndexBinaryIDMap2>(sub);
      return std::make_shared<IndexBinaryIDMap>(sub);
    });
    sub->ntotal = sub_n;
    r.vec(idx->id_map, "IDMap ids");
    if (idx->id_map.size() != size_t(sub_n) || hd.ntotal != sub_n) r.corrupt("IDMap size does not match its index");
    idx->ntotal = hd.ntotal;
    idx->is_trained = hd.is_trained;
    if (map2) {
      auto* m2 = static_cast<IndexBinaryIDMap2*>(idx.get());
      m2->construct_rev_map();
      if (m2->rev_map.size() != m2->id_map.size()) r.corrupt("IndexBinaryIDMap2 with duplicate ids");
    }
    return idx;
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

}  // namespace

std::shared_ptr<IndexBinary> faiss_deserialize_index_binary(const uint8_t* data, size_t n) {
  return parse_whole<IndexBinaryPtr>(data, n, nullptr, false, [](FReader& r) { return read_binary(r); });
}

std::shared_ptr<IndexBinary> faiss_read_index_binary_file(const std::string& path) {
  auto buf = read_whole_file(path);
  return faiss_deserialize_index_binary(buf->data(), buf->size());
}

std::vector<uint8_t> faiss_serialize_index_binary(const IndexBinary& index) {
  std::vector<uint8_t> out;
  FWriter w(&out);
  write_binary(w, index);
  return out;
}

void faiss_write_index_binary_file(const IndexBinary& index, const std::string& path) {
  write_file_atomic(path, faiss_serialize_index_binary(index));
}

}  // namespace annvil
