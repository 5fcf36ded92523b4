// An array that either owns its elements (std::vector) or views memory kept
// alive by someone else (a memory-mapped index file).  Mutation goes through
// mut(), which copies a view into owned memory first (copy-on-write), so an
// index loaded with mmap is searchable in place and still accepts adds.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

namespace annvil {

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
    }
    return own_;
  }
  void set_view(const T* p, size_t n, std::shared_ptr<const void> keep) {
    own_.clear();
    own_.shrink_to_fit();
    view_ = p;
    view_n_ = n;
    keep_ = std::move(keep);
    if (n == 0) view_ = nullptr;
  }
  void clear() {
    view_ = nullptr;
    view_n_ = 0;
    keep_.reset();
    own_.clear();
    own_.shrink_to_fit();
  }
  size_t capacity_bytes() const { return view_ ? 0 : own_.capacity() * sizeof(T); }

 private:
  std::vector<T> own_;
  const T* view_ = nullptr;
  size_t view_n_ = 0;
  std::shared_ptr<const void> keep_;
};

}  // namespace annvil
