#include "index_lsh.h"
#include "core/code_rows.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <queue>

#include "distances/distances.h"
#include "distances/hamming.h"
#include "core/topk.h"
#include "index_pq.h"
#include "core/io.h"
#include "distances/knn.h"
#include "core/parallel.h"

namespace annvil {

// ---------------------------------------------------------------- bits
void fvecs2bitvecs(const float* x, uint8_t* b, size_t d, size_t n) {
  const size_t cs = (d + 7) / 8;
  for (size_t i = 0; i < n; ++i) {
    const float* xi = x + i * d;
    uint8_t* bi = b + i * cs;
    for (size_t c = 0; c < cs; ++c) {
      uint8_t w = 0;
      size_t nj = std::min<size_t>(8, d - c * 8);
      for (size_t j = 0; j < nj; ++j)
        if (xi[c * 8 + j] >= 0) w |= uint8_t(1u << j);
      bi[c] = w;
    }
  }
}

void bitvecs2fvecs(const uint8_t* b, float* x, size_t d, size_t n) {
  const size_t cs = (d + 7) / 8;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) x[i * d + j] = ((b[i * cs + j / 8] >> (j % 8)) & 1) ? 1.f : -1.f;
}

// ---------------------------------------------------------------- IndexLSH
IndexLSH::IndexLSH(int d_, int nbits_, bool rotate, bool train_t)
    : Index(d_, METRIC_L2),
      nbits(nbits_),
      rotate_data(rotate),
      train_thresholds(train_t),
      code_size(size_t(nbits_ > 0 ? (nbits_ + 7) / 8 : 0)),
      rrot(d_, nbits_ > 0 ? nbits_ : 1) {
  ANNVIL_CHECK(nbits_ > 0 && nbits_ <= (1 << 16), "IndexLSH: nbits must be in [1, 65536], got ", nbits_);
  if (rotate)
    rrot.init(5);
  else
    ANNVIL_CHECK(d_ >= nbits_, "IndexLSH without rotation keeps the first nbits components: nbits=", nbits_,
                 " must not exceed d=", d_, " (use rotate_data=True)");
  is_trained = !train_t;
}

std::vector<float> IndexLSH::apply_preprocess(idx_t n, const float* x) const {
  std::vector<float> xt;
  if (rotate_data) {
    xt = rrot.apply(n, x);
  } else {
    xt.resize(size_t(n) * nbits);
    for (idx_t i = 0; i < n; ++i) std::memcpy(&xt[size_t(i) * nbits], x + size_t(i) * d, sizeof(float) * nbits);
  }
  if (train_thresholds && thresholds.size() == size_t(nbits))
    for (idx_t i = 0; i < n; ++i)
      for (int j = 0; j < nbits; ++j) xt[size_t(i) * nbits + j] -= thresholds[size_t(j)];
  return xt;
}

void IndexLSH::train(idx_t n, const float* x) {
  if (train_thresholds) {
    ANNVIL_CHECK(n > 0, "IndexLSH with train_thresholds needs at least one training vector");
    thresholds.clear();  // the medians of the un-thresholded values
    std::vector<float> xt = apply_preprocess(n, x);
    std::vector<float> col(static_cast<size_t>(n));
    std::vector<float> th(static_cast<size_t>(nbits));
    for (int j = 0; j < nbits; ++j) {
      for (idx_t i = 0; i < n; ++i) col[size_t(i)] = xt[size_t(i) * nbits + j];
      // Faiss's median: the middle value, or the mean of the two middle ones
      auto mid = col.begin() + n / 2;
      std::nth_element(col.begin(), mid, col.end());
      float median = *mid;
      if (n % 2 == 0) {
        std::nth_element(col.begin(), mid - 1, col.end());
        median = (median + *(mid - 1)) / 2;
      }
      th[size_t(j)] = median;
    }
    thresholds = std::move(th);
  }
  is_trained = true;
}

void IndexLSH::sa_encode(idx_t n, const float* x, uint8_t* out) const {
  check_trained();
  if (n <= 0) return;
  std::vector<float> xt = apply_preprocess(n, x);
  fvecs2bitvecs(xt.data(), out, size_t(nbits), size_t(n));
}

void IndexLSH::sa_decode(idx_t n, const uint8_t* c, float* x) const {
  if (n <= 0) return;
  std::vector<float> xt(size_t(n) * nbits);
  bitvecs2fvecs(c, xt.data(), size_t(nbits), size_t(n));
  if (train_thresholds && thresholds.size() == size_t(nbits))
    for (idx_t i = 0; i < n; ++i)
      for (int j = 0; j < nbits; ++j) xt[size_t(i) * nbits + j] += thresholds[size_t(j)];
  if (rotate_data) {
    rrot.transform_transpose(n, xt.data(), x);
  } else {
    for (idx_t i = 0; i < n; ++i) {
      float* o = x + size_t(i) * d;
      std::memcpy(o, &xt[size_t(i) * nbits], sizeof(float) * nbits);
      std::fill(o + nbits, o + d, 0.f);  // Faiss leaves these untouched
    }
  }
}

void IndexLSH::add(idx_t n, const float* x) {
  check_trained();
  if (n <= 0) return;
  std::vector<uint8_t> c(size_t(n) * code_size);
  sa_encode(n, x, c.data());
  auto& v = codes.mut();
  v.insert(v.end(), c.begin(), c.end());
  ntotal += n;
}

void IndexLSH::add_sa_codes(idx_t n, const uint8_t* c, const idx_t*) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  auto& v = codes.mut();
  v.insert(v.end(), c, c + size_t(n) * code_size);
  ntotal += n;
}

void IndexLSH::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_trained();
  check_k(k);
  if (n <= 0) return;
  std::vector<uint8_t> q(size_t(n) * code_size);
  sa_encode(n, x, q.data());
  std::vector<int32_t> Di(size_t(n) * size_t(k));
  hamming_knn(size_t(n), q.data(), size_t(ntotal), codes.data(), code_size, size_t(k), Di.data(), I,
              params ? params->sel : nullptr);
  for (size_t i = 0; i < Di.size(); ++i) D[i] = float(Di[i]);
}

void IndexLSH::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "key ", key, " out of range [0, ", ntotal, ")");
  sa_decode(1, codes.data() + size_t(key) * code_size, out);
}

void IndexLSH::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  sa_decode(ni, codes.data() + size_t(i0) * code_size, out);
}

size_t IndexLSH::remove_ids(const IDSelector& sel) { return remove_code_rows(codes, ntotal, code_size, sel); }

void IndexLSH::reset() {
  codes.clear();
  ntotal = 0;
}

size_t IndexLSH::memory_usage() const {
  return sizeof(*this) + codes.capacity_bytes() + rrot.A.size() * sizeof(float) + thresholds.size() * sizeof(float);
}

void IndexLSH::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  auto* o = dynamic_cast<const IndexLSH*>(&other);
  ANNVIL_CHECK(o && o->nbits == nbits && o->rotate_data == rotate_data && o->train_thresholds == train_thresholds,
               "cannot merge IndexLSH with different nbits / rotate_data / train_thresholds");
  ANNVIL_CHECK(!rotate_data || o->rrot.A == rrot.A, "cannot merge IndexLSH with different rotations");
  ANNVIL_CHECK(o->thresholds == thresholds, "cannot merge IndexLSH with different thresholds");
}

void IndexLSH::merge_from(Index& other, idx_t add_id) {
  ANNVIL_CHECK(add_id == 0, "merge_from: add_id must be 0 for ", type_tag(), " (its ids are positions)");
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexLSH&>(other);
  auto& v = codes.mut();
  v.insert(v.end(), o.codes.data(), o.codes.data() + o.codes.size());
  ntotal += o.ntotal;
  o.reset();
}

void IndexLSH::transfer_thresholds(LinearTransform& vt) {
  if (!train_thresholds) return;
  ANNVIL_CHECK(vt.d_out == nbits, "transfer_thresholds: the transform outputs ", vt.d_out,
               " dimensions, nbits=", nbits);
  ANNVIL_CHECK(thresholds.size() == size_t(nbits), "transfer_thresholds: the index is not trained");
  if (!vt.have_bias) {
    vt.b.assign(size_t(nbits), 0.f);
    vt.have_bias = true;
  }
  for (int i = 0; i < nbits; ++i) vt.b[size_t(i)] -= thresholds[size_t(i)];
  train_thresholds = false;
  thresholds.clear();
}

void IndexLSH::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write<int32_t>(nbits);
  w.write<uint8_t>(uint8_t(rotate_data) | uint8_t(train_thresholds) << 1);
  w.write_vector(rrot.A);
  w.write_vector(thresholds);
  w.write_storage(codes);
}

// ---------------------------------------------------------------- multi-table
IndexLSHMultiTable::IndexLSHMultiTable(int d_, int ntables_, int nbits_, MetricType metric)
    : Index(d_, metric), ntables(ntables_), nbits(nbits_) {
  ANNVIL_CHECK(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
               "IndexLSHMultiTable supports METRIC_L2 and METRIC_INNER_PRODUCT");
  ANNVIL_CHECK(ntables_ >= 1 && ntables_ <= 1024, "IndexLSHMultiTable: ntables must be in [1, 1024], got ", ntables_);
  ANNVIL_CHECK(nbits_ >= 1 && nbits_ <= 32, "IndexLSHMultiTable: nbits (per table) must be in [1, 32], got ", nbits_);
  mean.assign(size_t(d_), 0.f);
  keys.resize(size_t(ntables_));
  pos.resize(size_t(ntables_));
  offsets.resize(size_t(ntables_));
  init_projections();
  is_trained = false;
}

void IndexLSHMultiTable::init_projections() {
  // per table nbits directions: orthonormal when nbits <= d, a tight frame otherwise
  proj.assign(size_t(ntables) * nbits * d, 0.f);
  for (int t = 0; t < ntables; ++t) {
    RandomRotationMatrix rr(d, nbits);
    rr.init(seed + t);
    std::copy(rr.A.begin(), rr.A.end(), proj.begin() + long(size_t(t) * nbits * d));
  }
}

void IndexLSHMultiTable::train(idx_t n, const float* x) {
  ANNVIL_CHECK(n > 0, "IndexLSHMultiTable needs at least one training vector");
  ANNVIL_CHECK(ntotal == 0, "IndexLSHMultiTable: train before adding vectors (the hash depends on the mean)");
  std::vector<double> m(size_t(d), 0.0);
  for (idx_t i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) m[size_t(j)] += x[size_t(i) * d + j];
  for (int j = 0; j < d; ++j) mean[size_t(j)] = float(m[size_t(j)] / double(n));
  is_trained = true;
}

void IndexLSHMultiTable::hash(idx_t n, const float* x, uint32_t* out) const {
  const Kernels& K = kernels();
  const size_t nb = size_t(ntables) * nbits;
  ParallelErrors perr;
#pragma omp parallel if (n > 64)
  {
    std::vector<float> xc(static_cast<size_t>(d)), z(nb);
#pragma omp for schedule(static)
    for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
        for (int j = 0; j < d; ++j) xc[size_t(j)] = x[size_t(i) * d + j] - mean[size_t(j)];
        K.inner_product_ny(xc.data(), proj.data(), size_t(d), nb, z.data());
        for (int t = 0; t < ntables; ++t) {
          uint32_t key = 0;
          for (int b = 0; b < nbits; ++b)
            if (z[size_t(t) * nbits + b] >= 0) key |= 1u << b;
          out[size_t(i) * ntables + t] = key;
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

void IndexLSHMultiTable::insert(idx_t n0, idx_t n, const uint32_t* h) {
  // merge the new (key, position) pairs, sorted, into each table
  ParallelErrors perr;
#pragma omp parallel for if (ntables > 1) schedule(dynamic, 1)
  for (int t = 0; t < ntables; ++t) ANNVIL_OMP_TRY(perr) {
      std::vector<std::pair<uint32_t, int32_t>> add(static_cast<size_t>(n));
      for (idx_t i = 0; i < n; ++i) add[size_t(i)] = {h[size_t(i) * ntables + t], int32_t(n0 + i)};
      std::sort(add.begin(), add.end());
      auto& kt = keys[size_t(t)];
      auto& pt = pos[size_t(t)];
      std::vector<uint32_t> nk;
      std::vector<int32_t> np;
      nk.reserve(kt.size() + add.size());
      np.reserve(kt.size() + add.size());
      size_t a = 0, b = 0;
      while (a < kt.size() || b < add.size()) {
        // existing entries first on equal keys: positions stay increasing within a bucket
        if (b == add.size() || (a < kt.size() && kt[a] <= add[b].first)) {
          nk.push_back(kt[a]);
          np.push_back(pt[a++]);
        } else {
          nk.push_back(add[b].first);
          np.push_back(add[b++].second);
        }
      }
      kt.swap(nk);
      pt.swap(np);
      if (nbits <= 20) {
        auto& off = offsets[size_t(t)];
        off.assign((size_t(1) << nbits) + 1, 0);
        for (uint32_t key : kt) off[size_t(key) + 1]++;
        for (size_t i = 1; i < off.size(); ++i) off[i] += off[i - 1];
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void IndexLSHMultiTable::add(idx_t n, const float* x) {
  check_trained();
  if (n <= 0) return;
  ANNVIL_CHECK(ntotal + n < idx_t(INT32_MAX), "IndexLSHMultiTable holds at most 2^31 - 1 vectors");
  std::vector<uint32_t> h(size_t(n) * ntables);
  hash(n, x, h.data());
  auto& v = xb.mut();
  v.insert(v.end(), x, x + size_t(n) * d);
  insert(ntotal, n, h.data());
  ntotal += n;
}

void IndexLSHMultiTable::rebuild_tables() {
  for (auto& k : keys) k.clear();
  for (auto& p : pos) p.clear();
  for (auto& o : offsets) o.clear();
  if (ntotal == 0) return;
  std::vector<uint32_t> h(size_t(ntotal) * ntables);
  hash(ntotal, xb.data(), h.data());
  insert(0, ntotal, h.data());
}

namespace {
// Lv et al.'s perturbation sets over bits sorted by cost c[0] <= c[1] <= ...:
// a set is a list of sorted indices; shift replaces the last index i by
// i + 1, expand appends i + 1.  Popping a min-heap by total cost yields every
// set once, in increasing cost.
struct Probe {
  float score;
  uint32_t mask;  // bits (in sorted order) of the set
  int last;       // its largest sorted index
  bool operator>(const Probe& o) const { return score > o.score; }
};
}  // namespace

void IndexLSHMultiTable::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                const SearchParameters* params) const {
  check_trained();
  check_k(k);
  if (n <= 0) return;
  int np_ = nprobe;
  if (auto* p = dynamic_cast<const SearchParametersLSHMultiTable*>(params))
    if (p->nprobe > 0) np_ = p->nprobe;
  ANNVIL_CHECK(np_ >= 1, "nprobe must be at least 1, got ", np_);
  const IDSelector* sel = params ? params->sel : nullptr;
  const Kernels& K = kernels();
  const size_t nb = size_t(ntables) * nbits;
  const bool ip = metric_type == METRIC_INNER_PRODUCT;
  const uint64_t max_probes = nbits >= 32 ? UINT64_MAX : (uint64_t(1) << nbits);
  const int probes = int(std::min<uint64_t>(uint64_t(np_), max_probes));
  double total_cand = 0;
  ParallelErrors perr;
#pragma omp parallel reduction(+ : total_cand)
  {
    std::vector<float> xc(static_cast<size_t>(d)), z(nb), cost(static_cast<size_t>(nbits)), dis;
    std::vector<int> order(static_cast<size_t>(nbits));
    std::vector<uint32_t> stamp(static_cast<size_t>(ntotal), 0);
    std::vector<int32_t> cand;
    uint32_t cur = 0;
#pragma omp for schedule(dynamic, 4)
    for (idx_t qi = 0; qi < n; ++qi) ANNVIL_OMP_TRY(perr) {
        const float* q = x + size_t(qi) * d;
        if (++cur == 0) {  // stamps wrapped: start over
          std::fill(stamp.begin(), stamp.end(), 0u);
          cur = 1;
        }
        for (int j = 0; j < d; ++j) xc[size_t(j)] = q[j] - mean[size_t(j)];
        K.inner_product_ny(xc.data(), proj.data(), size_t(d), nb, z.data());
        cand.clear();
        for (int t = 0; t < ntables; ++t) {
          const float* zt = &z[size_t(t) * nbits];
          uint32_t base = 0;
          for (int b = 0; b < nbits; ++b) {
            if (zt[b] >= 0) base |= 1u << b;
            cost[size_t(b)] = zt[b] * zt[b];
          }
          std::iota(order.begin(), order.end(), 0);
          std::sort(order.begin(), order.end(), [&](int a, int b) { return cost[size_t(a)] < cost[size_t(b)]; });
          const auto& kt = keys[size_t(t)];
          const auto& pt = pos[size_t(t)];
          const auto& off = offsets[size_t(t)];
          const bool dense = !off.empty();
          auto visit = [&](uint32_t key) {
            size_t b, e;
            if (dense) {
              b = off[key];
              e = off[size_t(key) + 1];
            } else {
              auto r = std::equal_range(kt.begin(), kt.end(), key);
              b = size_t(r.first - kt.begin());
              e = size_t(r.second - kt.begin());
            }
            for (size_t j = b; j < e; ++j) {
              int32_t p = pt[j];
              if (stamp[size_t(p)] != cur) {
                stamp[size_t(p)] = cur;
                cand.push_back(p);
              }
            }
          };
          visit(base);
          if (probes > 1) {
            std::priority_queue<Probe, std::vector<Probe>, std::greater<Probe>> heap;
            heap.push({cost[size_t(order[0])], 1u, 0});
            for (int done = 1; done < probes && !heap.empty(); ++done) {
              Probe p = heap.top();
              heap.pop();
              uint32_t flip = 0;
              for (int s = 0; s <= p.last; ++s)
                if (p.mask >> s & 1) flip |= 1u << order[size_t(s)];
              visit(base ^ flip);
              if (p.last + 1 < nbits) {
                float cn = cost[size_t(order[size_t(p.last + 1)])], cl = cost[size_t(order[size_t(p.last)])];
                heap.push({p.score - cl + cn, (p.mask & ~(1u << p.last)) | (1u << (p.last + 1)), p.last + 1});  // shift
                heap.push({p.score + cn, p.mask | (1u << (p.last + 1)), p.last + 1});  // expand
              }
            }
          }
        }
        total_cand += double(cand.size());
        // exact re-ranking of the candidates
        std::sort(cand.begin(), cand.end());
        TopK h;
        h.k = size_t(k);
        h.size = 0;
        h.keys = D + size_t(qi) * k;
        h.ids = I + size_t(qi) * k;
        for (int32_t p : cand) {
          if (sel && !sel->is_member(p)) continue;
          const float* y = xb.data() + size_t(p) * d;
          float key = ip ? -K.inner_product(q, y, size_t(d)) : K.l2sqr(q, y, size_t(d));
          if (key < h.threshold() || h.size < h.k) h.push(key, p);
        }
        pq_finalize_row(h, size_t(k), metric_type, D + size_t(qi) * k, I + size_t(qi) * k);
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  last_candidates.store(total_cand / double(n), std::memory_order_relaxed);
}

void IndexLSHMultiTable::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "key ", key, " out of range [0, ", ntotal, ")");
  std::memcpy(out, xb.data() + size_t(key) * d, sizeof(float) * d);
}

size_t IndexLSHMultiTable::remove_ids(const IDSelector& sel) {
  std::vector<float> kept;
  kept.reserve(xb.size());
  idx_t j = 0;
  for (idx_t i = 0; i < ntotal; ++i) {
    if (sel.is_member(i)) continue;
    kept.insert(kept.end(), xb.data() + size_t(i) * d, xb.data() + size_t(i + 1) * d);
    ++j;
  }
  size_t removed = size_t(ntotal - j);
  if (removed) {
    xb.mut().swap(kept);
    ntotal = j;
    rebuild_tables();
  }
  return removed;
}

void IndexLSHMultiTable::reset() {
  xb.clear();
  for (auto& k : keys) k.clear();
  for (auto& p : pos) p.clear();
  for (auto& o : offsets) o.clear();
  ntotal = 0;
}

size_t IndexLSHMultiTable::memory_usage() const {
  size_t s = sizeof(*this) + xb.capacity_bytes() + proj.size() * sizeof(float);
  for (auto& k : keys) s += k.capacity() * (sizeof(uint32_t) + sizeof(int32_t));
  for (auto& o : offsets) s += o.capacity() * sizeof(uint32_t);
  return s;
}

void IndexLSHMultiTable::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write<int32_t>(ntables);
  w.write<int32_t>(nbits);
  w.write<int32_t>(nprobe);
  w.write<int32_t>(seed);
  w.write_vector(mean);
  w.write_storage(xb);  // the tables are rebuilt on reading
}

// ---------------------------------------------------------------- readers
namespace {
IndexPtr read_lsh(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int32_t nbits = r.read<int32_t>();
  uint8_t flags = r.read<uint8_t>();
  bool rotate = flags & 1, train_t = (flags >> 1) & 1;
  if (nbits <= 0 || nbits > (1 << 16) || (!rotate && nbits > h.d) || h.metric != METRIC_L2)
    r.corrupt("bad IndexLSH parameters");
  auto idx = std::make_shared<IndexLSH>(h.d, nbits, rotate, train_t);
  std::vector<float> A;
  r.read_vector(A);
  if (rotate) {
    if (A.size() != size_t(h.d) * nbits) r.corrupt("IndexLSH rotation size");
    idx->rrot.A = std::move(A);
  } else if (!A.empty() && A.size() != size_t(h.d) * nbits) {
    r.corrupt("IndexLSH rotation size");
  }
  r.read_vector(idx->thresholds);
  if (!idx->thresholds.empty() && idx->thresholds.size() != size_t(nbits)) r.corrupt("IndexLSH thresholds size");
  r.read_storage(idx->codes);
  if (idx->codes.size() != size_t(h.ntotal) * idx->code_size)
    r.corrupt("IndexLSH code array size does not match ntotal");
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained && (!train_t || idx->thresholds.size() == size_t(nbits));
  return idx;
}

IndexPtr read_lsh_multitable(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int32_t nt = r.read<int32_t>(), nb = r.read<int32_t>(), np = r.read<int32_t>(), seed = r.read<int32_t>();
  if (nt < 1 || nt > 1024 || nb < 1 || nb > 32 || np < 1 ||
      (h.metric != METRIC_L2 && h.metric != METRIC_INNER_PRODUCT) || h.ntotal >= idx_t(INT32_MAX))
    r.corrupt("bad IndexLSHMultiTable parameters");
  auto idx = std::make_shared<IndexLSHMultiTable>(h.d, nt, nb, h.metric);
  idx->nprobe = np;
  if (seed != idx->seed) {
    idx->seed = seed;
    idx->init_projections();
  }
  r.read_vector(idx->mean);
  if (idx->mean.size() != size_t(h.d)) r.corrupt("IndexLSHMultiTable mean size");
  r.read_storage(idx->xb);
  if (idx->xb.size() != size_t(h.ntotal) * size_t(h.d)) r.corrupt("IndexLSHMultiTable vector array size");
  idx->ntotal = h.ntotal;
  idx->is_trained = h.is_trained;
  idx->rebuild_tables();
  return idx;
}
ANNVIL_REGISTER_INDEX("LSH", read_lsh);
ANNVIL_REGISTER_INDEX("LSHMultiTable", read_lsh_multitable);
}  // namespace

}  // namespace annvil
