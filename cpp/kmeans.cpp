#include "kmeans.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

#include "interrupt.h"
#include "knn.h"

namespace annvil {

Clustering::Clustering(int d_, int k_, const ClusteringParameters& cp) : ClusteringParameters(cp), d(d_), k(k_) {
  ANNVIL_CHECK(d_ > 0, "dimension must be positive, got ", d_);
  ANNVIL_CHECK(k_ > 0, "number of centroids k must be positive, got ", k_);
  ANNVIL_CHECK(niter >= 0, "niter must be non-negative");
  ANNVIL_CHECK(nredo >= 1, "nredo must be at least 1");
  ANNVIL_CHECK(max_points_per_centroid > 0, "max_points_per_centroid must be positive");
}

void assign_to_centroids(idx_t n, const float* x, int k, const float* centroids, int d, MetricType metric,
                         idx_t* labels, float* distances) {
  knn_exact(size_t(n), x, size_t(k), centroids, size_t(d), 1, metric, distances, labels, nullptr, nullptr);
}

namespace {

// Sum the points of each cluster: per-thread partial sums, then a reduction.
void update_centroids(idx_t n, const float* x, int d, int k, const idx_t* assign, std::vector<float>& centroids,
                      std::vector<idx_t>& counts) {
  int nt = omp_get_max_threads();
  if (size_t(n) * d < (1u << 18)) nt = 1;
  std::vector<double> sums(size_t(nt) * k * d, 0.0);
  std::vector<idx_t> cnt(size_t(nt) * k, 0);
#pragma omp parallel num_threads(nt)
  {
    // partition by the team actually granted (smaller than nt when nested)
    int t = omp_get_thread_num(), nth = omp_get_num_threads();
    double* s = sums.data() + size_t(t) * k * d;
    idx_t* c = cnt.data() + size_t(t) * k;
    idx_t b = n * t / nth, e = n * (t + 1) / nth;
    for (idx_t i = b; i < e; ++i) {
      idx_t a = assign[i];
      c[a]++;
      const float* xi = x + size_t(i) * d;
      double* si = s + size_t(a) * d;
      for (int p = 0; p < d; ++p) si[p] += xi[p];
    }
  }
  counts.assign(k, 0);
  for (int t = 0; t < nt; ++t)
    for (int c = 0; c < k; ++c) counts[c] += cnt[size_t(t) * k + c];
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int c = 0; c < k; ++c) {
    if (counts[c] == 0) continue;
    double inv = 1.0 / double(counts[c]);
    for (int p = 0; p < d; ++p) {
      double acc = 0;
      for (int t = 0; t < nt; ++t) acc += sums[(size_t(t) * k + c) * d + p];
      centroids[size_t(c) * d + p] = float(acc * inv);
    }
  }
}

// Give each empty cluster half of a large one: copy its centroid and push the
// two copies apart by a small symmetric perturbation (as Faiss does).
int split_empty_clusters(int d, int k, idx_t n, std::vector<idx_t>& counts, std::vector<float>& centroids,
                         std::mt19937_64& rng) {
  const float EPS = 1.f / 1024.f;
  int nsplit = 0;
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  for (int ci = 0; ci < k; ++ci) {
    if (counts[ci] != 0) continue;
    // pick a cluster with probability proportional to (size - 1)
    int cj = 0;
    for (;;) {
      double r = uni(rng) * double(n - k);
      double acc = 0;
      for (cj = 0; cj < k; ++cj) {
        if (counts[cj] <= 1) continue;
        acc += double(counts[cj] - 1);
        if (acc > r) break;
      }
      if (cj < k) break;
      // no cluster has more than one point: nothing to split
      return nsplit;
    }
    std::memcpy(&centroids[size_t(ci) * d], &centroids[size_t(cj) * d], sizeof(float) * d);
    for (int p = 0; p < d; ++p) {
      if (p % 2 == 0) {
        centroids[size_t(ci) * d + p] *= 1 + EPS;
        centroids[size_t(cj) * d + p] *= 1 - EPS;
      } else {
        centroids[size_t(ci) * d + p] *= 1 - EPS;
        centroids[size_t(cj) * d + p] *= 1 + EPS;
      }
    }
    counts[ci] = counts[cj] / 2;
    counts[cj] -= counts[ci];
    ++nsplit;
  }
  return nsplit;
}

}  // namespace

void Clustering::train(idx_t n_in, const float* x_in) {
  ANNVIL_CHECK(n_in >= k, "k-means needs at least as many training points as centroids: got ", n_in,
               " points for k=", k);
  if (verbose && n_in < idx_t(k) * min_points_per_centroid)
    std::fprintf(stderr, "WARNING clustering %ld points to %d centroids: please provide at least %ld points\n",
                 long(n_in), k, long(idx_t(k) * min_points_per_centroid));

  // subsample
  std::vector<float> sample;
  const float* x = x_in;
  idx_t n = n_in;
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  if (n_in > idx_t(k) * max_points_per_centroid) {
    n = idx_t(k) * max_points_per_centroid;
    if (verbose)
      std::fprintf(stderr, "Sampling a subset of %ld / %ld for training\n", long(n), long(n_in));
    std::vector<idx_t> perm(static_cast<size_t>(n_in));
    std::iota(perm.begin(), perm.end(), 0);
    for (idx_t i = 0; i < n; ++i) {  // partial Fisher-Yates
      std::uniform_int_distribution<idx_t> pick(i, n_in - 1);
      std::swap(perm[size_t(i)], perm[size_t(pick(rng))]);
    }
    std::sort(perm.begin(), perm.begin() + n);  // sequential reads
    sample.resize(size_t(n) * d);
    for (idx_t i = 0; i < n; ++i)
      std::memcpy(&sample[size_t(i) * d], x_in + size_t(perm[size_t(i)]) * d, sizeof(float) * d);
    x = sample.data();
  }

  const bool lower_is_better = metric == METRIC_L2;
  std::vector<float> best_centroids;
  double best_obj = lower_is_better ? HUGE_VAL : -HUGE_VAL;
  std::vector<idx_t> assign(static_cast<size_t>(n));
  std::vector<float> dis(static_cast<size_t>(n));
  std::vector<idx_t> counts;
  const bool have_init = frozen_centroids || centroids.size() == size_t(k) * d;
  std::vector<float> init = have_init ? centroids : std::vector<float>();
  iteration_stats.clear();

  for (int redo = 0; redo < nredo; ++redo) {
    auto t0 = std::chrono::steady_clock::now();
    std::mt19937_64 rrng(uint64_t(seed) + 15486557ULL * uint64_t(redo + 1));
    if (have_init) {
      centroids = init;
    } else {
      std::vector<idx_t> perm(static_cast<size_t>(n));
      std::iota(perm.begin(), perm.end(), 0);
      for (int i = 0; i < k; ++i) {
        std::uniform_int_distribution<idx_t> pick(i, n - 1);
        std::swap(perm[size_t(i)], perm[size_t(pick(rrng))]);
      }
      centroids.resize(size_t(k) * d);
      for (int i = 0; i < k; ++i)
        std::memcpy(&centroids[size_t(i) * d], x + size_t(perm[size_t(i)]) * d, sizeof(float) * d);
    }
    if (spherical) normalize_rows(size_t(k), centroids.data(), size_t(d));

    double obj = 0;
    for (int it = 0; it < niter; ++it) {
      check_interrupt();
      assign_to_centroids(n, x, k, centroids.data(), d, metric, assign.data(), dis.data());
      obj = 0;
      for (idx_t i = 0; i < n; ++i) obj += dis[size_t(i)];
      if (frozen_centroids) {
        iteration_stats.push_back({float(obj), 0.0, 0});
        break;
      }
      update_centroids(n, x, d, k, assign.data(), centroids, counts);
      int nsplit = split_empty_clusters(d, k, n, counts, centroids, rrng);
      if (spherical) normalize_rows(size_t(k), centroids.data(), size_t(d));
      if (int_centroids)
        for (auto& v : centroids) v = std::round(v);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      iteration_stats.push_back({float(obj), secs, nsplit});
      if (verbose)
        std::fprintf(stderr, "  Iteration %d (%.2f s): objective=%g nsplit=%d\n", it, secs, obj, nsplit);
    }
    if (nredo > 1) {
      // objective of the final centroids decides between runs
      assign_to_centroids(n, x, k, centroids.data(), d, metric, assign.data(), dis.data());
      obj = 0;
      for (idx_t i = 0; i < n; ++i) obj += dis[size_t(i)];
    }
    if (niter == 0 || (lower_is_better ? obj < best_obj : obj > best_obj) || redo == 0) {
      best_obj = obj;
      best_centroids = centroids;
    }
  }
  centroids = best_centroids;
}

}  // namespace annvil
