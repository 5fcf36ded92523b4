#include "index_flat.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "distances/distances.h"
#include "core/io.h"
#include "distances/knn.h"
#include "core/parallel.h"

namespace annvil {

IndexFlat::IndexFlat(int d_, MetricType metric)
    : IndexFlatCodes(d_, metric, sizeof(float) * size_t(d_ > 0 ? d_ : 0), /*extra_metrics=*/true) {}

void IndexFlat::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_k(k);
  knn_exact(size_t(n), x, size_t(ntotal), get_xb(), size_t(d), size_t(k), metric_type, D, I,
            params ? params->sel : nullptr, nullptr, metric_arg);
}

void IndexFlat::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                             const SearchParameters* params) const {
  range_exact(size_t(n), x, size_t(ntotal), get_xb(), size_t(d), radius, metric_type, result,
              params ? params->sel : nullptr, nullptr, metric_arg);
}

size_t IndexFlat::memory_usage() const { return sizeof(*this) + codes.capacity_bytes(); }

// ---- the codec: the raw float32 bytes ---------------------------------------------------
void IndexFlat::encode_vectors(idx_t n, const float* x, uint8_t* out) const {
  std::memcpy(out, x, code_size * size_t(n));
}

void IndexFlat::decode_vectors(idx_t n, const uint8_t* in, float* x) const {
  std::memcpy(x, in, code_size * size_t(n));
}

void IndexFlat::permute_entries(const idx_t* perm) {
  const size_t n = size_t(ntotal);
  std::vector<char> seen(n, 0);
  for (size_t i = 0; i < n; ++i) {
    ANNVIL_CHECK(perm[i] >= 0 && size_t(perm[i]) < n && !seen[size_t(perm[i])],
                 "perm must be a permutation of 0 .. ntotal-1 (entry ", i, " = ", perm[i], ")");
    seen[size_t(perm[i])] = 1;
  }
  std::vector<uint8_t> permuted(n * code_size);
  const uint8_t* old = codes.data();
  for (size_t i = 0; i < n; ++i)
    std::memcpy(permuted.data() + i * code_size, old + size_t(perm[i]) * code_size, code_size);
  codes.mut().swap(permuted);
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
      const float* y = get_xb() + size_t(l) * d;
      out[i * nl + j] = fx                         ? fx(q, y, d, metric_arg)
                        : metric_type == METRIC_L2 ? K.l2sqr(q, y, d)
                                                   : K.inner_product(q, y, d);
    }
}

void IndexFlat::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write_storage(codes);  // the same bytes as the float array of format version 1
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
  r.read_storage(idx->codes);
  if (idx->codes.size() != size_t(h.ntotal) * idx->code_size) r.corrupt("flat storage size does not match ntotal * d");
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
  if (continuous_update)
    update_permutation();
  else
    perm.clear();
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
        if (xb[perm[size_t(mid)]] <= q)
          lo = mid + 1;
        else
          hi = mid;
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
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

}  // namespace annvil
