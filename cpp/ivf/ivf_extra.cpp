// IndexIVF operations of Faiss's ivflib level: add_core, copy_subset_to,
// update_vectors, search_and_return_codes, list permutation, quantizer
// replacement (declared in index_ivf.h).
#include <algorithm>
#include <cstring>
#include <numeric>

#include "ivf/index_ivf.h"
#include "core/parallel.h"

namespace annvil {

void InvertedLists::permute_invlists(const idx_t* perm) {
  std::vector<char> seen(nlist, 0);
  for (size_t i = 0; i < nlist; ++i) {
    ANNVIL_CHECK(perm[i] >= 0 && size_t(perm[i]) < nlist && !seen[size_t(perm[i])],
                 "perm must be a permutation of 0 .. nlist-1 (entry ", i, " = ", perm[i], ")");
    seen[size_t(perm[i])] = 1;
  }
  std::vector<std::vector<uint8_t>> nc(nlist);
  std::vector<std::vector<idx_t>> ni(nlist);
  for (size_t i = 0; i < nlist; ++i) {
    nc[i] = std::move(codes[size_t(perm[i])]);
    ni[i] = std::move(ids[size_t(perm[i])]);
  }
  codes = std::move(nc);
  ids = std::move(ni);
}

void IndexIVF::permute_invlists(const idx_t* perm) {
  invlists->permute_invlists(perm);
  rebuild_direct_map();
}

std::shared_ptr<InvertedLists> IndexIVF::get_invlist_range(size_t i0, size_t i1) const {
  ANNVIL_CHECK(i0 <= i1 && i1 <= nlist, "list range [", i0, ", ", i1, ") is not within [0, ", nlist, "]");
  auto out = std::make_shared<InvertedLists>(i1 - i0, code_size);
  for (size_t l = i0; l < i1; ++l) {
    out->ids[l - i0] = invlists->ids[l];
    out->codes[l - i0] = invlists->codes[l];
  }
  return out;
}

void IndexIVF::set_invlist_range(size_t i0, size_t i1, const InvertedLists& src) {
  ANNVIL_CHECK(i0 <= i1 && i1 <= nlist, "list range [", i0, ", ", i1, ") is not within [0, ", nlist, "]");
  ANNVIL_CHECK(src.nlist == i1 - i0 && src.code_size == code_size, "the source holds ", src.nlist,
               " lists of code size ", src.code_size, "; expected ", i1 - i0, " lists of code size ", code_size);
  ANNVIL_CHECK(&src != invlists.get(), "the source must be other inverted lists than the index's");
  for (size_t l = 0; l < src.nlist; ++l)
    ANNVIL_CHECK(src.codes[l].size() == src.ids[l].size() * code_size, "source list ", l, " is inconsistent");
  // check before changing anything: an array direct map needs the ids to stay 0 .. ntotal-1
  std::vector<std::vector<uint8_t>> old_codes(i1 - i0);
  std::vector<std::vector<idx_t>> old_ids(i1 - i0);
  for (size_t l = i0; l < i1; ++l) {
    old_codes[l - i0] = std::move(invlists->codes[l]);
    old_ids[l - i0] = std::move(invlists->ids[l]);
    invlists->codes[l] = src.codes[l - i0];
    invlists->ids[l] = src.ids[l - i0];
  }
  const idx_t old_ntotal = ntotal;
  ntotal = idx_t(invlists->compute_ntotal());
  try {
    rebuild_direct_map();
  } catch (...) {
    for (size_t l = i0; l < i1; ++l) {
      invlists->codes[l] = std::move(old_codes[l - i0]);
      invlists->ids[l] = std::move(old_ids[l - i0]);
    }
    ntotal = old_ntotal;
    rebuild_direct_map();
    throw;
  }
}

void IndexIVF::replace_quantizer(IndexPtr q) {
  ANNVIL_CHECK(q != nullptr, "quantizer must be an index, got None");
  ANNVIL_CHECK(q->d == d, "the quantizer has d=", q->d, ", the index d=", d);
  ANNVIL_CHECK(q.get() != this, "an index cannot be its own quantizer");
  quantizer = std::move(q);
}

void IndexIVF::add_core(idx_t n, const float* x, const idx_t* ids, const idx_t* list_nos) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n == 0) return;
  for (idx_t i = 0; i < n; ++i)
    ANNVIL_CHECK(list_nos[i] >= -1 && list_nos[i] < idx_t(nlist), "list number ", list_nos[i], " of vector ", i,
                 " out of range [-1, ", nlist, ")");
  std::vector<idx_t> seq;
  if (!ids) {
    seq.resize(size_t(n));
    std::iota(seq.begin(), seq.end(), ntotal);
    ids = seq.data();
  }
  check_direct_map_for_add(n, ids);
  std::vector<uint8_t> codes(size_t(n) * code_size);
  encode_vectors(n, x, list_nos, codes.data());
  // entries with list -1 are not stored (nor counted in ntotal, unlike
  // Faiss, so that ntotal stays the number of stored vectors)
  add_preassigned(n, list_nos, ids, codes.data());
}

size_t IndexIVF::copy_subset_to(IndexIVF& other, int subset_type, idx_t a1, idx_t a2) const {
  ANNVIL_CHECK(&other != this, "copy_subset_to: the destination must be another index");
  ANNVIL_CHECK(other.type_tag() == type_tag() && other.nlist == nlist && other.code_size == code_size && other.d == d,
               "copy_subset_to: the destination must be an empty clone of this index type (same nlist, code size)");
  ANNVIL_CHECK(subset_type >= 0 && subset_type <= 4, "subset_type must be 0 .. 4, got ", subset_type);
  ANNVIL_CHECK(subset_type != 1 || a1 > 0, "subset_type 1 (id % a1 == a2) needs a1 > 0");
  ANNVIL_CHECK(subset_type != 2 || (a1 >= 0 && a1 <= a2), "subset_type 2 needs 0 <= a1 <= a2");
  ANNVIL_CHECK(subset_type != 3 || (a1 > 0 && a2 >= 0 && a2 < a1), "subset_type 3 needs 0 <= a2 < a1");
  const InvertedLists& il = *invlists;
  const size_t total = il.compute_ntotal();
  std::vector<idx_t> lists, ids;
  std::vector<uint8_t> codes;
  auto take = [&](size_t l, size_t o) {
    lists.push_back(idx_t(l));
    ids.push_back(il.ids[l][o]);
    codes.insert(codes.end(), il.codes[l].begin() + o * code_size, il.codes[l].begin() + (o + 1) * code_size);
  };
  size_t accu_n = 0, accu_a1 = 0, accu_a2 = 0;
  for (size_t l = 0; l < nlist; ++l) {
    const size_t n = il.list_size(l);
    const idx_t* lid = il.get_ids(l);
    switch (subset_type) {
      case 0:
        for (size_t o = 0; o < n; ++o)
          if (lid[o] >= a1 && lid[o] < a2) take(l, o);
        break;
      case 1:
        for (size_t o = 0; o < n; ++o)
          if (lid[o] % a1 == a2) take(l, o);
        break;
      case 2: {
        // Faiss's element range: positions [a1, a2) of ntotal spread over the
        // lists in proportion to their sizes
        const size_t next = accu_n + n;
        const size_t na1i = total ? size_t(__int128(next) * a1 / __int128(total)) : 0;
        const size_t na2i = total ? size_t(__int128(next) * a2 / __int128(total)) : 0;
        const size_t i1 = na1i - accu_a1, i2 = na2i - accu_a2;
        for (size_t o = i1; o < i2 && o < n; ++o) take(l, o);
        accu_a1 = na1i;
        accu_a2 = na2i;
        break;
      }
      case 3: {
        const size_t i1 = n * size_t(a2) / size_t(a1), i2 = n * size_t(a2 + 1) / size_t(a1);
        for (size_t o = i1; o < i2; ++o) take(l, o);
        break;
      }
      case 4:
        if (idx_t(l) >= a1 && idx_t(l) < a2)
          for (size_t o = 0; o < n; ++o) take(l, o);
        break;
    }
    accu_n += n;
  }
  if (!lists.empty()) other.add_preassigned(idx_t(lists.size()), lists.data(), ids.data(), codes.data());
  return lists.size();
}

void IndexIVF::update_vectors(idx_t n, const idx_t* new_ids, const float* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  ANNVIL_CHECK(direct_map_type != DIRECT_MAP_NONE,
               "update_vectors needs a direct map: call make_direct_map() or set_direct_map_type() first");
  if (n == 0) return;
  check_quantizer();
  // locate every id first, so that a missing one changes nothing
  std::vector<int64_t> where(static_cast<size_t>(n));
  for (idx_t i = 0; i < n; ++i) {
    const idx_t id = new_ids[i];
    int64_t lo = -1;
    if (direct_map_type == DIRECT_MAP_ARRAY) {
      if (id >= 0 && size_t(id) < direct_map_array.size()) lo = direct_map_array[size_t(id)];
    } else {
      auto it = direct_map_hash.find(id);
      if (it != direct_map_hash.end()) lo = it->second;
    }
    ANNVIL_CHECK(lo >= 0, "update_vectors: id ", id, " is not in the index");
    for (idx_t j = 0; j < i; ++j) ANNVIL_CHECK(new_ids[j] != id, "update_vectors: id ", id, " is given twice");
    where[size_t(i)] = lo;
  }
  std::vector<idx_t> assign(static_cast<size_t>(n));
  coarse_assign(n, x, assign.data());
  for (idx_t i = 0; i < n; ++i)
    ANNVIL_CHECK(assign[size_t(i)] >= 0, "vector ", i, " has no nearest centroid (non-finite distances)");
  std::vector<uint8_t> codes(size_t(n) * code_size);
  encode_vectors(n, x, assign.data(), codes.data());
  auto set_map = [&](idx_t id, int64_t lo) {
    if (direct_map_type == DIRECT_MAP_ARRAY)
      direct_map_array[size_t(id)] = lo;
    else
      direct_map_hash[id] = lo;
  };
  auto lookup = [&](idx_t id) {
    return direct_map_type == DIRECT_MAP_ARRAY ? direct_map_array[size_t(id)] : direct_map_hash[id];
  };
  for (idx_t i = 0; i < n; ++i) {
    const idx_t id = new_ids[i];
    const int64_t lo = lookup(id);
    const size_t l = size_t(lo >> 32), o = size_t(lo & 0xffffffff);
    const size_t nl = size_t(assign[size_t(i)]);
    const uint8_t* c = codes.data() + size_t(i) * code_size;
    if (nl == l) {
      std::memcpy(invlists->codes[l].data() + o * code_size, c, code_size);
      continue;
    }
    // remove from list l by moving its last entry into the hole (Faiss's DirectMap::update_codes)
    auto& li = invlists->ids[l];
    auto& lc = invlists->codes[l];
    const size_t last = li.size() - 1;
    if (o != last) {
      li[o] = li[last];
      std::memcpy(lc.data() + o * code_size, lc.data() + last * code_size, code_size);
      set_map(li[o], int64_t(l) << 32 | int64_t(o));
    }
    li.pop_back();
    lc.resize(last * code_size);
    const size_t no = invlists->add_entries(nl, 1, &id, c);
    set_map(id, int64_t(nl) << 32 | int64_t(no));
  }
}

void IndexIVF::locate_results(idx_t n, const float* x, idx_t k, const idx_t* I, const SearchParameters* params,
                              idx_t* lists, idx_t* offsets) const {
  size_t np, mc;
  const IDSelector* sel;
  resolve_params(params, &np, &mc, &sel);
  std::vector<idx_t> keys;
  std::vector<float> cd;
  if (direct_map_type == DIRECT_MAP_NONE && n > 0) {
    keys.resize(size_t(n) * np);
    cd.resize(size_t(n) * np);
    quantizer->search(n, x, idx_t(np), cd.data(), keys.data(), quantizer_params_of(params));
  }
  ParallelErrors perr;
#pragma omp parallel for schedule(dynamic, 16) if (n * k > 1024)
  for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
      for (idx_t j = 0; j < k; ++j) {
        const size_t r = size_t(q) * size_t(k) + size_t(j);
        const idx_t id = I[r];
        lists[r] = offsets[r] = -1;
        if (id < 0) continue;
        int64_t lo = -1;
        if (direct_map_type == DIRECT_MAP_ARRAY) {
          if (size_t(id) < direct_map_array.size()) lo = direct_map_array[size_t(id)];
        } else if (direct_map_type == DIRECT_MAP_HASHTABLE) {
          auto it = direct_map_hash.find(id);
          if (it != direct_map_hash.end()) lo = it->second;
        } else {
          for (size_t p = 0; p < np && lo < 0; ++p) {
            const idx_t l = keys[size_t(q) * np + p];
            if (l < 0) continue;
            const auto& li = invlists->ids[size_t(l)];
            for (size_t o = 0; o < li.size(); ++o)
              if (li[o] == id) {
                lo = int64_t(l) << 32 | int64_t(o);
                break;
              }
          }
        }
        ANNVIL_CHECK(lo >= 0, "result ", id, " not found in the probed lists");
        lists[r] = idx_t(lo >> 32);
        offsets[r] = idx_t(lo & 0xffffffff);
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void IndexIVF::search_and_return_codes(idx_t n, const float* x, idx_t k, float* D, idx_t* I, uint8_t* codes,
                                       bool include_listnos, const SearchParameters* params) const {
  check_k(k);
  search(n, x, k, D, I, params);
  if (n <= 0) return;
  const size_t nk = size_t(n) * size_t(k);
  std::vector<idx_t> lists(nk), offs(nk);
  locate_results(n, x, k, I, params, lists.data(), offs.data());
  const size_t cs1 = code_size + (include_listnos ? coarse_code_size() : 0);
  for (size_t r = 0; r < nk; ++r) {
    uint8_t* c = codes + r * cs1;
    if (lists[r] < 0) {
      std::memset(c, 0xff, cs1);
      continue;
    }
    if (include_listnos) {
      encode_listno(lists[r], c);
      c += coarse_code_size();
    }
    std::memcpy(c, invlists->get_codes(size_t(lists[r])) + size_t(offs[r]) * code_size, code_size);
  }
}

}  // namespace annvil
