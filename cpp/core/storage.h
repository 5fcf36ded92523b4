// An array that either owns its elements (std::vector), views memory kept
// alive by someone else (a memory-mapped index file), or owns a growable
// anonymous mapping on 2 MB transparent huge pages (large graph-index
// arrays, see append()).  General mutation goes through mut(), which copies a
// view into owned memory first (copy-on-write), so an index loaded with mmap
// is searchable in place and still accepts adds.  The append / append_fill /
// truncate / writable calls keep a huge-page array where it is: growing it
// moves page tables (mremap), never the data, so an add costs no copy of
// what is already stored.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace annvil {

// An anonymous mapping aligned to 2 MB and advised for huge pages.  Its
// virtual capacity is generous (pages never touched cost no memory), and
// grow() relocates it with mremap, which copies no data.
class HugeBuffer {
 public:
  static constexpr size_t kHuge = size_t(2) << 20;
  // arrays smaller than this stay in ordinary vectors
  static constexpr size_t kMinBytes = size_t(4) << 20;
  explicit HugeBuffer(size_t capacity_bytes);  // throws std::bad_alloc
  ~HugeBuffer();
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  void* data() const { return p_; }
  size_t capacity() const { return len_; }
  void grow(size_t capacity_bytes);  // keeps the contents; throws std::bad_alloc
  static bool available();

 private:
  void* p_ = nullptr;
  size_t len_ = 0;
};

template <class T>
class Storage {
 public:
  const T* data() const { return view_ ? view_ : own_.data(); }
  size_t size() const { return view_ ? view_n_ : own_.size(); }
  bool empty() const { return size() == 0; }
  bool is_view() const { return view_ != nullptr; }
  const T& operator[](size_t i) const { return data()[i]; }

  std::vector<T>& mut() {
    if (view_) {
      own_.assign(view_, view_ + view_n_);
      view_ = nullptr;
      view_n_ = 0;
      keep_.reset();
      huge_ = nullptr;
    }
    return own_;
  }
  void set_view(const T* p, size_t n, std::shared_ptr<const void> keep) {
    own_.clear();
    own_.shrink_to_fit();
    view_ = p;
    view_n_ = n;
    keep_ = std::move(keep);
    huge_ = nullptr;
    if (n == 0) view_ = nullptr;
  }
  // The elements of `src` (another element type, e.g. the bytes of
  // IndexFlat's codes as floats): a view of the same memory when src is a
  // view, as a copy of the Storage would be, else a copy.  src must hold a
  // whole number of T, suitably aligned.
  template <class U>
  void assign_bytes_of(const Storage<U>& src) {
    const size_t n = src.size() * sizeof(U) / sizeof(T);
    if (src.view_) {
      own_.clear();
      own_.shrink_to_fit();
      view_ = n ? reinterpret_cast<const T*>(src.view_) : nullptr;
      view_n_ = n;
      keep_ = src.keep_;
      huge_ = src.huge_;
    } else {
      clear();
      own_.resize(n);
      if (n) std::memcpy(static_cast<void*>(own_.data()), static_cast<const void*>(src.data()), n * sizeof(T));
    }
  }
  void clear() {
    view_ = nullptr;
    view_n_ = 0;
    keep_.reset();
    huge_ = nullptr;
    own_.clear();
    own_.shrink_to_fit();
  }

  // ---- growth that keeps large arrays on huge pages (see the file header) ----
  // Appends n elements; large arrays move to (or stay on) a HugeBuffer.
  void append(const T* src, size_t n) {
    T* dst = grow_by(n);
    if (n) std::memcpy(static_cast<void*>(dst), src, n * sizeof(T));
  }
  void append_fill(size_t n, const T& value) {
    T* dst = grow_by(n);
    std::fill(dst, dst + n, value);
  }
  // Shrinks to n elements (n <= size()), e.g. to roll back a failed add.
  void truncate(size_t n) {
    if (n >= size()) return;
    if (huge_ && unique_huge()) {
      view_n_ = n;
    } else {
      mut().resize(n);
    }
  }
  // Writable elements without leaving huge pages (copying first if the
  // memory is a file mapping or shared with a copy of the index).
  T* writable() {
    if (huge_ && unique_huge()) return const_cast<T*>(view_);
    if (view_ && size() * sizeof(T) >= HugeBuffer::kMinBytes && HugeBuffer::available()) {
      rehome(size());
      return const_cast<T*>(view_);
    }
    return mut().data();
  }
  // Moves an owned array of at least kMinBytes onto huge pages (one copy);
  // an optimisation only, so without the memory the array stays as it is.
  void to_huge_pages() {
    if (huge_ || view_ || size() * sizeof(T) < HugeBuffer::kMinBytes || !HugeBuffer::available()) return;
    try {
      rehome(size());
    } catch (const std::bad_alloc&) {
    }
  }
  bool on_huge_pages() const { return huge_ != nullptr; }
  size_t capacity_bytes() const { return view_ ? 0 : own_.capacity() * sizeof(T); }

 private:
  template <class U>
  friend class Storage;
  bool unique_huge() const { return keep_.use_count() == 1; }
  static size_t round_huge(size_t bytes) {
    return (bytes + HugeBuffer::kHuge - 1) / HugeBuffer::kHuge * HugeBuffer::kHuge;
  }
  // Copies the current elements into a fresh HugeBuffer with room for `cap`.
  void rehome(size_t cap) {
    auto buf = std::make_shared<HugeBuffer>(round_huge(std::max(cap, size()) * sizeof(T)));
    const size_t n = size();
    if (n) std::memcpy(buf->data(), static_cast<const void*>(data()), n * sizeof(T));
    own_.clear();
    own_.shrink_to_fit();
    huge_ = buf.get();
    keep_ = std::move(buf);
    view_ = static_cast<const T*>(huge_->data());
    view_n_ = n;
  }
  // Room for n more elements at the end; returns where they go.
  T* grow_by(size_t n) {
    const size_t n0 = size(), n1 = n0 + n;
    const size_t bytes = n1 * sizeof(T);
    if (!huge_ && (bytes < HugeBuffer::kMinBytes || !HugeBuffer::available())) {
      auto& v = mut();
      v.resize(n1);
      return v.data() + n0;
    }
    // virtual room for twice the size: untouched pages cost nothing, and
    // the next add appends without relocating
    const size_t want = std::max(bytes, 2 * n0 * sizeof(T));
    if (!huge_ || !unique_huge()) {
      rehome(want / sizeof(T) + 1);
    } else if (bytes > huge_->capacity()) {
      huge_->grow(round_huge(want));
      view_ = static_cast<const T*>(huge_->data());
    }
    view_n_ = n1;
    return const_cast<T*>(view_) + n0;
  }

  std::vector<T> own_;
  const T* view_ = nullptr;
  size_t view_n_ = 0;
  std::shared_ptr<const void> keep_;
  HugeBuffer* huge_ = nullptr;  // keep_'s object when the view is our own huge buffer
};

}  // namespace annvil
