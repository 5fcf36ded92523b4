// IndexShards, IndexReplicas, IndexShardsIVF (see index_shards.h).
#include "index_shards.h"

#include <omp.h>

#include <algorithm>

#include "core/topk.h"
#include "ivf/index_ivf.h"
#include "core/io.h"
#include "quant/kmeans.h"
#include <typeinfo>
#include "core/parallel.h"
#include "core/utils.h"

namespace annvil {

namespace {

// Runs f(0) .. f(m-1): on the OpenMP pool, one member per thread, when
// threaded (the members' own parallel loops then stay on their thread), else
// in order on the calling thread (each member using the whole pool).
void run_members(size_t m, bool threaded, const std::function<void(size_t)>& f) {
  ParallelErrors perr;
  if (threaded && m > 1) {
    const int nt = std::max(1, std::min(int(m), omp_get_max_threads()));
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t s = 0; s < int64_t(m); ++s) ANNVIL_OMP_TRY(perr) {
        f(size_t(s));
      }
    ANNVIL_OMP_CATCH(perr)
    perr.rethrow();
  } else {
    for (size_t s = 0; s < m; ++s) f(s);
  }
}

void check_member(const Index& owner, const Index& member, const char* what) {
  ANNVIL_CHECK(&member != &owner, "cannot add an index to itself as a ", what);
  ANNVIL_CHECK(owner.d == 0 || member.d == owner.d, "the ", what, " has d=", member.d, ", expected d=", owner.d);
}

// add_shard / add_replica: checks m (what: "shard" or "replica") against the
// owner and the members, takes d and the metric from the first member, and
// appends it.  same_ntotal: every member must hold as many vectors as the first.
void add_member(Index& owner, std::vector<IndexPtr>& members, IndexPtr m, const char* what, bool same_ntotal) {
  ANNVIL_CHECK(m != nullptr, what, " must be an index, got None");
  check_member(owner, *m, what);
  for (auto& s : members) ANNVIL_CHECK(s != m, "this index is a ", what, " already");
  if (members.empty()) {
    owner.d = m->d;
    owner.metric_type = m->metric_type;
    owner.metric_arg = m->metric_arg;
  } else {
    ANNVIL_CHECK(m->metric_type == owner.metric_type, "the ", what, "'s metric differs from the other ", what, "s'");
    if (same_ntotal)
      ANNVIL_CHECK(m->ntotal == members[0]->ntotal, "the ", what, " holds ", m->ntotal, " vectors, the others ",
                   members[0]->ntotal, ": ", what, "s must hold the same data");
  }
  members.push_back(std::move(m));
}

// remove_shard / remove_replica (fn: the caller's name, for the message)
void remove_member(std::vector<IndexPtr>& members, const Index* m, const char* fn, const char* what) {
  auto it = std::find_if(members.begin(), members.end(), [&](const IndexPtr& s) { return s.get() == m; });
  ANNVIL_CHECK(it != members.end(), fn, ": this index is not a ", what);
  members.erase(it);
}

// f(member) for every member under its write lock (run_members' threading)
void each_locked(const std::vector<IndexPtr>& members, bool threaded, const std::function<void(Index&)>& f) {
  run_members(members.size(), threaded, [&](size_t s) {
    auto lock = members[s]->lock.write();
    f(*members[s]);
  });
}

// the blocks [i0, i1) of n rows split over m members
inline idx_t block_start(idx_t n, size_t m, size_t s) { return idx_t(size_t(n) * s / m); }

void write_members(Writer& w, const Index& owner, const std::vector<IndexPtr>& members, uint8_t flag0, uint8_t flag1) {
  write_index_header(w, owner);
  w.write<uint8_t>(flag0);
  w.write<uint8_t>(flag1);
  w.write<uint64_t>(members.size());
  for (auto& m : members) write_index_record(*m, w);
}

}  // namespace

// ---- IndexShards ---------------------------------------------------------------------------
IndexShards::IndexShards(int d_, bool threaded_, bool successive_ids_)
    : Index(d_ > 0 ? d_ : 1, METRIC_L2, true), threaded(threaded_), successive_ids(successive_ids_) {
  ANNVIL_CHECK(d_ >= 0, "dimension d must be non-negative (0: taken from the first shard), got ", d_);
  d = d_;
}

void IndexShards::check_nonempty() const {
  ANNVIL_CHECK(!shards.empty(), type_tag(), " has no shard: call add_shard() first");
}

void IndexShards::add_shard(IndexPtr shard) {
  add_member(*this, shards, std::move(shard), "shard", false);
  sync_with_shards();
}

void IndexShards::remove_shard(const Index* shard) {
  remove_member(shards, shard, "remove_shard", "shard");
  sync_with_shards();
}

void IndexShards::sync_with_shards() {
  idx_t n = 0;
  bool trained = true;
  for (auto& s : shards) {
    auto lock = s->lock.read();
    n += s->ntotal;
    trained = trained && s->is_trained;
  }
  ntotal = n;
  is_trained = shards.empty() ? is_trained : trained;
}

void IndexShards::for_each_shard(const std::function<void(size_t)>& f) const {
  run_members(shards.size(), threaded, f);
}

std::vector<idx_t> IndexShards::id_offsets() const {
  std::vector<idx_t> off(shards.size(), 0);
  if (successive_ids)
    for (size_t s = 1; s < shards.size(); ++s) off[s] = off[s - 1] + shards[s - 1]->ntotal;
  return off;
}

void IndexShards::train(idx_t n, const float* x) {
  check_nonempty();
  each_locked(shards, threaded, [&](Index& s) { s.train(n, x); });
  sync_with_shards();
}

void IndexShards::add(idx_t n, const float* x) { add_with_ids(n, x, nullptr); }

void IndexShards::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  check_nonempty();
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  ANNVIL_CHECK(!(successive_ids && ids),
               "IndexShards with successive_ids=True numbers the vectors itself: use add(), not add_with_ids");
  ANNVIL_CHECK(!successive_ids || ntotal == 0,
               "IndexShards with successive_ids=True supports add() in a single pass only (it holds ", ntotal,
               " vectors already)");
  std::vector<idx_t> seq;
  if (!ids && !successive_ids) {
    seq.resize(size_t(n));
    for (idx_t i = 0; i < n; ++i) seq[size_t(i)] = ntotal + i;
    ids = seq.data();
  }
  const size_t m = shards.size();
  try {
    for_each_shard([&](size_t s) {
      const idx_t i0 = block_start(n, m, s), i1 = block_start(n, m, s + 1);
      auto lock = shards[s]->lock.write();
      if (ids)
        shards[s]->add_with_ids(i1 - i0, x + size_t(i0) * d, ids + i0);
      else
        shards[s]->add(i1 - i0, x + size_t(i0) * d);
    });
  } catch (...) {
    sync_with_shards();
    throw;
  }
  sync_with_shards();
}

void IndexShards::merge_results(idx_t n, idx_t k, std::vector<float>& Dall, std::vector<idx_t>& Iall, float* D,
                                idx_t* I) const {
  const size_t m = shards.size();
  const std::vector<idx_t> off = id_offsets();
  for (size_t s = 0; s < m; ++s) {
    if (!off[s]) continue;
    idx_t* Is = Iall.data() + s * size_t(n) * size_t(k);
    for (size_t i = 0; i < size_t(n) * size_t(k); ++i)
      if (Is[i] >= 0) Is[i] += off[s];
  }
  merge_knn_results<float>(size_t(n), size_t(k), m, Dall.data(), Iall.data(), D, I, is_similarity_metric(metric_type));
}

void IndexShards::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_k(k);
  check_nonempty();
  if (n <= 0) return;
  const size_t m = shards.size();
  const size_t nk = size_t(n) * size_t(k);
  std::vector<float> Dall(m * nk);
  std::vector<idx_t> Iall(m * nk);
  for_each_shard([&](size_t s) {
    auto lock = shards[s]->lock.read();
    shards[s]->check_trained();
    shards[s]->search(n, x, k, Dall.data() + s * nk, Iall.data() + s * nk, params);
  });
  merge_results(n, k, Dall, Iall, D, I);
}

void IndexShards::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                               const SearchParameters* params) const {
  check_nonempty();
  const size_t m = shards.size();
  std::vector<RangeSearchResult> parts(m);
  for_each_shard([&](size_t s) {
    auto lock = shards[s]->lock.read();
    shards[s]->check_trained();
    shards[s]->range_search(n, x, radius, &parts[s], params);
  });
  // per query: the shards' hits one after the other, ids shifted
  const std::vector<idx_t> off = id_offsets();
  result->nq = size_t(std::max<idx_t>(n, 0));
  result->lims.assign(result->nq + 1, 0);
  for (size_t q = 0; q < result->nq; ++q) {
    size_t c = 0;
    for (auto& p : parts) c += p.lims[q + 1] - p.lims[q];
    result->lims[q + 1] = result->lims[q] + c;
  }
  result->distances.resize(result->lims[result->nq]);
  result->labels.resize(result->lims[result->nq]);
  for (size_t q = 0; q < result->nq; ++q) {
    size_t o = result->lims[q];
    for (size_t s = 0; s < m; ++s) {
      const auto& p = parts[s];
      for (size_t j = p.lims[q]; j < p.lims[q + 1]; ++j, ++o) {
        result->distances[o] = p.distances[j];
        result->labels[o] = p.labels[j] >= 0 ? p.labels[j] + off[s] : p.labels[j];
      }
    }
  }
}

void IndexShards::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(successive_ids, "reconstruct on IndexShards needs successive_ids=True (ids are then positions)");
  ANNVIL_CHECK(key >= 0 && key < ntotal, "key ", key, " out of range [0, ", ntotal, ")");
  idx_t off = 0;
  for (auto& s : shards) {
    if (key < off + s->ntotal) {
      auto lock = s->lock.read();
      s->reconstruct(key - off, out);
      return;
    }
    off += s->ntotal;
  }
  ANNVIL_THROW(value, "key ", key, " out of range (were the shards modified? call sync_with_shard_indexes())");
}

void IndexShards::reset() {
  each_locked(shards, threaded, [](Index& s) { s.reset(); });
  sync_with_shards();
}

size_t IndexShards::memory_usage() const {
  size_t b = sizeof(*this);
  for (auto& s : shards) b += s->memory_usage();
  return b;
}

void IndexShards::write_payload(Writer& w) const {
  write_members(w, *this, shards, threaded ? 1 : 0, successive_ids ? 1 : 0);
}

// ---- IndexReplicas -----------------------------------------------------------------------------
IndexReplicas::IndexReplicas(int d_, bool threaded_) : Index(d_ > 0 ? d_ : 1, METRIC_L2, true), threaded(threaded_) {
  ANNVIL_CHECK(d_ >= 0, "dimension d must be non-negative (0: taken from the first replica), got ", d_);
  d = d_;
}

void IndexReplicas::add_replica(IndexPtr r) {
  add_member(*this, replicas, std::move(r), "replica", true);
  sync_with_replicas();
}

void IndexReplicas::remove_replica(const Index* r) {
  remove_member(replicas, r, "remove_replica", "replica");
  sync_with_replicas();
}

void IndexReplicas::sync_with_replicas() {
  if (replicas.empty()) {
    ntotal = 0;
    return;
  }
  auto lock = replicas[0]->lock.read();
  ntotal = replicas[0]->ntotal;
  is_trained = replicas[0]->is_trained;
}

void IndexReplicas::check_nonempty() const {
  ANNVIL_CHECK(!replicas.empty(), "IndexReplicas has no replica: call add_replica() first");
}

void IndexReplicas::for_each_replica(const std::function<void(size_t)>& f) const {
  run_members(replicas.size(), threaded, f);
}

void IndexReplicas::train(idx_t n, const float* x) {
  check_nonempty();
  each_locked(replicas, threaded, [&](Index& r) { r.train(n, x); });
  sync_with_replicas();
}

void IndexReplicas::add(idx_t n, const float* x) { add_with_ids(n, x, nullptr); }

void IndexReplicas::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  check_nonempty();
  each_locked(replicas, threaded, [&](Index& r) {
    if (ids)
      r.add_with_ids(n, x, ids);
    else
      r.add(n, x);
  });
  sync_with_replicas();
}

void IndexReplicas::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_k(k);
  check_nonempty();
  const size_t m = replicas.size();
  for_each_replica([&](size_t s) {
    const idx_t i0 = block_start(n, m, s), i1 = block_start(n, m, s + 1);
    if (i1 <= i0) return;
    auto lock = replicas[s]->lock.read();
    replicas[s]->check_trained();
    replicas[s]->search(i1 - i0, x + size_t(i0) * d, k, D + size_t(i0) * size_t(k), I + size_t(i0) * size_t(k), params);
  });
}

void IndexReplicas::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                                 const SearchParameters* params) const {
  check_nonempty();
  const size_t m = replicas.size();
  std::vector<RangeSearchResult> parts(m);
  for_each_replica([&](size_t s) {
    const idx_t i0 = block_start(n, m, s), i1 = block_start(n, m, s + 1);
    parts[s].lims.assign(1, 0);
    if (i1 <= i0) return;
    auto lock = replicas[s]->lock.read();
    replicas[s]->check_trained();
    replicas[s]->range_search(i1 - i0, x + size_t(i0) * d, radius, &parts[s], params);
  });
  result->nq = size_t(std::max<idx_t>(n, 0));
  result->lims.assign(1, 0);
  result->distances.clear();
  result->labels.clear();
  for (auto& p : parts) {
    const size_t base = result->lims.back();
    for (size_t q = 1; q < p.lims.size(); ++q) result->lims.push_back(base + p.lims[q]);
    result->distances.insert(result->distances.end(), p.distances.begin(), p.distances.end());
    result->labels.insert(result->labels.end(), p.labels.begin(), p.labels.end());
  }
}

void IndexReplicas::reconstruct(idx_t key, float* out) const {
  check_nonempty();
  auto lock = replicas[0]->lock.read();
  replicas[0]->reconstruct(key, out);
}

void IndexReplicas::reset() {
  each_locked(replicas, threaded, [](Index& r) { r.reset(); });
  sync_with_replicas();
}

void IndexReplicas::write_payload(Writer& w) const { write_members(w, *this, replicas, threaded ? 1 : 0, 0); }

// ---- IndexShardsIVF --------------------------------------------------------------------------------
IndexShardsIVF::IndexShardsIVF(IndexPtr q, size_t nlist_, bool threaded_, bool successive_ids_)
    : IndexShards(q ? q->d : 0, threaded_, successive_ids_), quantizer(std::move(q)), nlist(nlist_) {
  ANNVIL_CHECK(quantizer != nullptr, "quantizer must be an index, got None");
  ANNVIL_CHECK(nlist > 0, "nlist must be positive");
  metric_type = quantizer->metric_type;
  is_trained = quantizer->is_trained && size_t(quantizer->ntotal) == nlist;
}

IndexIVF& IndexShardsIVF::ivf(size_t s) const { return dynamic_cast<IndexIVF&>(*shards[s]); }

void IndexShardsIVF::add_shard(IndexPtr shard) {
  ANNVIL_CHECK(shard != nullptr, "shard must be an index, got None");
  auto* iv = dynamic_cast<IndexIVF*>(shard.get());
  if (!iv) ANNVIL_THROW(type, "IndexShardsIVF takes IndexIVF shards only, got a ", shard->type_tag());
  ANNVIL_CHECK(iv->nlist == nlist, "the shard has nlist=", iv->nlist, ", expected ", nlist);
  bool trained = is_trained;
  IndexShards::add_shard(std::move(shard));
  // the meta index is trained when its quantizer is, whatever the shards say
  // before train() has run on them
  is_trained = trained && is_trained;
}

void IndexShardsIVF::train(idx_t n, const float* x) {
  check_nonempty();
  {
    auto qlock = quantizer->lock.write();
    if (!quantizer->is_trained || size_t(quantizer->ntotal) != nlist) {
      ANNVIL_CHECK(size_t(n) >= nlist, "IVF training needs at least nlist=", nlist, " vectors, got ", n);
      ClusteringParameters cp;  // Faiss's Level1Quantizer: 10 iterations
      cp.niter = 10;
      cp.metric = quantizer->metric_type;
      Clustering clus(d, int(nlist), cp);
      clus.train(n, x);
      quantizer->reset();
      quantizer->train(idx_t(nlist), clus.centroids.data());
      quantizer->add(idx_t(nlist), clus.centroids.data());
    }
  }
  std::vector<float> centroids(nlist * size_t(d));
  quantizer->reconstruct_n(0, idx_t(nlist), centroids.data());
  for (size_t s = 0; s < shards.size(); ++s) {
    IndexIVF& iv = ivf(s);
    auto lock = iv.lock.write();
    if (iv.quantizer.get() != quantizer.get()) {
      iv.quantizer->reset();
      if (!iv.quantizer->is_trained) iv.quantizer->train(idx_t(nlist), centroids.data());
      iv.quantizer->add(idx_t(nlist), centroids.data());
    }
    iv.train(n, x);
  }
  sync_with_shards();
  is_trained = true;
}

void IndexShardsIVF::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  check_nonempty();
  check_trained();
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  ANNVIL_CHECK(!(successive_ids && ids),
               "IndexShardsIVF with successive_ids=True numbers the vectors itself: use add(), not add_with_ids");
  ANNVIL_CHECK(!successive_ids || ntotal == 0,
               "IndexShardsIVF with successive_ids=True supports add() in a single pass only");
  if (n == 0) return;
  std::vector<idx_t> assign(static_cast<size_t>(n));
  std::vector<float> dis(static_cast<size_t>(n));
  {
    auto qlock = quantizer->lock.read();
    quantizer->search(n, x, 1, dis.data(), assign.data());
  }
  std::vector<idx_t> seq;
  if (!ids && !successive_ids) {
    seq.resize(size_t(n));
    for (idx_t i = 0; i < n; ++i) seq[size_t(i)] = ntotal + i;
    ids = seq.data();
  }
  const size_t m = shards.size();
  try {
    for_each_shard([&](size_t s) {
      const idx_t i0 = block_start(n, m, s), i1 = block_start(n, m, s + 1);
      IndexIVF& iv = ivf(s);
      auto lock = iv.lock.write();
      iv.add_core(i1 - i0, x + size_t(i0) * d, ids ? ids + i0 : nullptr, assign.data() + i0);
    });
  } catch (...) {
    sync_with_shards();
    throw;
  }
  sync_with_shards();
}

void IndexShardsIVF::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                            const SearchParameters* params) const {
  check_k(k);
  check_nonempty();
  check_trained();
  if (n <= 0) return;
  if (params && !dynamic_cast<const SearchParametersIVF*>(params) && typeid(*params) != typeid(SearchParameters))
    ANNVIL_THROW(type, "IndexShardsIVF takes SearchParametersIVF (or SearchParameters) as params");
  size_t np, mc;
  const IDSelector* sel;
  ivf(0).resolve_params(params, &np, &mc, &sel);
  np = std::min(np, nlist);
  std::vector<float> Dq(size_t(n) * np);
  std::vector<idx_t> Iq(size_t(n) * np);
  {
    auto qlock = quantizer->lock.read();
    quantizer->search(n, x, idx_t(np), Dq.data(), Iq.data(), quantizer_params_of(params));
  }
  const size_t m = shards.size();
  const size_t nk = size_t(n) * size_t(k);
  std::vector<float> Dall(m * nk);
  std::vector<idx_t> Iall(m * nk);
  for_each_shard([&](size_t s) {
    const IndexIVF& iv = ivf(s);
    auto lock = iv.lock.read();
    iv.check_trained();
    size_t snp, smc;
    const IDSelector* ssel;
    iv.resolve_params(params, &snp, &smc, &ssel);
    iv.count_search(n, Iq.data(), np, smc, ssel);
    iv.search_preassigned(n, x, k, Iq.data(), Dq.data(), Dall.data() + s * nk, Iall.data() + s * nk, np, smc, ssel);
  });
  merge_results(n, k, Dall, Iall, D, I);
}

void IndexShardsIVF::write_payload(Writer& w) const {
  write_members(w, *this, shards, threaded ? 1 : 0, successive_ids ? 1 : 0);
  w.write<uint64_t>(nlist);
  write_index_record(*quantizer, w);
}

// ---- files ---------------------------------------------------------------------------------------
namespace {

template <class Add>
void read_members(Reader& r, const IndexHeader& h, Add&& add) {
  uint64_t n = r.read<uint64_t>();
  if (n > (uint64_t(1) << 20)) r.corrupt("implausible number of member indexes");
  for (uint64_t i = 0; i < n; ++i) {
    IndexPtr m = read_index_record(r);
    if (m->d != h.d) r.corrupt("member index dimension differs from the meta index's");
    add(std::move(m));
  }
}

IndexPtr read_shards(Reader& r) {
  IndexHeader h = read_header_fields(r);
  bool threaded = r.read<uint8_t>() != 0;
  bool successive = r.read<uint8_t>() != 0;
  auto idx = std::make_shared<IndexShards>(h.d, threaded, successive);
  read_members(r, h, [&](IndexPtr m) { idx->add_shard(std::move(m)); });
  if (idx->ntotal != h.ntotal) r.corrupt("IndexShards size does not match its shards");
  idx->metric_type = h.metric;
  idx->is_trained = h.is_trained;
  return idx;
}

IndexPtr read_replicas(Reader& r) {
  IndexHeader h = read_header_fields(r);
  bool threaded = r.read<uint8_t>() != 0;
  (void)r.read<uint8_t>();
  auto idx = std::make_shared<IndexReplicas>(h.d, threaded);
  read_members(r, h, [&](IndexPtr m) { idx->add_replica(std::move(m)); });
  idx->metric_type = h.metric;
  idx->is_trained = h.is_trained;
  return idx;
}

IndexPtr read_shards_ivf(Reader& r) {
  IndexHeader h = read_header_fields(r);
  bool threaded = r.read<uint8_t>() != 0;
  bool successive = r.read<uint8_t>() != 0;
  std::vector<IndexPtr> members;
  read_members(r, h, [&](IndexPtr m) { members.push_back(std::move(m)); });
  uint64_t nlist = r.read<uint64_t>();
  IndexPtr q = read_index_record(r);
  if (q->d != h.d || nlist == 0) r.corrupt("IndexShardsIVF quantizer does not match");
  auto idx = std::make_shared<IndexShardsIVF>(q, size_t(nlist), threaded, successive);
  for (auto& m : members) {
    auto* iv = dynamic_cast<IndexIVF*>(m.get());
    if (!iv || iv->nlist != nlist) r.corrupt("IndexShardsIVF member is not an IndexIVF with the same nlist");
    idx->add_shard(m);
  }
  if (idx->ntotal != h.ntotal) r.corrupt("IndexShardsIVF size does not match its shards");
  idx->is_trained = h.is_trained;
  return idx;
}

}  // namespace

ANNVIL_REGISTER_INDEX("Shards", read_shards);
ANNVIL_REGISTER_INDEX("Replicas", read_replicas);
ANNVIL_REGISTER_INDEX("ShardsIVF", read_shards_ivf);

}  // namespace annvil
