// Internal to the Faiss-format reader and writer (faiss_io.h): the bounded
// byte reader and the writer, the index header, and what each family file
// (faiss_io_<family>.cpp) shares with the others.  Every reader takes an
// FReader positioned after the fourcc it dispatches on; every family writer
// returns false for an index that is not of its family.
//   faiss_io_common.cpp  fourcc table, header, PQ / SQ, 4-bit block layout, transforms
//   faiss_io_flat.cpp    IndexFlat, IndexScalarQuantizer, IndexPQ, IndexPQFastScan
//   faiss_io_ivf.cpp     IVF header and array inverted lists, IVF-Flat / SQ / PQ / PQ fast-scan
//   faiss_io_hnsw.cpp    the HNSW graph, IndexHNSW{Flat,SQ,PQ}
//   faiss_io_binary.cpp  the binary indexes
//   ../faiss_io.cpp      the dispatch, the wrappers (IDMap, Refine, PreTransform), files
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/index.h"
#include "core/io.h"
#include "quant/pq.h"
#include "quant/sq.h"
#include "quant/vector_transform.h"

namespace annvil {

struct HNSW;
struct IndexIVF;
struct InvertedLists;

namespace fio {

constexpr uint32_t fourcc(const char* s) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}

std::string fourcc_str(uint32_t h);

// Faiss's fourccs and the classes they stand for (index_read.cpp), so that a
// file of a class annvil lacks gets an error that names it.
enum class FKind { index, binary, transform, invlists };
struct FourccInfo {
  const char* code;
  const char* cls;
  FKind kind;
};
const FourccInfo* find_fourcc(uint32_t h);
// throws: the class of fourcc h is not supported `what` (or h is unknown)
[[noreturn]] void unsupported(uint32_t h, const char* what);

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
  // n elements into a Storage: a view of the mapped file when aligned to
  // `align` (a byte Storage holding floats asks for float alignment)
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
Reader& dummy_reader();

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

FHeader read_header(FReader& r);
void write_header(FWriter& w, const Index& idx, idx_t ntotal_override = -1);

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

// ---- quantizers and the 4-bit block layout (faiss_io_common.cpp) --------------------------
ProductQuantizer read_pq(FReader& r, int d, bool is_trained);
void write_pq(FWriter& w, const ProductQuantizer& pq);
ScalarQuantizer read_sq(FReader& r, int d, bool is_trained);
void write_sq(FWriter& w, const ScalarQuantizer& sq);
// blocks (Faiss layout) -> n plain 4-bit PQ codes (ceil(M / 2) bytes each)
void faiss_pq4_unpack(const uint8_t* blocks, size_t n, size_t M, size_t bbs, uint8_t* codes);
// n plain codes -> blocks (Faiss layout), nblocks(n) * bbs * M2 / 2 bytes, zero padded
std::vector<uint8_t> faiss_pq4_pack(const uint8_t* codes, size_t n, size_t M, size_t bbs);
VectorTransformPtr read_transform(FReader& r);
void write_transform(FWriter& w, const VectorTransform& vt);

// ---- any index (faiss_io.cpp) ---------------------------------------------------------------
IndexPtr read_index(FReader& r);  // null for Faiss's "null" fourcc
IndexPtr read_index_nonnull(FReader& r, const char* what);
void write_index(FWriter& w, const Index& idx);

// ---- the families ---------------------------------------------------------------------------
// faiss_io_flat.cpp; h: IxF2, IxFI or IxFl
IndexPtr read_flat(FReader& r, uint32_t h);
IndexPtr read_sq_index(FReader& r);
IndexPtr read_pq_index(FReader& r);
IndexPtr read_pq_fastscan(FReader& r);
// an IndexFlat of the same header fields as `like` holding n floats xb (for HNSW storage)
void write_flat_storage(FWriter& w, const Index& like, const float* xb, size_t n, idx_t ntotal);
bool write_flat_family(FWriter& w, const Index& idx);
// faiss_io_ivf.cpp
IndexPtr read_ivf_flat(FReader& r);
IndexPtr read_ivf_sq(FReader& r);
IndexPtr read_ivf_pq(FReader& r);
IndexPtr read_ivf_pq_fastscan(FReader& r);
void write_array_invlists(FWriter& w, const InvertedLists& il, size_t code_size);
bool write_ivf_family(FWriter& w, const Index& idx);
// faiss_io_hnsw.cpp; h: IHNf, IHNs or IHNp
void read_faiss_hnsw(FReader& r, HNSW& g, int* M_out);
void write_faiss_hnsw(FWriter& w, const HNSW& g);
IndexPtr read_hnsw(FReader& r, uint32_t h);
bool write_hnsw_family(FWriter& w, const Index& idx);

// The common part of Faiss's IDMap readers, float (IndexIDMap{,2}) and binary
// (IndexBinaryIDMap{,2}): `sub` (d, ntotal checked against the header) wrapped
// in a Map or Map2 (named cls / cls2 in errors), the ids read, and for Map2
// the reverse map built (no duplicate ids).
template <class Map, class Map2, class SubPtr>
std::shared_ptr<Map> read_idmap_of(FReader& r, SubPtr sub, int d, idx_t ntotal, bool is_trained, bool map2,
                                   const char* cls, const char* cls2) {
  if (sub->d != d) r.corrupt("IDMap dimension differs from its index");
  const idx_t sub_n = sub->ntotal;
  sub->ntotal = 0;  // the constructor wants an empty index
  std::shared_ptr<Map> idx = build(cls, [&]() -> std::shared_ptr<Map> {
    if (map2) return std::make_shared<Map2>(sub);
    return std::make_shared<Map>(sub);
  });
  sub->ntotal = sub_n;
  r.vec(idx->id_map, "IDMap ids");
  if (idx->id_map.size() != size_t(sub_n) || ntotal != sub_n) r.corrupt("IDMap size does not match its index");
  idx->ntotal = ntotal;
  idx->is_trained = is_trained;
  if (map2) {
    auto* m2 = static_cast<Map2*>(idx.get());
    m2->construct_rev_map();
    if (m2->rev_map.size() != m2->id_map.size()) r.corrupt(std::string(cls2) + " with duplicate ids");
  }
  return idx;
}

// ---- files (faiss_io.cpp) -------------------------------------------------------------------
std::shared_ptr<std::vector<uint8_t>> read_whole_file(const std::string& path);
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

// One whole file's index: no null, no trailing bytes.
template <class T, class F>
T parse_whole(const uint8_t* data, size_t n, std::shared_ptr<const void> keep, bool mapped, F&& read_one) {
  FReader r(data, n, std::move(keep), mapped);
  T idx = build("index", [&] { return read_one(r); });
  if (!idx) ANNVIL_THROW(file_format, "the Faiss file holds no index (null)");
  if (r.remaining() != 0) r.corrupt("trailing bytes after the index");
  return idx;
}

}  // namespace fio
}  // namespace annvil
