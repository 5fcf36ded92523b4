// In-place removal of rows from arrays of fixed-size rows (codes, vectors):
// the kept rows shift down, in order, as Faiss's remove_ids does.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/index.h"
#include "core/storage.h"

namespace annvil {

// Rows keep[0] < keep[1] < ... (row_len elements each) move to rows 0, 1, ...
// and the array is cut to keep.size() rows.  One memmove per run of
// consecutive kept rows; the array stays on huge pages when it is on them
// (a mapped array is copied once by writable()).  Cannot fail once the
// array is writable.
template <class T>
void compact_rows(Storage<T>& rows, size_t row_len, const std::vector<idx_t>& keep) {
  T* v = rows.writable();
  for (size_t i = 0; i < keep.size();) {
    size_t e = i + 1;
    while (e < keep.size() && keep[e] == keep[e - 1] + 1) ++e;
    if (size_t(keep[i]) != i)
      std::memmove(v + i * row_len, v + size_t(keep[i]) * row_len, (e - i) * row_len * sizeof(T));
    i = e;
  }
  rows.truncate(keep.size() * row_len);
}

// codes: ntotal rows of code_size bytes (IndexFlatCodes, IndexLSH).  Returns
// how many rows were removed and updates ntotal; nothing changes when no row
// is selected, or when the selector throws (it is asked about every row first).
inline size_t remove_code_rows(Storage<uint8_t>& codes, idx_t& ntotal, size_t code_size, const IDSelector& sel) {
  std::vector<idx_t> keep;
  keep.reserve(size_t(ntotal));
  for (idx_t i = 0; i < ntotal; ++i)
    if (!sel.is_member(i)) keep.push_back(i);
  const size_t removed = size_t(ntotal) - keep.size();
  if (!removed) return 0;
  compact_rows(codes, code_size, keep);
  ntotal = idx_t(keep.size());
  return removed;
}

}  // namespace annvil
