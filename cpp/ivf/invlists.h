// Inverted lists: for each of nlist lists, the codes (code_size bytes per
// entry, contiguous) and the int64 ids of its entries.  Each list is its own
// std::vector, so adding to one list never copies the rest of the index, and
// a scan reads one contiguous run of codes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/index.h"

namespace annvil {

struct InvertedLists {
  size_t nlist = 0;
  size_t code_size = 0;
  std::vector<std::vector<uint8_t>> codes;  // codes[l]: list_size(l) * code_size bytes
  std::vector<std::vector<idx_t>> ids;      // ids[l]: list_size(l) ids

  InvertedLists(size_t nlist, size_t code_size);

  size_t list_size(size_t l) const { return ids[l].size(); }
  const uint8_t* get_codes(size_t l) const { return codes[l].data(); }
  const idx_t* get_ids(size_t l) const { return ids[l].data(); }

  // Append n entries to list l; returns the offset of the first one.
  size_t add_entries(size_t l, size_t n, const idx_t* new_ids, const uint8_t* new_codes);
  // Remove the entries whose id the selector accepts (order of the others is
  // kept); returns how many were removed.
  size_t remove_ids(const IDSelector& sel);
  // Move all entries of `other` (same nlist and code_size) to the end of the
  // matching lists, adding add_id to their ids; `other` is left empty.
  void merge_from(InvertedLists& other, idx_t add_id = 0);
  void reset();
  // new list i = old list perm[i] (perm: nlist, a permutation)
  void permute_invlists(const idx_t* perm);

  size_t compute_ntotal() const;
  size_t memory_usage() const;
  // sum of squared list sizes relative to the ideal (1 = balanced), as Faiss
  double imbalance_factor() const;
  void check_list(size_t l) const;
};

}  // namespace annvil
