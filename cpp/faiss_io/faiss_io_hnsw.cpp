// Faiss's index file format: the HNSW graph and IndexHNSWFlat / SQ / PQ.
#include "faiss_io/faiss_io_impl.h"

#include <algorithm>
#include <cmath>

#include "hnsw/hnsw.h"
#include "hnsw/index_hnsw.h"
#include "hnsw/index_hnsw_quant.h"
#include "index_flat.h"
#include "index_pq.h"
#include "index_sq.h"

namespace annvil {
namespace fio {

// Faiss's graph: per node i, levels[i] = number of levels it is on (>= 1);
// its neighbours at level l are neighbors[offsets[i] + cum[l] ..
// offsets[i] + cum[l + 1]), -1 padded, with cum = cum_nneighbor_per_level
// (0, 2M, 3M, 4M, ... for Faiss's defaults).  annvil: links0 holds 2M per
// node, upper_links M per (node, level >= 1) block, levels[i] = top level.
void read_faiss_hnsw(FReader& r, HNSW& g, int* M_out) {
  std::vector<double> probas;
  std::vector<int32_t> cum, levels;
  std::vector<uint64_t> offsets;
  r.vec(probas, "HNSW assign_probas");
  r.vec(cum, "HNSW cum_nneighbor_per_level");
  r.vec(levels, "HNSW levels");
  r.vec(offsets, "HNSW offsets");
  const size_t nnb = r.vec_count<int32_t>("HNSW neighbors");
  const int32_t* nb_raw = reinterpret_cast<const int32_t*>(r.raw(nnb * 4, "HNSW neighbors"));
  std::vector<int32_t> nb(nnb);
  if (nnb) std::memcpy(nb.data(), nb_raw, nnb * 4);
  const int32_t ep = r.get<int32_t>("HNSW entry_point");
  const int32_t max_level = r.get<int32_t>("HNSW max_level");
  const int32_t efc = r.get<int32_t>("HNSW efConstruction");
  const int32_t efs = r.get<int32_t>("HNSW efSearch");
  r.get<int32_t>("HNSW upper_beam");

  if (cum.size() < 2 || cum[0] != 0 || cum[1] <= 0 || cum[1] % 2) r.corrupt("bad HNSW cum_nneighbor_per_level");
  const int M = cum[1] / 2;
  if (M < 2 || M > 4096) ANNVIL_THROW(file_format, "HNSW with ", cum[1], " level-0 neighbours is not supported");
  for (size_t l = 1; l + 1 < cum.size(); ++l)
    if (cum[l + 1] - cum[l] != M)
      ANNVIL_THROW(file_format, "HNSW with per-level neighbour counts other than (2M, M, M, ...) is not supported");
  const size_t N = levels.size();
  if (N >= size_t(std::numeric_limits<int32_t>::max())) r.corrupt("HNSW too large");
  if (offsets.size() != N + 1 || offsets[0] != 0) r.corrupt("HNSW offsets do not match the levels");
  if (efc <= 0 || efs <= 0 || efc > (1 << 20) || efs > (1 << 20)) r.corrupt("bad HNSW ef parameters");
  g.M = M;
  g.efConstruction = efc;
  g.efSearch = efs;
  g.levels.resize(N);
  g.upper_begin.assign(N, 0);
  size_t blocks = 0;
  int top = -1;
  for (size_t i = 0; i < N; ++i) {
    const int32_t L = levels[i];
    if (L < 1 || size_t(L) >= cum.size() || L > 101) r.corrupt("bad HNSW node level");
    if (offsets[i + 1] != offsets[i] + uint64_t(cum[size_t(L)])) r.corrupt("HNSW offsets do not match the levels");
    g.levels[i] = int8_t(L - 1);
    g.upper_begin[i] = L > 1 ? uint32_t(blocks) : 0;
    blocks += size_t(L - 1);
    if (blocks > std::numeric_limits<uint32_t>::max()) r.corrupt("HNSW too large");
    top = std::max(top, L - 1);
  }
  if (offsets[N] > nb.size()) r.corrupt("HNSW neighbors shorter than the offsets");
  auto& l0 = g.links0.mut();
  auto& up = g.upper_links.mut();
  l0.assign(N * 2 * size_t(M), -1);
  up.assign(blocks * size_t(M), -1);
  for (size_t i = 0; i < N; ++i) {
    const int32_t* src = nb.data() + offsets[i];
    std::memcpy(l0.data() + i * 2 * M, src, size_t(2 * M) * 4);
    for (int lev = 1; lev < levels[i]; ++lev)
      std::memcpy(up.data() + (size_t(g.upper_begin[i]) + lev - 1) * M, src + cum[size_t(lev)], size_t(M) * 4);
  }
  // Faiss may leave entries after a -1; annvil ends a list at the first -1
  auto clean = [&](int32_t* p, size_t n) {
    bool end = false;
    for (size_t j = 0; j < n; ++j) {
      if (p[j] < 0) end = true;
      if (end) p[j] = -1;
    }
  };
  for (size_t i = 0; i < N; ++i) clean(l0.data() + i * 2 * M, size_t(2 * M));
  for (size_t b = 0; b < blocks; ++b) clean(up.data() + b * M, size_t(M));
  g.max_level = N ? max_level : -1;
  g.entry_point = N ? ep : -1;
  if (N && max_level != top) r.corrupt("HNSW max_level does not match the node levels");
  check_hnsw_graph(dummy_reader(), g, N);
  *M_out = M;
}

void write_faiss_hnsw(FWriter& w, const HNSW& g) {
  const int M = g.M;
  const size_t N = g.ntotal;
  // Faiss's set_default_probas(M, 1 / ln M): levels while the probability >= 1e-9
  std::vector<double> probas;
  std::vector<int32_t> cum{0};
  const float mult = float(1.0 / std::log(double(M)));
  int nn = 0;
  for (int level = 0;; ++level) {
    // the quotients in float, exp in double, the product rounded to float (as Faiss)
    float p = float(std::exp(double(-level / mult)) * (1 - std::exp(double(-1 / mult))));
    if (p < 1e-9) break;
    probas.push_back(p);
    nn += level == 0 ? 2 * M : M;
    cum.push_back(nn);
  }
  int top = 0;
  for (size_t i = 0; i < N; ++i) top = std::max(top, int(g.levels[i]));
  while (int(cum.size()) < top + 2) {  // a node above Faiss's default levels
    nn += M;
    cum.push_back(nn);
    probas.push_back(0.0);
  }
  std::vector<int32_t> levels(N);
  std::vector<uint64_t> offsets(N + 1, 0);
  for (size_t i = 0; i < N; ++i) {
    levels[i] = int32_t(g.levels[i]) + 1;
    offsets[i + 1] = offsets[i] + uint64_t(cum[size_t(levels[i])]);
  }
  std::vector<int32_t> nb(offsets[N], -1);
  for (size_t i = 0; i < N; ++i) {
    int32_t* dst = nb.data() + offsets[i];
    std::memcpy(dst, g.links(int32_t(i), 0), size_t(2 * M) * 4);
    for (int lev = 1; lev < levels[i]; ++lev)
      std::memcpy(dst + cum[size_t(lev)], g.links(int32_t(i), lev), size_t(M) * 4);
  }
  w.vec(probas);
  w.vec(cum);
  w.vec(levels);
  w.vec(offsets);
  w.vec(nb);
  w.put<int32_t>(g.entry_point);
  w.put<int32_t>(g.max_level);
  w.put<int32_t>(g.efConstruction);
  w.put<int32_t>(g.efSearch);
  w.put<int32_t>(1);  // upper_beam (deprecated)
}

IndexPtr read_hnsw(FReader& r, uint32_t h) {
  FHeader hd = read_header(r);
  if (hd.d == 0) r.corrupt("bad dimension");
  HNSW g;
  int M = 0;
  read_faiss_hnsw(r, g, &M);
  if (g.levels.size() != size_t(hd.ntotal)) r.corrupt("HNSW graph size does not match ntotal");
  IndexPtr storage = read_index_nonnull(r, "HNSW storage");
  if (storage->d != hd.d || storage->ntotal != hd.ntotal) r.corrupt("HNSW storage does not match the index");
  std::shared_ptr<IndexHNSW> idx;
  if (h == fourcc("IHNf")) {
    auto* fl = dynamic_cast<IndexFlat*>(storage.get());
    if (!fl) r.corrupt("IndexHNSWFlat storage is not an IndexFlat");
    idx = build("IndexHNSWFlat", [&] { return std::make_shared<IndexHNSWFlat>(hd.d, M, hd.metric); });
    idx->xb.assign_bytes_of(fl->codes);  // shares a mapped view, or copies
  } else if (h == fourcc("IHNs")) {
    auto* sq = dynamic_cast<IndexScalarQuantizer*>(storage.get());
    if (!sq) r.corrupt("IndexHNSWSQ storage is not an IndexScalarQuantizer");
    auto q = build("IndexHNSWSQ", [&] { return std::make_shared<IndexHNSWSQ>(hd.d, sq->sq.qtype, M, hd.metric); });
    q->sq = sq->sq;
    q->code_size = q->sq.code_size;
    q->codes = sq->codes;
    idx = q;
  } else {
    auto* pq = dynamic_cast<IndexPQ*>(storage.get());
    if (!pq) r.corrupt("IndexHNSWPQ storage is not an IndexPQ");
    auto q = build("IndexHNSWPQ",
                   [&] { return std::make_shared<IndexHNSWPQ>(hd.d, int(pq->pq.M), M, int(pq->pq.nbits), hd.metric); });
    q->pq = pq->pq;
    q->code_size = q->pq.code_size;
    q->codes = pq->codes;
    idx = q;
  }
  if (storage->metric_type != hd.metric) r.corrupt("HNSW storage metric differs from the index");
  g.seed = idx->hnsw.seed;
  idx->hnsw = std::move(g);
  idx->ntotal = hd.ntotal;
  idx->metric_arg = hd.metric_arg;
  idx->is_trained = hd.is_trained;
  idx->is_f16 = false;
  idx->allow_f16 = false;  // keep float32 storage, as Faiss
  idx->deleted.assign((size_t(hd.ntotal) + 63) / 64, 0);
  idx->n_deleted = 0;
  return idx;
}

// IndexHNSWFlat, IndexHNSWSQ, IndexHNSWPQ (graph, then the storage index)
bool write_hnsw_family(FWriter& w, const Index& idx) {
  auto* p = dynamic_cast<const IndexHNSW*>(&idx);
  if (!p) return false;
  if (p->n_deleted)
    ANNVIL_THROW(value, "this HNSW index has ", p->n_deleted,
                 " vectors marked deleted, which Faiss's format cannot hold: call compact() first");
  auto* sq = dynamic_cast<const IndexHNSWSQ*>(&idx);
  auto* pq = dynamic_cast<const IndexHNSWPQ*>(&idx);
  if (!sq && !pq && !dynamic_cast<const IndexHNSWFlat*>(&idx))
    ANNVIL_THROW(value, "this HNSW index type cannot be written in Faiss's format");
  w.tag(sq ? "IHNs" : pq ? "IHNp" : "IHNf");
  write_header(w, idx);
  write_faiss_hnsw(w, p->hnsw);
  const size_t N = size_t(p->ntotal);
  if (sq) {
    w.tag("IxSQ");
    write_header(w, idx);
    write_sq(w, sq->sq);
    w.vec(sq->codes.data(), sq->codes.size());
  } else if (pq) {
    w.tag("IxPq");
    write_header(w, idx);
    write_pq(w, pq->pq);
    w.vec(pq->codes.data(), pq->codes.size());
    w.put<int32_t>(0);
    w.put_bool(false);
    w.put<int32_t>(int32_t(pq->pq.nbits * pq->pq.M + 1));
  } else if (p->is_f16) {
    std::vector<float> xb(N * size_t(p->d));
    for (size_t i = 0; i < xb.size(); ++i) xb[i] = half_to_float(p->xh[i]);
    write_flat_storage(w, idx, xb.data(), xb.size(), p->ntotal);
  } else {
    write_flat_storage(w, idx, p->xb.data(), p->xb.size(), p->ntotal);
  }
  return true;
}

}  // namespace fio
}  // namespace annvil
