// Removal from an index whose ids are positions in one array of fixed-size
// codes (IndexScalarQuantizer, IndexLSH): the kept rows shift down, in order,
// as Faiss's remove_ids does.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/index.h"
#include "core/storage.h"

namespace annvil {

// codes: ntotal rows of code_size bytes.  Returns how many rows were removed
// and updates ntotal; nothing changes when no row is selected.
inline size_t remove_code_rows(Storage<uint8_t>& codes, idx_t& ntotal, size_t code_size, const IDSelector& sel) {
  // 1. ask the selector about every row first: it may throw, and nothing has
  //    changed yet
  std::vector<uint8_t> gone(static_cast<size_t>(ntotal));
  size_t removed = 0;
  for (idx_t i = 0; i < ntotal; ++i) {
    gone[size_t(i)] = sel.is_member(i) ? 1 : 0;
    removed += gone[size_t(i)];
  }
  if (!removed) return 0;
  // 2. compact in place, one memmove per run of kept rows (cannot fail; a
  //    mapped array is copied once by writable())
  uint8_t* p = codes.writable();
  size_t j = 0, i = 0;
  const size_t n = size_t(ntotal);
  while (i < n) {
    if (gone[i]) {
      ++i;
      continue;
    }
    size_t e = i;
    while (e < n && !gone[e]) ++e;
    if (j != i) std::memmove(p + j * code_size, p + i * code_size, (e - i) * code_size);
    j += e - i;
    i = e;
  }
  codes.truncate(j * code_size);
  ntotal = idx_t(j);
  return removed;
}

}  // namespace annvil
