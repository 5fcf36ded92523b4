// IndexHNSW::permute_entries (Faiss's IndexHNSW::permute_entries): the
// vectors renumbered, new id i = old id perm[i]; the graph is relabelled
// (same links, same levels, same entry point), so searches return the same
// neighbours under their new ids.
#include <algorithm>
#include <cstring>

#include "hnsw/index_hnsw.h"

namespace annvil {

void hnsw_permute_entries(IndexHNSW& idx, const idx_t* perm) {
  ANNVIL_CHECK(idx.type_tag() == "HNSW" || idx.type_tag() == "HNSWFlat",
               "permute_entries is implemented for IndexHNSWFlat; this HNSW storage is ", idx.type_tag());
  HNSW& g = idx.hnsw;
  const size_t N = size_t(idx.ntotal);
  ANNVIL_CHECK(g.ntotal == N, "HNSW graph and storage sizes differ");
  std::vector<int32_t> inv(N, -1);
  for (size_t i = 0; i < N; ++i) {
    ANNVIL_CHECK(perm[i] >= 0 && size_t(perm[i]) < N && inv[size_t(perm[i])] < 0,
                 "perm must be a permutation of 0 .. ntotal-1 (entry ", i, " = ", perm[i], ")");
    inv[size_t(perm[i])] = int32_t(i);
  }
  const size_t M = size_t(g.M), S0 = 2 * M;
  auto relabel = [&](int32_t v) { return v < 0 ? v : inv[size_t(v)]; };
  // everything is built aside first, then swapped in (no partial state on error)
  std::vector<int8_t> levels(N);
  std::vector<uint32_t> ub(N, 0);
  size_t blocks = 0;
  for (size_t i = 0; i < N; ++i) {
    const int lv = g.levels[size_t(perm[i])];
    levels[i] = int8_t(lv);
    ub[i] = lv > 0 ? uint32_t(blocks) : 0;
    blocks += size_t(std::max(lv, 0));
  }
  std::vector<int32_t> l0(N * S0), up(blocks * M, -1);
  const int32_t* old0 = g.links0.data();
  for (size_t i = 0; i < N; ++i) {
    const int32_t* src = old0 + size_t(perm[i]) * S0;
    for (size_t j = 0; j < S0; ++j) l0[i * S0 + j] = relabel(src[j]);
    for (int lv = 1; lv <= levels[i]; ++lv) {
      const int32_t* s = g.links(int32_t(perm[i]), lv);
      int32_t* dst = up.data() + (size_t(ub[i]) + size_t(lv) - 1) * M;
      for (size_t j = 0; j < M; ++j) dst[j] = relabel(s[j]);
    }
  }
  const size_t D = size_t(idx.d);
  std::vector<float> xb;
  std::vector<uint16_t> xh;
  if (idx.is_f16) {
    xh.resize(N * D);
    for (size_t i = 0; i < N; ++i)
      std::memcpy(xh.data() + i * D, idx.xh.data() + size_t(perm[i]) * D, D * sizeof(uint16_t));
  } else {
    xb.resize(N * D);
    for (size_t i = 0; i < N; ++i)
      std::memcpy(xb.data() + i * D, idx.xb.data() + size_t(perm[i]) * D, D * sizeof(float));
  }
  std::vector<uint64_t> del(idx.deleted.size(), 0);
  if (idx.n_deleted)
    for (size_t i = 0; i < N; ++i)
      if (idx.is_deleted(perm[i])) del[i >> 6] |= uint64_t(1) << (i & 63);

  g.levels.swap(levels);
  g.upper_begin.swap(ub);
  g.links0.mut().swap(l0);
  g.upper_links.mut().swap(up);
  if (g.entry_point >= 0) g.entry_point = inv[size_t(g.entry_point)];
  if (idx.is_f16)
    idx.xh.mut().swap(xh);
  else
    idx.xb.mut().swap(xb);
  idx.deleted.swap(del);
}

}  // namespace annvil
