// Faiss's index file format: reader and writer (see faiss_io.h).  This file
// holds the dispatch on the fourcc, the wrapper indexes (IDMap, Refine,
// PreTransform), the file handling and the public entry points; the families
// are in faiss_io/ (see faiss_io/faiss_io_impl.h).
#include "faiss_io.h"
#include "faiss_io/faiss_io_impl.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "index_flat.h"
#include "index_idmap.h"
#include "index_refine.h"
#include "index_pretransform.h"
#include "quant/vector_transform.h"

namespace annvil {
namespace fio {

IndexPtr read_index_nonnull(FReader& r, const char* what) {
  IndexPtr p = read_index(r);
  if (!p) r.corrupt(std::string("missing (null) ") + what);
  return p;
}

namespace {

IndexPtr read_idmap(FReader& r, bool map2) {
  FHeader hd = read_header(r);
  IndexPtr sub = read_index_nonnull(r, "IDMap inner index");
  return read_idmap_of<IndexIDMap, IndexIDMap2>(r, sub, hd.d, hd.ntotal, hd.is_trained, map2, "IndexIDMap",
                                                "IndexIDMap2");
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

}  // namespace

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

// Each family writer handles its own classes (their hierarchies are disjoint,
// so the order of the tests does not matter, except IDMap2 inside IDMap).
void write_index(FWriter& w, const Index& idx) {
  if (write_flat_family(w, idx) || write_ivf_family(w, idx) || write_hnsw_family(w, idx)) return;
  if (auto* p = dynamic_cast<const IndexIDMap*>(&idx)) {
    w.tag(dynamic_cast<const IndexIDMap2*>(&idx) ? "IxM2" : "IxMp");
    write_header(w, idx);
    write_index(w, *p->index);
    w.vec(p->id_map);
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
namespace {
struct Mapping {
  void* addr = nullptr;
  size_t len = 0;
  ~Mapping() {
    if (addr && addr != MAP_FAILED) munmap(addr, len);
  }
};
}  // namespace

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

}  // namespace fio

// ---- public: float indexes -------------------------------------------------------------------
std::string faiss_class_of_fourcc(uint32_t h) {
  const fio::FourccInfo* f = fio::find_fourcc(h);
  return f ? f->cls : "";
}

bool is_faiss_index_data(const uint8_t* data, size_t n) {
  if (n < 4) return false;
  uint32_t h;
  std::memcpy(&h, data, 4);
  const fio::FourccInfo* f = fio::find_fourcc(h);
  return f && (f->kind == fio::FKind::index || f->kind == fio::FKind::binary);
}

bool is_faiss_binary_index_data(const uint8_t* data, size_t n) {
  if (n < 4) return false;
  uint32_t h;
  std::memcpy(&h, data, 4);
  const fio::FourccInfo* f = fio::find_fourcc(h);
  return f && f->kind == fio::FKind::binary;
}

IndexPtr faiss_deserialize_index(const uint8_t* data, size_t n, std::shared_ptr<const void> keep, bool mapped) {
  return fio::parse_whole<IndexPtr>(data, n, std::move(keep), mapped,
                                    [](fio::FReader& r) { return fio::read_index(r); });
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
  auto m = std::make_shared<fio::Mapping>();
  m->len = size_t(st.st_size);
  m->addr = ::mmap(nullptr, m->len, PROT_READ, mmap ? MAP_SHARED : (MAP_PRIVATE | MAP_POPULATE), fd, 0);
  ::close(fd);
  if (m->addr == MAP_FAILED) {
    if (mmap) ANNVIL_THROW(io, "cannot mmap '", path, "': ", std::strerror(errno));
    auto buf = fio::read_whole_file(path);  // e.g. a file system without mmap
    return faiss_deserialize_index(buf->data(), buf->size(), nullptr, false);
  }
  if (!mmap) return faiss_deserialize_index(static_cast<const uint8_t*>(m->addr), m->len, nullptr, false);
  return faiss_deserialize_index(static_cast<const uint8_t*>(m->addr), m->len, m, true);
}

std::vector<uint8_t> faiss_serialize_index(const Index& index) {
  std::vector<uint8_t> out;
  fio::FWriter w(&out);
  fio::write_index(w, index);
  return out;
}

void faiss_write_index_file(const Index& index, const std::string& path) {
  fio::write_file_atomic(path, faiss_serialize_index(index));
}

}  // namespace annvil
