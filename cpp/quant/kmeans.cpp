#include "quant/kmeans.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

#include "core/interrupt.h"
#include "distances/distances.h"
#include "distances/knn.h"
#include "core/utils.h"

namespace annvil {

Clustering::Clustering(int d_, int k_, const ClusteringParameters& cp) : ClusteringParameters(cp), d(d_), k(k_) {
  ANNVIL_CHECK(d_ > 0, "dimension must be positive, got ", d_);
  ANNVIL_CHECK(k_ > 0, "number of centroids k must be positive, got ", k_);
  ANNVIL_CHECK(niter >= 0, "niter must be non-negative, got ", niter);
  ANNVIL_CHECK(nredo >= 1, "nredo must be at least 1, got ", nredo);
  ANNVIL_CHECK(max_points_per_centroid > 0, "max_points_per_centroid must be at least 1, got ",
               max_points_per_centroid);
}

void assign_to_centroids(idx_t n, const float* x, int k, const float* centroids, int d, MetricType metric,
                         idx_t* labels, float* distances) {
  knn_exact(size_t(n), x, size_t(k), centroids, size_t(d), 1, metric, distances, labels, nullptr, nullptr);
}

namespace {

// Faiss's compute_centroids: float sums accumulated in point order, each
// thread owning a range of centroids (so the result does not depend on the
// number of threads and is bit-identical to Faiss's), then scaled by
// 1 / (total weight).  Centroids [0, k_frozen) are left untouched.
// hassign: k floats (output: cluster weights).
void update_centroids(idx_t n, const float* x, const float* weights, int d, int k, int k_frozen, const idx_t* assign,
                      float* centroids, float* hassign) {
  const int kf = k - k_frozen;
  float* cent = centroids + size_t(k_frozen) * d;
  float* hs = hassign + k_frozen;
  std::fill(hassign, hassign + k, 0.f);
  std::fill(cent, cent + size_t(kf) * d, 0.f);
  int nt = omp_get_max_threads();
  if (size_t(n) * d < (1u << 16)) nt = 1;
  nt = std::max(1, std::min(nt, kf));
  ParallelErrors perr;
#pragma omp parallel num_threads(nt)
  {ANNVIL_OMP_TRY(perr){int t = omp_get_thread_num(), nth = omp_get_num_threads();
  const idx_t c0 = idx_t(kf) * t / nth, c1 = idx_t(kf) * (t + 1) / nth;
  for (idx_t i = 0; i < n; ++i) {
    idx_t ci = assign[i] - k_frozen;
    if (ci < c0 || ci >= c1) continue;
    float* c = cent + size_t(ci) * d;
    const float* xi = x + size_t(i) * d;
    if (weights) {
      const float w = weights[i];
      hs[ci] += w;
      for (int p = 0; p < d; ++p) c[p] += xi[p] * w;
    } else {
      hs[ci] += 1.f;
      for (int p = 0; p < d; ++p) c[p] += xi[p];
    }
  }
}
ANNVIL_OMP_CATCH(perr)
}  // namespace
perr.rethrow();
for (int ci = 0; ci < kf; ++ci) {
  if (hs[ci] == 0) continue;
  const float norm = 1 / hs[ci];
  float* c = cent + size_t(ci) * d;
  for (int p = 0; p < d; ++p) c[p] *= norm;
}
}  // namespace annvil

// Faiss's split_clusters: each empty cluster takes half of a donor drawn with
// probability ~ (size - 1) by a generator reseeded with 1234 at every call
// (walking the clusters cyclically; after 10 k misses, the largest), then the
// two copies are pushed apart by a small symmetric perturbation.
int split_empty_clusters(int d, int k, idx_t n, int k_frozen, float* hassign, float* centroids) {
  const float EPS = 1.f / 1024.f;
  const size_t kf = size_t(k - k_frozen);
  float* cent = centroids + size_t(k_frozen) * d;
  float* hs = hassign + k_frozen;
  if (!(size_t(n) > kf)) return 0;
  int nsplit = 0;
  RandomGenerator rng(1234);
  for (size_t ci = 0; ci < kf; ++ci) {
    if (hs[ci] != 0) continue;
    size_t cj = 0, tries = 0;
    bool found = false;
    for (cj = 0; tries < 10 * kf; cj = (cj + 1) % kf) {
      const double p = (hs[cj] - 1.0) / float(size_t(n) - kf);
      const float r = rng.rand_float();
      if (r < p) {
        found = true;
        break;
      }
      ++tries;
    }
    if (!found) {
      cj = 0;
      for (size_t j = 1; j < kf; ++j)
        if (hs[j] > hs[cj]) cj = j;
    }
    std::memcpy(cent + ci * d, cent + cj * d, sizeof(float) * d);
    for (int p = 0; p < d; ++p) {
      if (p % 2 == 0) {
        cent[ci * d + p] *= 1 + EPS;
        cent[cj * d + p] *= 1 - EPS;
      } else {
        cent[ci * d + p] *= 1 - EPS;
        cent[cj * d + p] *= 1 + EPS;
      }
    }
    hs[ci] = hs[cj] / 2;
    hs[cj] -= hs[ci];
    ++nsplit;
  }
  return nsplit;
}

}  // namespace

// ---- seeding -------------------------------------------------------------------------
ClusteringInitialization::ClusteringInitialization(int d_, int k_) : d(d_), k(k_) {
  ANNVIL_CHECK(d_ > 0, "dimension must be positive, got ", d_);
  ANNVIL_CHECK(k_ > 0, "number of centroids k must be positive, got ", k_);
}

namespace {

// D(x)^2 of every point to its nearest centroid among c (nc * d), folded into
// mind (min with the current value).
void fold_min_dist(idx_t n, const float* x, int d, const float* c, idx_t nc, std::vector<float>& mind) {
  if (nc == 0) return;
  std::vector<float> dis(static_cast<size_t>(n));
  std::vector<idx_t> lab(static_cast<size_t>(n));
  knn_exact(size_t(n), x, size_t(nc), c, size_t(d), 1, METRIC_L2, dis.data(), lab.data(), nullptr, nullptr);
  for (idx_t i = 0; i < n; ++i) mind[size_t(i)] = std::min(mind[size_t(i)], std::max(dis[size_t(i)], 0.f));
}

// index drawn with probability w[i] / sum(w) (uniformly when all are 0)
idx_t draw_weighted(const std::vector<double>& cum, std::mt19937_64& rng) {
  double tot = cum.back();
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  if (!(tot > 0)) return idx_t(std::uniform_int_distribution<size_t>(0, cum.size() - 1)(rng));
  double r = uni(rng) * tot;
  size_t i = size_t(std::upper_bound(cum.begin(), cum.end(), r) - cum.begin());
  return idx_t(std::min(i, cum.size() - 1));
}

}  // namespace

void ClusteringInitialization::init_centroids(idx_t n, const float* x, float* centroids, idx_t n_existing,
                                              const float* existing) const {
  ANNVIL_CHECK(n >= k, "centroid initialization needs at least k=", k, " points, got ", n);
  ANNVIL_CHECK(n_existing >= 0 && (n_existing == 0 || existing), "existing centroids missing");
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  std::vector<char> taken(size_t(n), 0);
  auto take = [&](int c, idx_t i) {
    taken[size_t(i)] = 1;
    std::memcpy(centroids + size_t(c) * d, x + size_t(i) * d, sizeof(float) * d);
  };
  if (method == INIT_RANDOM) {
    // k distinct points: partial Fisher-Yates
    std::vector<idx_t> perm(static_cast<size_t>(n));
    std::iota(perm.begin(), perm.end(), 0);
    for (int i = 0; i < k; ++i) {
      std::uniform_int_distribution<idx_t> pick(i, n - 1);
      std::swap(perm[size_t(i)], perm[size_t(pick(rng))]);
      take(i, perm[size_t(i)]);
    }
    return;
  }
  // D^2 to the nearest chosen (or existing) centroid
  std::vector<float> mind(size_t(n), std::numeric_limits<float>::infinity());
  fold_min_dist(n, x, d, existing, n_existing, mind);
  int c0 = 0;
  if (n_existing == 0) {
    take(0, idx_t(std::uniform_int_distribution<idx_t>(0, n - 1)(rng)));
    fold_min_dist(n, x, d, centroids, 1, mind);
    c0 = 1;
  }
  auto weight = [&](idx_t i) { return taken[size_t(i)] ? 0.0 : double(mind[size_t(i)]); };
  if (method == INIT_KMEANS_PLUS_PLUS) {
    std::vector<double> cum(static_cast<size_t>(n));
    for (int c = c0; c < k; ++c) {
      check_interrupt();
      double acc = 0;
      for (idx_t i = 0; i < n; ++i) cum[size_t(i)] = acc += weight(i);
      idx_t i = draw_weighted(cum, rng);
      if (taken[size_t(i)])  // all remaining weights 0 (duplicates): any untaken point
        for (i = 0; i < n && taken[size_t(i)]; ++i) {
        }
      take(c, i);
      fold_min_dist(n, x, d, centroids + size_t(c) * d, 1, mind);
    }
    return;
  }
  ANNVIL_CHECK(method == INIT_AFK_MC2, "unknown initialization method ", int(method));
  ANNVIL_CHECK(afkmc2_chain_length >= 1, "afkmc2_chain_length must be at least 1");
  // AFK-MC^2 (Bachem et al. 2016): proposal q(x) = D(x, c_first)^2 / (2 sum) + 1 / (2n),
  // a Metropolis-Hastings chain of length m accepts y over x with probability
  // min(1, (D(y)^2 q(x)) / (D(x)^2 q(y))), where D is the distance to the chosen set
  std::vector<double> q(static_cast<size_t>(n)), cum(static_cast<size_t>(n));
  double tot = 0;
  for (idx_t i = 0; i < n; ++i) tot += mind[size_t(i)];
  double acc = 0;
  for (idx_t i = 0; i < n; ++i) {
    q[size_t(i)] = (tot > 0 ? 0.5 * mind[size_t(i)] / tot : 0.0) + 0.5 / double(n);
    cum[size_t(i)] = acc += q[size_t(i)];
  }
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  auto dist_to_chosen = [&](idx_t i, int nchosen) {
    float best = std::numeric_limits<float>::infinity();
    const float* xi = x + size_t(i) * d;
    for (idx_t e = 0; e < n_existing; ++e) best = std::min(best, l2sqr(xi, existing + size_t(e) * d, size_t(d)));
    for (int c = 0; c < nchosen; ++c) best = std::min(best, l2sqr(xi, centroids + size_t(c) * d, size_t(d)));
    return double(best);
  };
  for (int c = c0; c < k; ++c) {
    check_interrupt();
    idx_t cur = draw_weighted(cum, rng);
    double cur_w = dist_to_chosen(cur, c);
    for (int step = 1; step < afkmc2_chain_length; ++step) {
      idx_t y = draw_weighted(cum, rng);
      double wy = dist_to_chosen(y, c);
      // accept y with probability min(1, (wy / q[y]) / (cur_w / q[cur]))
      if (cur_w == 0 || wy * q[size_t(cur)] > uni(rng) * cur_w * q[size_t(y)]) {
        cur = y;
        cur_w = wy;
      }
    }
    if (cur_w == 0) {  // the chain only met chosen points (or copies): take the farthest point
      double best = -1;
      for (idx_t i = 0; i < n; ++i) {
        double w = dist_to_chosen(i, c);
        if (w > best) {
          best = w;
          cur = i;
        }
      }
    }
    take(c, cur);
  }
}

// ---- exact 1-D k-means --------------------------------------------------------------------
double kmeans1d_exact(size_t n, const float* x_in, size_t k, float* centroids) {
  ANNVIL_CHECK(k >= 1 && k <= n, "1-D k-means needs 1 <= k <= n, got k=", k, " for n=", n);
  std::vector<double> x(x_in, x_in + n);
  std::sort(x.begin(), x.end());
  std::vector<double> s1(n + 1, 0.0), s2(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) {
    s1[i + 1] = s1[i] + x[i];
    s2[i + 1] = s2[i] + x[i] * x[i];
  }
  // squared deviation of the run x[i..j) from its mean
  auto cost = [&](size_t i, size_t j) {
    double m = double(j - i), s = s1[j] - s1[i];
    return std::max(0.0, (s2[j] - s2[i]) - s * s / m);
  };
  // D[j]: best cost of the first j values in c clusters; opt[c][j]: start of the last run
  std::vector<double> prev(n + 1), cur(n + 1);
  std::vector<std::vector<uint32_t>> opt(k, std::vector<uint32_t>(n + 1, 0));
  for (size_t j = 1; j <= n; ++j) prev[j] = cost(0, j);
  for (size_t c = 1; c < k; ++c) {
    check_interrupt();
    // cur[j] for j in [c + 1, n] = min over i in [c, j - 1] of prev[i] + cost(i, j)
    std::vector<std::array<size_t, 4>> stack{{c + 1, n, c, n - 1}};
    while (!stack.empty()) {
      auto [lo, hi, olo, ohi] = stack.back();
      stack.pop_back();
      if (lo > hi) continue;
      size_t mid = (lo + hi) / 2, best_i = olo;
      double best = HUGE_VAL;
      for (size_t i = olo; i <= std::min(ohi, mid - 1); ++i) {
        double v = prev[i] + cost(i, mid);
        if (v < best) {
          best = v;
          best_i = i;
        }
      }
      cur[mid] = best;
      opt[c][mid] = uint32_t(best_i);
      if (mid > lo) stack.push_back({lo, mid - 1, olo, best_i});
      stack.push_back({mid + 1, hi, best_i, ohi});
    }
    std::swap(prev, cur);
  }
  // walk back the runs
  size_t j = n;
  for (size_t c = k; c-- > 0;) {
    size_t i = c == 0 ? 0 : opt[c][j];
    centroids[c] = float((s1[j] - s1[i]) / double(j - i));
    j = i;
  }
  return prev[n];
}

void smawk(size_t nrows, size_t ncols, const float* x, int64_t* argmins) {
  if (nrows == 0) return;
  ANNVIL_CHECK(ncols > 0, "smawk needs at least one column");
  std::vector<std::array<size_t, 4>> stack{{0, nrows - 1, 0, ncols - 1}};
  while (!stack.empty()) {
    auto [lo, hi, clo, chi] = stack.back();
    stack.pop_back();
    size_t mid = (lo + hi) / 2, best_c = clo;
    const float* row = x + mid * ncols;
    for (size_t c = clo + 1; c <= chi; ++c)
      if (row[c] < row[best_c]) best_c = c;
    argmins[mid] = int64_t(best_c);
    if (mid > lo) stack.push_back({lo, mid - 1, clo, best_c});
    if (mid < hi) stack.push_back({mid + 1, hi, best_c, chi});
  }
}

// ---- Lloyd iterations -------------------------------------------------------------------
void Clustering::train(idx_t n_in, const float* x_in, const float* w_in) {
  ANNVIL_CHECK(n_in >= k, "k-means needs at least as many training points as centroids: got ", n_in,
               " points for k=", k);
  if (verbose && n_in < idx_t(k) * min_points_per_centroid)
    std::fprintf(stderr, "WARNING clustering %ld points to %d centroids: please provide at least %ld points\n",
                 long(n_in), k, long(idx_t(k) * min_points_per_centroid));
  if (w_in)
    for (idx_t i = 0; i < n_in; ++i)
      ANNVIL_CHECK(std::isfinite(w_in[i]) && w_in[i] >= 0, "weights must be finite and non-negative (weight ", i,
                   " is ", w_in[i], ")");

  // subsample: the first k * max_points_per_centroid points of Faiss's
  // rand_perm(n, seed), in permutation order (as Faiss, so that the same data
  // gives the same centroids)
  std::vector<float> sample, wsample;
  const float* x = x_in;
  const float* weights = w_in;
  idx_t n = n_in;
  if (n_in > idx_t(k) * max_points_per_centroid) {
    ANNVIL_CHECK(n_in <= idx_t(std::numeric_limits<int>::max()), "too many training points (", n_in,
                 ") for k-means subsampling");
    n = idx_t(k) * max_points_per_centroid;
    if (verbose) std::fprintf(stderr, "Sampling a subset of %ld / %ld for training\n", long(n), long(n_in));
    std::vector<int> perm(static_cast<size_t>(n_in));
    rand_perm(perm.data(), size_t(n_in), seed);
    sample.resize(size_t(n) * d);
    for (idx_t i = 0; i < n; ++i)
      std::memcpy(&sample[size_t(i) * d], x_in + size_t(perm[size_t(i)]) * d, sizeof(float) * d);
    x = sample.data();
    if (w_in) {
      wsample.resize(size_t(n));
      for (idx_t i = 0; i < n; ++i) wsample[size_t(i)] = w_in[perm[size_t(i)]];
      weights = wsample.data();
    }
  }

  // centroids given on input (a multiple of d floats, at most k of them) are
  // kept as the first ones; frozen_centroids keeps them fixed
  ANNVIL_CHECK(centroids.size() % size_t(d) == 0, "input centroids: ", centroids.size(),
               " floats is not a multiple of d=", d);
  const int n_input = int(centroids.size() / size_t(d));
  ANNVIL_CHECK(n_input <= k, "got ", n_input, " input centroids for k=", k);
  const int k_frozen = frozen_centroids ? n_input : 0;
  const std::vector<float> init = centroids;
  iteration_stats.clear();

  if (n == k && n_input == 0) {
    // as many points as centroids: they are the centroids
    centroids.assign(x_in, x_in + size_t(k) * d);
    iteration_stats.push_back({0.f, 0.0, 0});
    return;
  }

  const bool lower_is_better = metric == METRIC_L2;
  std::vector<float> best_centroids;
  std::vector<ClusteringIterationStats> best_stats;
  float best_obj = lower_is_better ? HUGE_VALF : -HUGE_VALF;
  std::vector<idx_t> assign(static_cast<size_t>(n));
  std::vector<float> dis(static_cast<size_t>(n));
  std::vector<float> hassign(static_cast<size_t>(k));
  auto post_process = [&]() {
    if (spherical) normalize_rows(size_t(k), centroids.data(), size_t(d));
    if (int_centroids)
      for (auto& v : centroids) v = std::round(v);
  };

  for (int redo = 0; redo < nredo; ++redo) {
    auto t0 = std::chrono::steady_clock::now();
    const int64_t redo_seed = int64_t(seed) + 1 + int64_t(redo) * 15486557LL;
    centroids = init;
    centroids.resize(size_t(k) * d);
    if (n_input < k) {
      if (init_method == INIT_RANDOM) {
        // Faiss: the points at positions n_input.. of rand_perm(n, seed + 1 + redo * 15486557)
        std::vector<int> perm(static_cast<size_t>(n));
        rand_perm(perm.data(), size_t(n), redo_seed);
        for (int i = n_input; i < k; ++i)
          std::memcpy(&centroids[size_t(i) * d], x + size_t(perm[size_t(i)]) * d, sizeof(float) * d);
      } else {
        ClusteringInitialization ci(d, k - n_input);
        ci.method = init_method;
        ci.seed = redo_seed;
        ci.afkmc2_chain_length = afkmc2_chain_length;
        ci.init_centroids(n, x, centroids.data() + size_t(n_input) * d, n_input,
                          n_input > 0 ? centroids.data() : nullptr);
      }
    }
    post_process();

    std::vector<ClusteringIterationStats> stats;
    float obj = 0;
    for (int it = 0; it < niter; ++it) {
      check_interrupt();
      assign_to_centroids(n, x, k, centroids.data(), d, metric, assign.data(), dis.data());
      obj = 0;
      for (idx_t i = 0; i < n; ++i) obj += dis[size_t(i)];
      update_centroids(n, x, weights, d, k, k_frozen, assign.data(), centroids.data(), hassign.data());
      int nsplit = split_empty_clusters(d, k, n, k_frozen, hassign.data(), centroids.data());
      post_process();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      stats.push_back({obj, secs, nsplit});
      if (verbose)
        std::fprintf(stderr, "  Iteration %d (%.2f s): objective=%g nsplit=%d\n", it, secs, double(obj), nsplit);
      // Faiss's early stop: relative change of the objective <= early_stop_threshold
      if (it > 0) {
        const float prev = stats[stats.size() - 2].obj;
        const double change = prev == 0 ? std::numeric_limits<double>::max() : std::fabs(prev - obj) / std::fabs(prev);
        if (change <= early_stop_threshold) break;
      }
    }
    // as Faiss: the objective of the last assignment decides between runs
    if (nredo == 1 || (lower_is_better ? obj < best_obj : obj > best_obj)) {
      best_obj = obj;
      best_centroids = centroids;
      best_stats = stats;
    }
  }
  if (best_centroids.empty()) best_centroids = centroids;  // every run had a NaN objective
  centroids = best_centroids;
  iteration_stats = best_stats;
}

}  // namespace annvil
