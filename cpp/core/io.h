// The annvil index file format (see README "Index files"):
//
//   offset 0   8 bytes   magic "ANNVIL\0\1"
//          8   u32       format version (kFormatVersion)
//         12   u32       flags (0)
//         16   u64       body length B
//         24   40 bytes  reserved (zero); the body starts 64-byte aligned
//         64   B bytes   body: one index record
//       64+B   u64       checksum of the body (64-bit, 4-lane multiply-rotate)
//
// An index record is a string type tag followed by that type's payload;
// nested indexes (an IVF quantizer, a refine base) are nested records.  Every
// array is stored as u64 byte count, zero padding to a 64-byte boundary of the
// file, then the raw little-endian elements, so a memory-mapped file can be
// searched in place.  Readers check every count against the bytes left, so a
// truncated or corrupt file raises an Error of kind file_format, never a crash.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/index.h"
#include "core/storage.h"

namespace annvil {

constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 64;

// Streaming 64-bit checksum over arbitrary byte runs.
class Checksum {
 public:
  Checksum();
  void update(const void* data, size_t n);
  uint64_t digest() const;

 private:
  void stripe(const uint8_t* p);
  uint64_t h_[4];
  uint8_t tail_[32];
  size_t tail_n_ = 0;
  uint64_t total_ = 0;
};

class Writer {
 public:
  virtual ~Writer() = default;
  void write_bytes(const void* p, size_t n);
  template <class T>
  void write(const T& v) {
    static_assert(std::is_trivially_copyable<T>::value, "POD only");
    write_bytes(&v, sizeof(T));
  }
  void write_string(const std::string& s);
  // u64 byte count, padding to 64 bytes, raw elements
  void write_array_bytes(const void* p, size_t nbytes);
  template <class T>
  void write_array(const T* p, size_t n) {
    write_array_bytes(p, n * sizeof(T));
  }
  template <class T>
  void write_vector(const std::vector<T>& v) {
    write_array(v.data(), v.size());
  }
  template <class T>
  void write_storage(const Storage<T>& s) {
    write_array(s.data(), s.size());
  }
  size_t position() const { return pos_; }  // bytes of body written
  uint64_t checksum() const { return sum_.digest(); }

 protected:
  // checksum=false: a writer that only measures skips the hashing
  explicit Writer(bool checksum = true) : checksum_(checksum) {}
  virtual void sink(const void* p, size_t n) = 0;

 private:
  size_t pos_ = 0;
  bool checksum_ = true;
  Checksum sum_;
};

class Reader {
 public:
  // data: the body (n bytes), located at absolute file offset kHeaderSize.
  // keep: keeps the memory alive; mapped: views into it may outlive the Reader.
  Reader(const uint8_t* data, size_t n, std::shared_ptr<const void> keep, bool mapped)
      : data_(data), n_(n), keep_(std::move(keep)), mapped_(mapped) {}
  void read_bytes(void* dst, size_t n);
  template <class T>
  T read() {
    static_assert(std::is_trivially_copyable<T>::value, "POD only");
    T v;
    read_bytes(&v, sizeof(T));
    return v;
  }
  std::string read_string(size_t max_len = 4096);
  // Reads an array header and returns a pointer to its bytes inside the
  // buffer (valid while the buffer lives); checks size divisibility.
  const uint8_t* read_array_bytes(size_t elem_size, size_t* count);
  template <class T>
  void read_vector(std::vector<T>& v) {
    size_t n;
    const uint8_t* p = read_array_bytes(sizeof(T), &n);
    v.resize(n);
    if (n) std::memcpy(v.data(), p, n * sizeof(T));
  }
  template <class T>
  void read_storage(Storage<T>& s) {
    size_t n;
    const uint8_t* p = read_array_bytes(sizeof(T), &n);
    if (mapped_) {
      s.set_view(reinterpret_cast<const T*>(p), n, keep_);
    } else {
      auto& v = s.mut();
      v.resize(n);
      if (n) std::memcpy(v.data(), p, n * sizeof(T));
    }
  }
  // a count read from the file, checked against a sane bound
  size_t read_count(size_t max_value, const char* what);
  bool mapped() const { return mapped_; }
  size_t remaining() const { return n_ - pos_; }
  [[noreturn]] void corrupt(const std::string& why) const;

 private:
  const uint8_t* data_;
  size_t n_;
  size_t pos_ = 0;
  std::shared_ptr<const void> keep_;
  bool mapped_;
};

// True when every p[i], i < n, lies in [lo, hi).  Ids, links and offsets read
// from a file go through this before use, on mapped files too: the scan is
// branch-free (vectorised) and parallel, cheap next to paging the array in.
bool all_in_range(const int32_t* p, size_t n, int64_t lo, int64_t hi);
bool all_in_range(const int64_t* p, size_t n, int64_t lo, int64_t hi);

// ---- records and the type registry ----
using IndexReaderFn = std::function<IndexPtr(Reader&)>;
void register_index_type(const std::string& tag, IndexReaderFn fn);
void write_index_record(const Index& index, Writer& w);
IndexPtr read_index_record(Reader& r);

struct IndexTypeRegistration {
  IndexTypeRegistration(const std::string& tag, IndexReaderFn fn) { register_index_type(tag, std::move(fn)); }
};
#define ANNVIL_CONCAT2(a, b) a##b
#define ANNVIL_CONCAT(a, b) ANNVIL_CONCAT2(a, b)
// Register the reader for a type tag at static-initialisation time.
#define ANNVIL_REGISTER_INDEX(tag, fn) \
  static ::annvil::IndexTypeRegistration ANNVIL_CONCAT(annvil_index_reg_, __LINE__)(tag, fn)

// ---- whole files ----
// The framing (header, checksum, atomic write, mmap) around one record,
// written by write_record or read by read_record; the float and binary
// index families (index_binary.h) both go through these.
using RecordWriterFn = std::function<void(Writer&)>;
using RecordReaderFn = std::function<void(Reader&)>;
std::vector<uint8_t> serialize_record(const RecordWriterFn& write_record);
// The same bytes written straight into a buffer of the exact size: a first
// pass measures, `alloc(total)` returns the buffer, a second pass fills it,
// so a serialised index costs one copy of itself and nothing more.
using BufferAllocFn = std::function<uint8_t*(size_t)>;
void serialize_record_into(const RecordWriterFn& write_record, const BufferAllocFn& alloc);
void deserialize_record(const uint8_t* data, size_t n, const RecordReaderFn& read_record);
void write_record_file(const std::string& path, const RecordWriterFn& write_record);
void read_record_file(const std::string& path, bool mmap, bool verify, const RecordReaderFn& read_record);

std::vector<uint8_t> serialize_index(const Index& index);
void serialize_index_into(const Index& index, const BufferAllocFn& alloc);
IndexPtr deserialize_index(const uint8_t* data, size_t n);
// Atomic and crash-safe: the file is written anonymously (O_TMPFILE) or as
// path.tmp-<pid>-<random>, fsynced, then renamed over path, so a reader sees
// the old file or the new one, never a part.  Leftover temporary files of
// writers that were killed are removed by the next write of the same path.
void write_index_file(const Index& index, const std::string& path);
// mmap: map the file read-only and let arrays view it (checksum not verified
// unless verify is true, so that opening does not read the whole file).
IndexPtr read_index_file(const std::string& path, bool mmap = false, bool verify = true);

// Helpers for payloads.
// d, ntotal, metric, is_trained, then metric_arg for the extra metrics only
// (so files of L2 / inner-product indexes are unchanged)
void write_index_header(Writer& w, const Index& idx);
void read_index_header(Reader& r, Index& idx);
struct IndexHeader {
  int d;
  idx_t ntotal;
  MetricType metric;
  bool is_trained;
  float metric_arg = 0;
};
IndexHeader read_header_fields(Reader& r);

}  // namespace annvil
