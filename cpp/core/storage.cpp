// HugeBuffer: the growable, huge-page-backed memory behind large Storage
// arrays (storage.h).  Linux only; elsewhere available() is false and every
// array stays in an ordinary vector.
#include "core/storage.h"

#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace annvil {

namespace {
#if defined(__linux__) && defined(MADV_HUGEPAGE) && defined(MREMAP_MAYMOVE) && defined(MREMAP_FIXED)
#define ANNVIL_HUGE_BUFFERS 1
// A range of `len` bytes (a multiple of 2 MB) starting on a 2 MB boundary:
// map 2 MB more than asked, then unmap the unaligned head and tail.
void* map_aligned(size_t len, int prot) {
  const size_t huge = HugeBuffer::kHuge;
  void* raw = mmap(nullptr, len + huge, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t r = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t a = (r + huge - 1) / huge * huge;
  if (a > r) munmap(raw, a - r);
  const uintptr_t end = r + len + huge;
  if (end > a + len) munmap(reinterpret_cast<void*>(a + len), end - (a + len));
  return reinterpret_cast<void*>(a);
}
#endif
}  // namespace

bool HugeBuffer::available() {
#ifdef ANNVIL_HUGE_BUFFERS
  return true;
#else
  return false;
#endif
}

HugeBuffer::HugeBuffer(size_t capacity_bytes) {
#ifdef ANNVIL_HUGE_BUFFERS
  len_ = (capacity_bytes + kHuge - 1) / kHuge * kHuge;
  if (len_ == 0) len_ = kHuge;
  p_ = map_aligned(len_, PROT_READ | PROT_WRITE);
  madvise(p_, len_, MADV_HUGEPAGE);  // advice only: ignored where THP is off
#else
  (void)capacity_bytes;
  throw std::bad_alloc();
#endif
}

HugeBuffer::~HugeBuffer() {
#ifdef ANNVIL_HUGE_BUFFERS
  if (p_) munmap(p_, len_);
#endif
}

void HugeBuffer::grow(size_t capacity_bytes) {
#ifdef ANNVIL_HUGE_BUFFERS
  const size_t len = (capacity_bytes + kHuge - 1) / kHuge * kHuge;
  if (len <= len_) return;
  // Move the pages to an aligned target range of the new size: mremap moves
  // page tables, not data, and an aligned target keeps the huge pages whole.
  void* target = map_aligned(len, PROT_NONE);
  void* q = mremap(p_, len_, len, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (q == MAP_FAILED) {
    munmap(target, len);
    throw std::bad_alloc();
  }
  p_ = q;
  len_ = len;
  madvise(p_, len_, MADV_HUGEPAGE);
#else
  (void)capacity_bytes;
  throw std::bad_alloc();
#endif
}

}  // namespace annvil
