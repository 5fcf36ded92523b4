#include "index_flat.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "distances/distances.h"
#include "core/io.h"
#include "distances/knn.h"
#include "core/parallel.h"

namespace annvil {

IndexFlat::IndexFlat(int d_, MetricType metric) : Index(d_, metric, /*extra_metrics=*/true) {}

void IndexFlat::add(idx_t n, const float* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  auto& v = xb.mut();
  v.insert(v.end(), x, x + size_t(n) * d);
  ntotal += n;
}

void IndexFlat::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_k(k);
  knn_exact(size_t(n), x, size_t(ntotal), xb.data(), size_t(d), size_t(k), metric_type, D, I,
            params ? params->sel : nullptr, nullptr, metric_arg);
}

void IndexFlat::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                             const SearchParameters* params) const {
  range_exact(size_t(n), x, size_t(ntotal), xb.data(), size_t(d), radius, metric_type, result,
              params ? params->sel : nullptr, nullptr, metric_arg);
}

void IndexFlat::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "id ", key, " out of range [0, ", ntotal, ")");
  std::memcpy(out, xb.data() + size_t(key) * d, sizeof(float) * d);
}

void IndexFlat::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  std::memcpy(out, xb.data() + size_t(i0) * d, sizeof(float) * d * size_t(ni));
}

size_t IndexFlat::remove_ids(const IDSelector& sel) {
  // ids are positions: removing shifts the later vectors down (Faiss semantics)
  idx_t j = 0;
  const float* src = xb.data();
  std::vector<float> kept;
  bool any = false;
  for (idx_t i = 0; i < ntotal; ++i)
    if (sel.is_member(i)) {
      any = true;
      break;
    }
  if (!any) return 0;
  kept.reserve(size_t(ntotal) * d);
  for (idx_t i = 0; i < ntotal; ++i) {
    if (sel.is_member(i)) continue;
    kept.insert(kept.end(), src + size_t(i) * d, src + size_t(i + 1) * d);
    ++j;
  }
  size_t removed = size_t(ntotal - j);
  xb.mut().swap(kept);
  ntotal = j;
  return removed;
}

void IndexFlat::reset() {
  xb.clear();
  ntotal = 0;
}

size_t IndexFlat::memory_usage() const { return sizeof(*this) + xb.capacity_bytes(); }

// ---- standalone codes: the raw float32 bytes -------------------------------------------
size_t IndexFlat::sa_code_size() const { return sizeof(float) * size_t(d); }

void IndexFlat::sa_encode(idx_t n, const float* x, uint8_t* codes) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  if (n) std::memcpy(codes, x, sa_code_size() * size_t(n));
}

void IndexFlat::sa_decode(idx_t n, const uint8_t* codes, float* x) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  if (n) std::memcpy(x, codes, sa_code_size() * size_t(n));
}

void IndexFlat::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t*) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  auto& v = xb.mut();
  const size_t old = v.size();
  v.resize(old + size_t(n) * d);
  if (n) std::memcpy(v.data() + old, codes, sa_code_size() * size_t(n));
  ntotal += n;
}

void IndexFlat::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  if (!dynamic_cast<const IndexFlat*>(&other))
    ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
}

void IndexFlat::merge_from(Index& other, idx_t add_id) {
  ANNVIL_CHECK(add_id == 0, "merge_from: add_id must be 0 for ", type_tag(), " (its ids are positions)");
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexFlat&>(other);
  auto& v = xb.mut();
  v.insert(v.end(), o.xb.data(), o.xb.data() + o.xb.size());
  ntotal += o.ntotal;
  o.reset();
}

void IndexFlat::compute_distance_subset(idx_t n, const float* x, idx_t nl, const idx_t* labels, float* out) const {
  const Kernels& K = kernels();
  const ExtraDistFn fx = is_extra_metric(metric_type) ? extra_distance_fn(K, metric_type) : nullptr;
  for (idx_t i = 0; i < n; ++i)
    for (idx_t j = 0; j < nl; ++j) {
      idx_t l = labels[i * nl + j];
      if (l < 0 || l >= ntotal) {
        out[i * nl + j] = is_similarity_metric(metric_type) ? -INFINITY : INFINITY;
        continue;
      }
      const float* q = x + size_t(i) * d;
      const float* y = xb.data() + size_t(l) * d;
      out[i * nl + j] = fx                          ? fx(q, y, d, metric_arg)
                        : metric_type == METRIC_L2 ? K.l2sqr(q, y, d)
                                                   : K.inner_product(q, y, d);
    }
}

void IndexFlat::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write_storage(xb);
}

namespace {
template <class T>
std::shared_ptr<IndexFlat> make_flat(const IndexHeader& h) {
  if constexpr (std::is_same<T, IndexFlat>::value)
    return std::make_shared<IndexFlat>(h.d, h.metric);
  else
    return std::make_shared<T>(h.d);
}

template <class T>
IndexPtr read_flat(Reader& r) {
  IndexHeader h = read_header_fields(r);
  auto idx = make_flat<T>(h);
  if (idx->metric_type != h.metric) r.corrupt("metric does not match the flat index type");
  idx->metric_arg = h.metric_arg;
  r.read_storage(idx->xb);
  if (idx->xb.size() != size_t(h.ntotal) * size_t(h.d)) r.corrupt("flat storage size does not match ntotal * d");
  idx->ntotal = h.ntotal;
  return idx;
}
ANNVIL_REGISTER_INDEX("Flat", read_flat<IndexFlat>);
ANNVIL_REGISTER_INDEX("FlatL2", read_flat<IndexFlatL2>);
ANNVIL_REGISTER_INDEX("FlatIP", read_flat<IndexFlatIP>);
}  // namespace

// ---- IndexFlat1D ------------------------------------------------------------------------
void IndexFlat1D::update_permutation() {
  const float* v = get_xb();
  perm.resize(size_t(ntotal));
  for (idx_t i = 0; i < ntotal; ++i) perm[size_t(i)] = i;
  std::stable_sort(perm.begin(), perm.end(), [v](idx_t a, idx_t b) { return v[a] < v[b]; });
}

void IndexFlat1D::add(idx_t n, const float* x) {
  IndexFlatL2::add(n, x);
  if (continuous_update) update_permutation();
}

size_t IndexFlat1D::remove_ids(const IDSelector& sel) {
  size_t r = IndexFlatL2::remove_ids(sel);
  if (continuous_update) update_permutation();
  else perm.clear();
  return r;
}

void IndexFlat1D::reset() {
  IndexFlatL2::reset();
  perm.clear();
}

void IndexFlat1D::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_k(k);
  ANNVIL_CHECK(params == nullptr || params->sel == nullptr, "IndexFlat1D does not support search parameters");
  ANNVIL_CHECK(perm.size() == size_t(ntotal), "IndexFlat1D: call update_permutation() before search");
  const float* xb = get_xb();
  const idx_t N = ntotal;
  ParallelErrors perr;
#pragma omp parallel for if (n > 10000)
  for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
    const float q = x[i];
    float* Dq = D + size_t(i) * k;
    idx_t* Iq = I + size_t(i) * k;
    // first position whose value is > q: left neighbours are [0, hi), right ones [hi, N)
    idx_t lo = 0, hi = N;
    while (lo < hi) {
      idx_t mid = (lo + hi) / 2;
      if (xb[perm[size_t(mid)]] <= q) lo = mid + 1;
      else hi = mid;
    }
    idx_t l = hi - 1, r = hi;
    for (idx_t w = 0; w < k; ++w) {
      const bool has_l = l >= 0, has_r = r < N;
      if (!has_l && !has_r) {
        Dq[w] = HUGE_VALF;
        Iq[w] = -1;
        continue;
      }
      const float dl = has_l ? q - xb[perm[size_t(l)]] : HUGE_VALF;
      const float dr = has_r ? xb[perm[size_t(r)]] - q : HUGE_VALF;
      if (has_l && (!has_r || dl < dr)) {
        Dq[w] = dl;
        Iq[w] = perm[size_t(l--)];
      } else {
        Dq[w] = dr;
        Iq[w] = perm[size_t(r++)];
      }
    }
  } ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

}  // namespace annvil
