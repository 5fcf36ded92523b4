// Removal from an index whose ids are positions in one array of fixed-size
// codes (IndexScalarQuantizer, IndexLSH): the kept rows shift down, in order,
// as Faiss's remove_ids does.
#pragma once
#include <cstdint>
#include <vector>

#include "core/index.h"
#include "core/storage.h"

namespace annvil {

// codes: ntotal rows of code_size bytes.  Returns how many rows were removed
// and updates ntotal; nothing changes when no row is selected.
inline size_t remove_code_rows(Storage<uint8_t>& codes, idx_t& ntotal, size_t code_size, const IDSelector& sel) {
  std::vector<uint8_t> kept;
  kept.reserve(codes.size());
  idx_t j = 0;
  for (idx_t i = 0; i < ntotal; ++i) {
    if (sel.is_member(i)) continue;
    kept.insert(kept.end(), codes.data() + size_t(i) * code_size, codes.data() + size_t(i + 1) * code_size);
    ++j;
  }
  const size_t removed = size_t(ntotal - j);
  if (removed) {
    codes.mut().swap(kept);
    ntotal = j;
  }
  return removed;
}

}  // namespace annvil
