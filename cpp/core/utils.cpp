#include "core/utils.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "distances/distances.h"
#include "core/error.h"

namespace annvil {

namespace {

// Runs fill(rng, begin, end) over Faiss's block layout (see utils.h).
template <class Fill>
void blocked_fill(size_t n, int64_t seed, Fill fill) {
  const int64_t nblock = n < 1024 ? 1 : 1024;
  RandomGenerator rng0(seed);
  const int a0 = rng0.rand_int(), b0 = rng0.rand_int();
  ParallelErrors perr;
#pragma omp parallel for if (n > 65536)
  for (int64_t j = 0; j < nblock; ++j) ANNVIL_OMP_TRY(perr) {
      // Faiss computes the block seed in (wrapping) int arithmetic
      int64_t s = int64_t(int32_t(uint32_t(a0) + uint32_t(j) * uint32_t(b0)));
      RandomGenerator rng(s);
      fill(rng, size_t(j) * n / size_t(nblock), size_t(j + 1) * n / size_t(nblock));
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

}  // namespace

void float_rand(float* x, size_t n, int64_t seed) {
  blocked_fill(n, seed, [x](RandomGenerator& rng, size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) x[i] = rng.rand_float();
  });
}

void float_randn(float* x, size_t n, int64_t seed) {
  blocked_fill(n, seed, [x](RandomGenerator& rng, size_t b, size_t e) {
    // Marsaglia's polar method: (a, b) uniform in the unit disc, s = a^2 + b^2,
    // then a * sqrt(-2 ln s / s) and b * sqrt(-2 ln s / s) are two normals
    double a = 0, bb = 0, s = 0;
    bool second = false;
    for (size_t i = b; i < e; ++i) {
      if (!second) {
        do {
          a = 2.0 * rng.rand_double() - 1;
          bb = 2.0 * rng.rand_double() - 1;
          s = a * a + bb * bb;
        } while (s >= 1.0);
        x[i] = float(a * std::sqrt(-2.0 * std::log(s) / s));
      } else {
        x[i] = float(bb * std::sqrt(-2.0 * std::log(s) / s));
      }
      second = !second;
    }
  });
}

void int64_rand(int64_t* x, size_t n, int64_t seed) {
  blocked_fill(n, seed, [x](RandomGenerator& rng, size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) x[i] = rng.rand_int64();
  });
}

void int64_rand_max(int64_t* x, size_t n, uint64_t max, int64_t seed) {
  ANNVIL_CHECK(max > 0, "vmax must be positive");
  blocked_fill(n, seed, [x, max](RandomGenerator& rng, size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) x[i] = int64_t(uint64_t(rng.rand_int64()) % max);
  });
}

void byte_rand(uint8_t* x, size_t n, int64_t seed) {
  blocked_fill(n, seed, [x](RandomGenerator& rng, size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) x[i] = uint8_t(rng.rand_int64());
  });
}

void rand_perm(int* perm, size_t n, int64_t seed) {
  for (size_t i = 0; i < n; ++i) perm[i] = int(i);
  RandomGenerator rng(seed);
  for (size_t i = 0; i + 1 < n; ++i) std::swap(perm[i], perm[i + size_t(rng.rand_int(int(n - i)))]);
}

void rand_smooth_vectors(size_t n, size_t d, float* x, int64_t seed) {
  // x = sin((z R) * (4 s + 0.1)) with z: n x 10 normal, R: 10 x d uniform,
  // s: d uniform scales
  const size_t d1 = 10;
  std::vector<float> z(n * d1), rot(d1 * d), scales(d);
  float_randn(z.data(), z.size(), seed);
  float_rand(rot.data(), rot.size(), seed + 1);
  float_rand(scales.data(), d, seed + 2);
  ParallelErrors perr;
#pragma omp parallel for if (n * d > 10000)
  for (int64_t i = 0; i < int64_t(n); ++i) ANNVIL_OMP_TRY(perr) {
      float* xi = x + size_t(i) * d;
      const float* zi = z.data() + size_t(i) * d1;
      for (size_t j = 0; j < d; ++j) {
        float acc = 0;
        for (size_t l = 0; l < d1; ++l) acc += zi[l] * rot[l * d + j];
        xi[j] = std::sin(acc * (scales[j] * 4 + 0.1f));
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

// ---- heaps -------------------------------------------------------------------------
namespace {

template <class T>
T neutral(bool keep_max) {
  if constexpr (std::is_same_v<T, float>)
    return keep_max ? -FLT_MAX : FLT_MAX;
  else
    return keep_max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
}

// a is a worse result than b (it would leave the heap first)
template <class T>
inline bool worse(T a, T b, bool keep_max) {
  return keep_max ? a < b : a > b;
}

// Replace the top (worst) element of the heap h (k entries) by (v, id).
template <class T>
void heap_replace_top(size_t k, T* hv, int64_t* hi, T v, int64_t id, bool keep_max) {
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1;
    if (l >= k) break;
    size_t c = (r < k && worse(hv[r], hv[l], keep_max)) ? r : l;
    if (!worse(hv[c], v, keep_max)) break;
    hv[i] = hv[c];
    hi[i] = hi[c];
    i = c;
  }
  hv[i] = v;
  hi[i] = id;
}

}  // namespace

template <class T>
void heap_heapify(size_t nh, size_t k, T* val, int64_t* ids, bool keep_max) {
  std::fill(val, val + nh * k, neutral<T>(keep_max));
  std::fill(ids, ids + nh * k, int64_t(-1));
}

template <class T>
void heap_addn(size_t nh, size_t k, T* val, int64_t* ids, bool keep_max, size_t nrows, const int64_t* subset, size_t n,
               const T* x, size_t ldx, const int64_t* xids, size_t id_stride, int64_t id0) {
  if (k == 0) return;
  for (size_t i = 0; i < nrows; ++i) {
    int64_t h = subset ? subset[i] : int64_t(i);
    ANNVIL_CHECK(h >= 0 && size_t(h) < nh, "heap index ", h, " out of range [0, ", nh, ")");
  }
  // with a subset two rows may feed the same heap: parallel only without one
  ParallelErrors perr;
#pragma omp parallel for if (!subset && nrows * n > 100000)
  for (int64_t i = 0; i < int64_t(nrows); ++i) ANNVIL_OMP_TRY(perr) {
      size_t h = subset ? size_t(subset[i]) : size_t(i);
      T* hv = val + h * k;
      int64_t* hi = ids + h * k;
      const T* xi = x + size_t(i) * ldx;
      const int64_t* ii = xids ? xids + size_t(i) * id_stride : nullptr;
      for (size_t j = 0; j < n; ++j)
        if (worse(hv[0], xi[j], keep_max)) heap_replace_top(k, hv, hi, xi[j], ii ? ii[j] : id0 + int64_t(j), keep_max);
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

template <class T>
void heap_reorder(size_t nh, size_t k, T* val, int64_t* ids, bool keep_max) {
  const T neut = neutral<T>(keep_max);
  ParallelErrors perr;
#pragma omp parallel for if (nh * k > 100000)
  for (int64_t q = 0; q < int64_t(nh); ++q) ANNVIL_OMP_TRY(perr) {
      T* hv = val + size_t(q) * k;
      int64_t* hi = ids + size_t(q) * k;
      std::vector<std::pair<T, int64_t>> tmp;
      tmp.reserve(k);
      for (size_t i = 0; i < k; ++i)
        if (hi[i] != -1 || hv[i] != neut) tmp.emplace_back(hv[i], hi[i]);
      std::sort(tmp.begin(), tmp.end(), [keep_max](const auto& a, const auto& b) {
        if (a.first != b.first) return keep_max ? a.first > b.first : a.first < b.first;
        return a.second < b.second;
      });
      for (size_t i = 0; i < k; ++i) {
        if (i < tmp.size()) {
          hv[i] = tmp[i].first;
          hi[i] = tmp[i].second;
        } else {
          hv[i] = neut;
          hi[i] = -1;
        }
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

template <class T>
void merge_knn_results(size_t n, size_t k, size_t nshard, const T* D_all, const int64_t* I_all, T* D, int64_t* I,
                       bool keep_max) {
  const T neut = neutral<T>(keep_max);
  ParallelErrors perr;
#pragma omp parallel for if (n * k * nshard > 100000)
  for (int64_t q = 0; q < int64_t(n); ++q) ANNVIL_OMP_TRY(perr) {
      std::vector<size_t> pos(nshard, 0);
      for (size_t out = 0; out < k; ++out) {
        // the best head among the shards; ties go to the lower shard
        size_t best = nshard;
        for (size_t s = 0; s < nshard; ++s) {
          if (pos[s] >= k) continue;
          size_t off = (s * n + size_t(q)) * k + pos[s];
          if (I_all[off] < 0) continue;
          if (best == nshard || worse(D_all[(best * n + size_t(q)) * k + pos[best]], D_all[off], keep_max)) best = s;
        }
        if (best == nshard) {
          D[size_t(q) * k + out] = neut;
          I[size_t(q) * k + out] = -1;
        } else {
          size_t off = (best * n + size_t(q)) * k + pos[best]++;
          D[size_t(q) * k + out] = D_all[off];
          I[size_t(q) * k + out] = I_all[off];
        }
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

#define ANNVIL_INSTANTIATE_HEAPS(T)                                                                                \
  template void heap_heapify<T>(size_t, size_t, T*, int64_t*, bool);                                               \
  template void heap_addn<T>(size_t, size_t, T*, int64_t*, bool, size_t, const int64_t*, size_t, const T*, size_t, \
                             const int64_t*, size_t, int64_t);                                                     \
  template void heap_reorder<T>(size_t, size_t, T*, int64_t*, bool);                                               \
  template void merge_knn_results<T>(size_t, size_t, size_t, const T*, const int64_t*, T*, int64_t*, bool);
ANNVIL_INSTANTIATE_HEAPS(float)
ANNVIL_INSTANTIATE_HEAPS(int32_t)
#undef ANNVIL_INSTANTIATE_HEAPS

// ---- small helpers -------------------------------------------------------------------
size_t ranklist_intersection_size(size_t k1, const int64_t* v1, size_t k2, const int64_t* v2) {
  std::unordered_set<int64_t> a;
  for (size_t i = 0; i < k1; ++i)
    if (v1[i] >= 0) a.insert(v1[i]);
  size_t count = 0;
  for (size_t i = 0; i < k2; ++i)
    if (v2[i] >= 0 && a.erase(v2[i])) ++count;  // erase: each id counts once
  return count;
}

double imbalance_factor(size_t n, size_t k, const int64_t* assign) {
  std::vector<int64_t> hist(k, 0);
  for (size_t i = 0; i < n; ++i) {
    ANNVIL_CHECK(assign[i] >= 0 && size_t(assign[i]) < k, "assignment ", assign[i], " out of range [0, ", k, ")");
    hist[size_t(assign[i])]++;
  }
  double tot = 0, uf = 0;
  for (size_t i = 0; i < k; ++i) {
    tot += double(hist[i]);
    uf += double(hist[i]) * double(hist[i]);
  }
  return tot > 0 ? uf * double(k) / (tot * tot) : 0.0;
}

void fvec_madd(size_t n, const float* a, float bf, const float* b, float* c) {
  for (size_t i = 0; i < n; ++i) c[i] = a[i] + bf * b[i];
}

int fvec_madd_and_argmin(size_t n, const float* a, float bf, const float* b, float* c) {
  int best = -1;
  float vmin = std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) {
    c[i] = a[i] + bf * b[i];
    if (c[i] < vmin) {
      vmin = c[i];
      best = int(i);
    }
  }
  return best;
}

void pairwise_indexed_distances(size_t d, size_t n, const float* x, const int64_t* ix, const float* y,
                                const int64_t* iy, MetricType metric, float* dis) {
  const Kernels& K = kernels();
  ParallelErrors perr;
#pragma omp parallel for if (n > 10000)
  for (int64_t i = 0; i < int64_t(n); ++i) ANNVIL_OMP_TRY(perr) {
      if (ix[i] < 0 || iy[i] < 0) {
        dis[i] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      const float* xi = x + size_t(ix[i]) * d;
      const float* yi = y + size_t(iy[i]) * d;
      dis[i] = metric == METRIC_L2 ? K.l2sqr(xi, yi, d) : K.inner_product(xi, yi, d);
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

// ---- MatrixStats -------------------------------------------------------------------
namespace {

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

struct DimStats {
  size_t n = 0, n_nan = 0, n_inf = 0, n0 = 0;
  float vmin = HUGE_VALF, vmax = -HUGE_VALF;
  double sum = 0, sum2 = 0, stddev = 0;
};

template <class... A>
void comment(std::string& out, const char* fmt, A... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), fmt, args...);
  out += buf;
}

}  // namespace

MatrixStats::MatrixStats(size_t n_, size_t d_, const float* x) : n(n_), d(d_) {
  comment(comments, "analyzing %zu vectors of size %zu\n", n, d);
  if (d > 1024)
    comments += "indexing this many dimensions is hard, please consider dimensionality reduction (with PCAMatrix)\n";
  const size_t row_bytes = sizeof(float) * d;
  hash_value = fnv1a(reinterpret_cast<const uint8_t*>(x), n * row_bytes);
  comment(comments, "hash value 0x%016" PRIx64 "\n", hash_value);

  std::vector<DimStats> dims(d);
  // row hash -> (first row, copies)
  std::unordered_map<uint64_t, std::pair<size_t, size_t>> occ;
  min_norm2 = HUGE_VAL;
  max_norm2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* xi = x + i * d;
    double s2 = 0;
    for (size_t j = 0; j < d; ++j) {
      DimStats& st = dims[j];
      float v = xi[j];
      st.n++;
      s2 += double(v) * v;
      if (std::isnan(v)) {
        st.n_nan++;
        continue;
      }
      if (!std::isfinite(v)) {
        st.n_inf++;
        continue;
      }
      if (v == 0) st.n0++;
      st.vmin = std::min(st.vmin, v);
      st.vmax = std::max(st.vmax, v);
      st.sum += v;
      st.sum2 += double(v) * v;
    }
    if (std::isfinite(s2)) {
      n_valid++;
      if (s2 == 0) {
        n0++;
      } else {
        min_norm2 = std::min(min_norm2, s2);
        max_norm2 = std::max(max_norm2, s2);
      }
    }
    uint64_t h = fnv1a(reinterpret_cast<const uint8_t*>(xi), row_bytes);
    auto it = occ.find(h);
    if (it == occ.end()) {
      occ.emplace(h, std::make_pair(i, size_t(1)));
    } else if (std::memcmp(xi, x + it->second.first * d, row_bytes) == 0) {
      it->second.second++;
    } else {
      n_collision++;
    }
  }
  if (min_norm2 == HUGE_VAL) min_norm2 = 0;

  if (n_valid == n)
    comments += "no NaN or Infs in data\n";
  else
    comment(comments,
            "%zu vectors contain NaN or Inf (or have too large components), expect bad results with indexing!\n",
            n - n_valid);

  if (occ.size() == n) {
    comments += "all vectors are distinct\n";
  } else {
    comment(comments, "%zu vectors are distinct (%.2f%%)\n", occ.size(), occ.size() * 100.0 / double(n));
    if (n_collision > 0) comment(comments, "%zu collisions in hash table, counts may be invalid\n", n_collision);
    std::pair<size_t, size_t> most{0, 0};
    for (auto& e : occ)
      if (e.second.second > most.second || (e.second.second == most.second && e.second.first < most.first))
        most = e.second;
    comment(comments, "vector %zu has %zu copies\n", most.first, most.second);
  }

  min_norm2 = std::sqrt(min_norm2);
  max_norm2 = std::sqrt(max_norm2);
  comment(comments, "range of L2 norms=[%g, %g] (%zu null vectors)\n", min_norm2, max_norm2, n0);
  if (max_norm2 < min_norm2 * 1.0001)
    comments += "vectors are normalized, inner product and L2 search are equivalent\n";
  if (max_norm2 > min_norm2 * 100) comments += "vectors have very large differences in norms, is this normal?\n";

  double max_std = 0, min_std = HUGE_VAL;
  size_t n_dangerous = 0, n_const = 0, nzero = 0;
  for (auto& st : dims) {
    size_t nv = st.n - st.n_nan - st.n_inf;
    double mean = nv ? st.sum / double(nv) : 0;
    double var = nv ? st.sum2 / double(nv) - mean * mean : 0;
    st.stddev = std::sqrt(std::max(var, 0.0));
    nzero += st.n0;
    if (st.vmax == st.vmin)
      n_const++;
    else if (st.vmax < 1.001 * st.vmin)
      n_dangerous++;
    max_std = std::max(max_std, st.stddev);
    min_std = std::min(min_std, st.stddev);
  }
  if (nzero == 0)
    comments += "matrix contains no 0s\n";
  else
    comment(comments, "matrix contains %.2f %% 0 entries\n", nzero * 100.0 / double(n * d));
  if (n_const == 0)
    comments += "no constant dimensions\n";
  else
    comment(comments, "%zu dimensions are constant: they can be removed\n", n_const);
  if (n_dangerous == 0)
    comments += "no dimension has a too large mean\n";
  else
    comment(comments,
            "%zu dimensions are too large wrt. their variance, may lose precision in IndexFlatL2 (use "
            "CenteringTransform)\n",
            n_dangerous);
  comment(comments, "stddevs per dimension are in [%g %g]\n", min_std, max_std);
  size_t n_small = 0;
  for (auto& st : dims)
    if (st.stddev < max_std * 1e-4) n_small++;
  if (n_small > 0)
    comment(comments, "%zu dimensions have negligible stddev wrt. the largest dimension, they could be ignored\n",
            n_small);
}

}  // namespace annvil
