// Inverted lists: one std::vector of codes and one of ids per list.
#include "ivf/invlists.h"

#include <cstring>

namespace annvil {

InvertedLists::InvertedLists(size_t nlist_, size_t code_size_)
    : nlist(nlist_), code_size(code_size_), codes(nlist_), ids(nlist_) {}

void InvertedLists::check_list(size_t l) const {
  ANNVIL_CHECK(l < nlist, "list number ", l, " out of range [0, ", nlist, ")");
}

size_t InvertedLists::add_entries(size_t l, size_t n, const idx_t* new_ids, const uint8_t* new_codes) {
  check_list(l);
  size_t o = ids[l].size();
  ids[l].insert(ids[l].end(), new_ids, new_ids + n);
  codes[l].insert(codes[l].end(), new_codes, new_codes + n * code_size);
  return o;
}

size_t InvertedLists::remove_ids(const IDSelector& sel) {
  size_t removed = 0;
  for (size_t l = 0; l < nlist; ++l) {
    auto& li = ids[l];
    auto& lc = codes[l];
    size_t j = 0;
    for (size_t i = 0; i < li.size(); ++i) {
      if (sel.is_member(li[i])) continue;
      if (j != i) {
        li[j] = li[i];
        std::memcpy(lc.data() + j * code_size, lc.data() + i * code_size, code_size);
      }
      ++j;
    }
    removed += li.size() - j;
    li.resize(j);
    lc.resize(j * code_size);
  }
  return removed;
}

void InvertedLists::merge_from(InvertedLists& other, idx_t add_id) {
  ANNVIL_CHECK(other.nlist == nlist && other.code_size == code_size, "cannot merge inverted lists with nlist ",
               other.nlist, " / code_size ", other.code_size, " into lists with nlist ", nlist, " / code_size ",
               code_size);
  if (&other == this) return;
  for (size_t l = 0; l < nlist; ++l) {
    auto& oi = other.ids[l];
    size_t o = ids[l].size();
    ids[l].insert(ids[l].end(), oi.begin(), oi.end());
    if (add_id)
      for (size_t i = o; i < ids[l].size(); ++i) ids[l][i] += add_id;
    codes[l].insert(codes[l].end(), other.codes[l].begin(), other.codes[l].end());
    std::vector<idx_t>().swap(oi);
    std::vector<uint8_t>().swap(other.codes[l]);
  }
}

void InvertedLists::reset() {
  for (size_t l = 0; l < nlist; ++l) {
    std::vector<idx_t>().swap(ids[l]);
    std::vector<uint8_t>().swap(codes[l]);
  }
}

size_t InvertedLists::compute_ntotal() const {
  size_t n = 0;
  for (auto& l : ids) n += l.size();
  return n;
}

size_t InvertedLists::memory_usage() const {
  size_t b = sizeof(*this) + nlist * (sizeof(std::vector<idx_t>) + sizeof(std::vector<uint8_t>));
  for (size_t l = 0; l < nlist; ++l) b += ids[l].capacity() * sizeof(idx_t) + codes[l].capacity();
  return b;
}

double InvertedLists::imbalance_factor() const {
  double tot = 0, sq = 0;
  for (auto& l : ids) {
    tot += double(l.size());
    sq += double(l.size()) * double(l.size());
  }
  if (tot == 0) return 1.0;
  return sq * double(nlist) / (tot * tot);
}

}  // namespace annvil
