#include "core/io.h"

#include "faiss_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>

namespace annvil {

namespace {
const char kMagic[8] = {'A', 'N', 'N', 'V', 'I', 'L', '\0', '\1'};
constexpr uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL, P3 = 0x165667B19E3779F9ULL;
inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
}  // namespace

// ---- checksum: four independent lanes over 32-byte stripes -------------------------
Checksum::Checksum() {
  h_[0] = P1 + P2;
  h_[1] = P2;
  h_[2] = 0;
  h_[3] = 0 - P1;
}

void Checksum::stripe(const uint8_t* p) {
  for (int i = 0; i < 4; ++i) h_[i] = rotl(h_[i] + load64(p + 8 * i) * P2, 31) * P1;
}

void Checksum::update(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  total_ += n;
  if (tail_n_) {
    size_t take = std::min(n, 32 - tail_n_);
    std::memcpy(tail_ + tail_n_, p, take);
    tail_n_ += take;
    p += take;
    n -= take;
    if (tail_n_ < 32) return;
    stripe(tail_);
    tail_n_ = 0;
  }
  for (; n >= 32; n -= 32, p += 32) stripe(p);
  std::memcpy(tail_, p, n);
  tail_n_ = n;
}

uint64_t Checksum::digest() const {
  uint64_t h = rotl(h_[0], 1) + rotl(h_[1], 7) + rotl(h_[2], 12) + rotl(h_[3], 18);
  h ^= total_ * P3;
  for (size_t i = 0; i < tail_n_; ++i) h = rotl(h ^ (tail_[i] * P3), 11) * P1;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

// ---- writer ------------------------------------------------------------------------
void Writer::write_bytes(const void* p, size_t n) {
  if (n == 0) return;
  if (checksum_) sum_.update(p, n);
  sink(p, n);
  pos_ += n;
}

void Writer::write_string(const std::string& s) {
  write<uint32_t>(uint32_t(s.size()));
  write_bytes(s.data(), s.size());
}

void Writer::write_array_bytes(const void* p, size_t nbytes) {
  write<uint64_t>(nbytes);
  static const uint8_t zeros[64] = {};
  size_t abs = kHeaderSize + pos_;
  size_t pad = (64 - abs % 64) % 64;
  write_bytes(zeros, pad);
  write_bytes(p, nbytes);
}

namespace {
class FileWriter : public Writer {
 public:
  explicit FileWriter(int fd) : fd_(fd) { buf_.reserve(1 << 20); }
  void flush() {
    size_t off = 0;
    while (off < buf_.size()) {
      ssize_t w = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        ANNVIL_THROW(io, "write failed: ", std::strerror(errno));
      }
      off += size_t(w);
    }
    buf_.clear();
  }

 protected:
  void sink(const void* p, size_t n) override {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    if (buf_.size() + n > (1u << 20)) flush();
    if (n >= (1u << 20)) {
      buf_.insert(buf_.end(), b, b + n);
      flush();
    } else {
      buf_.insert(buf_.end(), b, b + n);
    }
  }

 private:
  int fd_;
  std::vector<uint8_t> buf_;
};

// Body writer that measures: a first pass computes the body length so the
// header can be written before the body without seeking.
class CountingWriter : public Writer {
 public:
  CountingWriter() : Writer(false) {}

 protected:
  void sink(const void*, size_t) override {}
};

// Body writer into a buffer of known size (after a CountingWriter pass).
class BufferWriter : public Writer {
 public:
  BufferWriter(uint8_t* p, size_t cap) : p_(p), cap_(cap) {}

 protected:
  void sink(const void* p, size_t n) override {
    // the record writers are deterministic; a second pass that writes more
    // than the first measured is a bug, caught here rather than overflowing
    if (n > cap_ - used_) ANNVIL_THROW(runtime, "serialisation wrote more bytes than it measured");
    std::memcpy(p_ + used_, p, n);
    used_ += n;
  }

 private:
  uint8_t* p_;
  size_t cap_, used_ = 0;
};

void make_header(uint8_t* h, uint64_t body_len) {
  std::memset(h, 0, kHeaderSize);
  std::memcpy(h, kMagic, 8);
  uint32_t v = kFormatVersion, flags = 0;
  std::memcpy(h + 8, &v, 4);
  std::memcpy(h + 12, &flags, 4);
  std::memcpy(h + 16, &body_len, 8);
}
}  // namespace

// ---- reader ------------------------------------------------------------------------
void Reader::corrupt(const std::string& why) const {
  ANNVIL_THROW(file_format, "corrupt or truncated index file: ", why, " (at body offset ", pos_, ")");
}

void Reader::read_bytes(void* dst, size_t n) {
  if (n > n_ - pos_) corrupt("unexpected end of data");
  std::memcpy(dst, data_ + pos_, n);
  pos_ += n;
}

std::string Reader::read_string(size_t max_len) {
  uint32_t len = read<uint32_t>();
  if (len > max_len || len > n_ - pos_) corrupt("bad string length");
  std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
  pos_ += len;
  return s;
}

const uint8_t* Reader::read_array_bytes(size_t elem_size, size_t* count) {
  uint64_t nbytes = read<uint64_t>();
  size_t abs = kHeaderSize + pos_;
  size_t pad = (64 - abs % 64) % 64;
  if (pad > n_ - pos_) corrupt("unexpected end of data");
  pos_ += pad;
  if (nbytes > n_ - pos_) corrupt("array larger than the file");
  if (nbytes % elem_size) corrupt("array size not a multiple of its element size");
  const uint8_t* p = data_ + pos_;
  pos_ += nbytes;
  *count = nbytes / elem_size;
  return p;
}

size_t Reader::read_count(size_t max_value, const char* what) {
  uint64_t v = read<uint64_t>();
  if (v > max_value) corrupt(std::string("implausible ") + what);
  return size_t(v);
}

// ---- range checks ------------------------------------------------------------------
namespace {
template <class T>
bool all_in_range_impl(const T* p, size_t n, int64_t lo, int64_t hi) {
  if (hi <= lo) return n == 0;
  // v in [lo, hi) <=> unsigned(v - lo) < unsigned(hi - lo): one compare per element
  using U = std::make_unsigned_t<T>;
  const U span = U(hi - lo), base = U(lo);
  constexpr size_t kChunk = size_t(1) << 16;
  const int64_t nchunk = int64_t((n + kChunk - 1) / kChunk);
  int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (nchunk > 4)
  for (int64_t c = 0; c < nchunk; ++c) {
    const size_t b = size_t(c) * kChunk, e = std::min(n, b + kChunk);
    int acc = 0;
    for (size_t i = b; i < e; ++i) acc |= int(U(U(p[i]) - base) >= span);
    bad |= acc;
  }
  return bad == 0;
}
}  // namespace

bool all_in_range(const int32_t* p, size_t n, int64_t lo, int64_t hi) { return all_in_range_impl(p, n, lo, hi); }
bool all_in_range(const int64_t* p, size_t n, int64_t lo, int64_t hi) { return all_in_range_impl(p, n, lo, hi); }

// ---- registry ----------------------------------------------------------------------
namespace {
std::map<std::string, IndexReaderFn>& registry() {
  static std::map<std::string, IndexReaderFn> r;
  return r;
}
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

void register_index_type(const std::string& tag, IndexReaderFn fn) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[tag] = std::move(fn);
}

void write_index_record(const Index& index, Writer& w) {
  w.write_string(index.type_tag());
  index.write_payload(w);
}

IndexPtr read_index_record(Reader& r) {
  std::string tag = r.read_string(64);
  IndexReaderFn fn;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(tag);
    if (it == registry().end()) r.corrupt("unknown index type tag '" + tag + "'");
    fn = it->second;
  }
  return fn(r);
}

void write_index_header(Writer& w, const Index& idx) {
  w.write<int32_t>(idx.d);
  w.write<int64_t>(idx.ntotal);
  w.write<int32_t>(int32_t(idx.metric_type));
  w.write<uint8_t>(idx.is_trained ? 1 : 0);
  if (is_extra_metric(idx.metric_type)) w.write<float>(idx.metric_arg);  // only they have one
}

IndexHeader read_header_fields(Reader& r) {
  IndexHeader h;
  h.d = r.read<int32_t>();
  h.ntotal = r.read<int64_t>();
  int32_t m = r.read<int32_t>();
  uint8_t t = r.read<uint8_t>();
  if (h.d <= 0 || h.d > (1 << 20)) r.corrupt("bad dimension");
  if (h.ntotal < 0) r.corrupt("bad ntotal");
  if (!is_known_metric(m)) r.corrupt("bad metric");
  if (t > 1) r.corrupt("bad flag");
  h.metric = MetricType(m);
  h.is_trained = t != 0;
  if (is_extra_metric(h.metric)) h.metric_arg = r.read<float>();
  return h;
}

void read_index_header(Reader& r, Index& idx) {
  IndexHeader h = read_header_fields(r);
  if (h.d != idx.d) r.corrupt("dimension mismatch");
  idx.ntotal = h.ntotal;
  idx.metric_type = h.metric;
  idx.metric_arg = h.metric_arg;
  idx.is_trained = h.is_trained;
}

// ---- whole files -------------------------------------------------------------------
void serialize_record_into(const RecordWriterFn& write_record, const BufferAllocFn& alloc) {
  CountingWriter counter;
  write_record(counter);
  const size_t body_len = counter.position();
  uint8_t* out = alloc(kHeaderSize + body_len + 8);
  make_header(out, body_len);
  BufferWriter body(out + kHeaderSize, body_len);
  write_record(body);
  if (body.position() != body_len) ANNVIL_THROW(runtime, "serialisation wrote fewer bytes than it measured");
  const uint64_t sum = body.checksum();
  std::memcpy(out + kHeaderSize + body_len, &sum, 8);
}

std::vector<uint8_t> serialize_record(const RecordWriterFn& write_record) {
  std::vector<uint8_t> out;
  serialize_record_into(write_record, [&](size_t n) {
    out.resize(n);
    return out.data();
  });
  return out;
}

std::vector<uint8_t> serialize_index(const Index& index) {
  return serialize_record([&](Writer& w) { write_index_record(index, w); });
}

void serialize_index_into(const Index& index, const BufferAllocFn& alloc) {
  serialize_record_into([&](Writer& w) { write_index_record(index, w); }, alloc);
}

namespace {
uint64_t check_header(const uint8_t* data, size_t n) {
  if (n < 8 || std::memcmp(data, kMagic, 6) != 0)
    ANNVIL_THROW(file_format, "not an annvil index file (bad magic bytes; nor a Faiss index file)");
  if (std::memcmp(data, kMagic, 8) != 0 || n < kHeaderSize)
    ANNVIL_THROW(file_format, "corrupt or truncated index file: bad header");
  uint32_t v;
  std::memcpy(&v, data + 8, 4);
  if (v != kFormatVersion)
    ANNVIL_THROW(file_format, "unsupported index file format version ", v, " (this annvil reads version ",
                 kFormatVersion, ")");
  uint32_t flags;
  std::memcpy(&flags, data + 12, 4);
  if (flags != 0) ANNVIL_THROW(file_format, "corrupt index file: unknown header flags ", flags);
  for (size_t i = 24; i < kHeaderSize; ++i)
    if (data[i] != 0) ANNVIL_THROW(file_format, "corrupt index file: reserved header bytes are not zero");
  uint64_t body;
  std::memcpy(&body, data + 16, 8);
  if (body > n || n - kHeaderSize < 8 || body != n - kHeaderSize - 8)
    ANNVIL_THROW(file_format, "corrupt or truncated index file: expected ", body + kHeaderSize + 8, " bytes, found ",
                 n);
  return body;
}

void parse(const uint8_t* data, size_t n, std::shared_ptr<const void> keep, bool mapped, bool verify,
           const RecordReaderFn& read_record) {
  uint64_t body = check_header(data, n);
  if (verify) {
    Checksum c;
    c.update(data + kHeaderSize, body);
    uint64_t stored;
    std::memcpy(&stored, data + kHeaderSize + body, 8);
    if (c.digest() != stored) ANNVIL_THROW(file_format, "corrupt index file: checksum mismatch");
  }
  Reader r(data + kHeaderSize, body, std::move(keep), mapped);
  read_record(r);
  if (r.remaining() != 0) r.corrupt("trailing bytes after the index record");
}

struct Mapping {
  void* addr = nullptr;
  size_t len = 0;
  ~Mapping() {
    if (addr && addr != MAP_FAILED) munmap(addr, len);
  }
};
}  // namespace

void deserialize_record(const uint8_t* data, size_t n, const RecordReaderFn& read_record) {
  parse(data, n, nullptr, false, true, read_record);
}

IndexPtr deserialize_index(const uint8_t* data, size_t n) {
  // Faiss's format starts with a fourcc ("IxF2", "IwPQ", ...), never "ANNV"
  if (is_faiss_index_data(data, n)) return faiss_deserialize_index(data, n);
  IndexPtr idx;
  deserialize_record(data, n, [&](Reader& r) { idx = read_index_record(r); });
  return idx;
}

namespace {
// "<path>.tmp-<pid>-<random>": the writer's pid lets a later write tell a
// leftover of a killed writer from the file of one still running.
std::string tmp_prefix(const std::string& path) { return path + ".tmp-"; }

// Remove the temporary files of `path` left by writers that no longer run
// (a writer killed between creating and renaming its file).
void remove_stale_tmp_files(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string base = tmp_prefix(slash == std::string::npos ? path : path.substr(slash + 1));
  DIR* dp = ::opendir(dir.c_str());
  if (!dp) return;
  while (dirent* e = ::readdir(dp)) {
    const std::string name = e->d_name;
    if (name.compare(0, base.size(), base) != 0) continue;
    const long pid = std::strtol(name.c_str() + base.size(), nullptr, 10);
    if (pid <= 0 || pid == long(::getpid())) continue;
    if (::kill(pid_t(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(dp);
}

void write_all(int fd, const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::write(fd, b + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      ANNVIL_THROW(io, "write failed: ", std::strerror(errno));
    }
    off += size_t(w);
  }
}
}  // namespace

void write_record_file(const std::string& path, const RecordWriterFn& write_record) {
  CountingWriter counter;
  write_record(counter);
  const uint64_t body_len = counter.position();
  remove_stale_tmp_files(path);

  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::random_device rd;
  char suffix[48];
  std::snprintf(suffix, sizeof(suffix), "%ld-%08x", long(::getpid()), unsigned(rd()));
  const std::string tmp = tmp_prefix(path) + suffix;
  // An anonymous file (O_TMPFILE) has no name until it is complete, so a
  // writer killed while writing leaves nothing behind; it gets the temporary
  // name only for the instant between linkat and rename.  File systems
  // without O_TMPFILE get a named temporary file from the start.
  bool anonymous = true;
#ifdef O_TMPFILE
  int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
#else
  int fd = -1;
  errno = EOPNOTSUPP;
#endif
  if (fd < 0) {
    if (errno == ENOENT || errno == EACCES || errno == EROFS || errno == ENOTDIR)
      ANNVIL_THROW(io, "cannot write '", path, "': ", std::strerror(errno));
    anonymous = false;
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) ANNVIL_THROW(io, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
  }
  bool named = !anonymous;
  try {
    uint8_t header[kHeaderSize];
    make_header(header, body_len);
    write_all(fd, header, kHeaderSize);  // outside the body checksum
    FileWriter fw(fd);
    write_record(fw);
    if (fw.position() != body_len) ANNVIL_THROW(runtime, "index changed while it was being written");
    uint64_t sum = fw.checksum();
    fw.flush();
    write_all(fd, &sum, 8);
    if (::fsync(fd) != 0) ANNVIL_THROW(io, "fsync failed: ", std::strerror(errno));
    if (anonymous) {
      char proc[64];
      std::snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
      if (::linkat(AT_FDCWD, proc, AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0)
        ANNVIL_THROW(io, "cannot link the new index file into '", dir, "': ", std::strerror(errno));
      named = true;
    }
    ::close(fd);
    fd = -1;
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      ANNVIL_THROW(io, "cannot rename '", tmp, "' to '", path, "': ", std::strerror(errno));
    named = false;
    // make the rename durable
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    if (named) ::unlink(tmp.c_str());
    throw;
  }
}

void write_index_file(const Index& index, const std::string& path) {
  write_record_file(path, [&](Writer& w) { write_index_record(index, w); });
}

void read_record_file(const std::string& path, bool mmap, bool verify, const RecordReaderFn& read_record) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ANNVIL_THROW(io, "cannot open index file '", path, "': ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    ANNVIL_THROW(io, "cannot stat '", path, "': ", std::strerror(errno));
  }
  size_t n = size_t(st.st_size);
  if (mmap) {
    auto m = std::make_shared<Mapping>();
    if (n == 0) {
      ::close(fd);
      ANNVIL_THROW(file_format, "not an annvil index file (empty file)");
    }
    m->addr = ::mmap(nullptr, n, PROT_READ, MAP_SHARED, fd, 0);
    m->len = n;
    ::close(fd);
    if (m->addr == MAP_FAILED) ANNVIL_THROW(io, "cannot mmap '", path, "': ", std::strerror(errno));
    const uint8_t* data = static_cast<const uint8_t*>(m->addr);
    parse(data, n, m, true, verify, read_record);
    return;
  }
  auto buf = std::make_shared<std::vector<uint8_t>>(n);
  size_t off = 0;
  while (off < n) {
    ssize_t r = ::read(fd, buf->data() + off, n - off);
    if (r < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      ANNVIL_THROW(io, "read failed on '", path, "': ", std::strerror(errno));
    }
    if (r == 0) break;
    off += size_t(r);
  }
  ::close(fd);
  buf->resize(off);
  parse(buf->data(), buf->size(), nullptr, false, true, read_record);
}

namespace {
// the first 4 bytes of the file are a Faiss fourcc
bool is_faiss_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // read_record_file reports the error
  uint8_t head[4];
  ssize_t k;
  do {
    k = ::read(fd, head, 4);
  } while (k < 0 && errno == EINTR);
  ::close(fd);
  return k == 4 && is_faiss_index_data(head, 4);
}
}  // namespace

IndexPtr read_index_file(const std::string& path, bool mmap, bool verify) {
  try {
    if (is_faiss_file(path)) return faiss_read_index_file(path, mmap);
    IndexPtr idx;
    read_record_file(path, mmap, verify, [&](Reader& r) { idx = read_index_record(r); });
    return idx;
  } catch (const Error& e) {
    // name the file, as Faiss's read errors do
    if (e.kind() != ErrorKind::file_format) throw;
    throw Error(e.kind(), std::string(e.what()) + " (in '" + path + "')", e.func(), e.file(), e.line());
  }
}

}  // namespace annvil
