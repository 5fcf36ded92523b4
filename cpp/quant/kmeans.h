// k-means (Lloyd iterations) on the exact-search kernels, Faiss's Clustering
// semantics: subsampling to max_points_per_centroid * k, random initial
// centroids, empty clusters repaired by splitting the largest one, nredo runs
// keeping the best objective, optional spherical (unit-norm) centroids.
#pragma once
#include <cstdint>
#include <vector>

#include "core/index.h"

namespace annvil {

// Faiss's ClusteringInitMethod: how the first centroids are chosen.
enum ClusteringInitMethod : int {
  INIT_RANDOM = 0,            // k distinct training points, uniformly
  INIT_KMEANS_PLUS_PLUS = 1,  // k-means++: each next centroid drawn with probability ~ D(x)^2
  INIT_AFK_MC2 = 2,           // AFK-MC^2: k-means++ approximated by Markov chains of proposals
};

// Centroid seeding on its own (Faiss's ClusteringInitialization).
struct ClusteringInitialization {
  int d, k;
  ClusteringInitMethod method = INIT_RANDOM;
  int64_t seed = 1234;
  int afkmc2_chain_length = 50;
  ClusteringInitialization(int d, int k);
  // x: n * d, centroids: k * d (output).  existing (n_existing * d) are
  // centroids already chosen: new ones are seeded away from them
  // (k-means++ / AFK-MC^2).  Throws if n < k.
  void init_centroids(idx_t n, const float* x, float* centroids, idx_t n_existing = 0,
                      const float* existing = nullptr) const;
};

struct ClusteringParameters {
  int niter = 25;
  int nredo = 1;
  bool verbose = false;
  bool spherical = false;
  bool int_centroids = false;
  bool update_index = false;
  bool frozen_centroids = false;
  int min_points_per_centroid = 39;
  int max_points_per_centroid = 256;
  int seed = 1234;
  MetricType metric = METRIC_L2;  // METRIC_INNER_PRODUCT maximises <x, c>
  ClusteringInitMethod init_method = INIT_RANDOM;
  int afkmc2_chain_length = 50;
  // stop when |obj - previous obj| <= early_stop_threshold * |previous obj|
  // (0: only when the objective no longer changes, as Faiss)
  double early_stop_threshold = 0;
  // Faiss fields annvil accepts with their meaning where it applies:
  size_t decode_block_size = 32768;       // vectors decoded at a time by train_encoded
  bool check_input_data_for_NaNs = true;  // annvil always rejects non-finite input
  bool use_faster_subsampling = false;    // annvil's subsampling is one Fisher-Yates pass either way
  bool use_super_kmeans = false;          // no SuperKMeans variant: plain Lloyd iterations
};

struct ClusteringIterationStats {
  float obj;    // sum of squared distances (L2) or of inner products (IP)
  double time;  // seconds since the start of this run
  int nsplit;   // empty clusters repaired in this iteration
};

struct Clustering : ClusteringParameters {
  int d;
  int k;
  std::vector<float> centroids;  // k * d
  std::vector<ClusteringIterationStats> iteration_stats;

  Clustering(int d, int k, const ClusteringParameters& cp = ClusteringParameters());

  // x: n * d; weights: n per-point weights (or null: all 1).  Throws if n < k.
  void train(idx_t n, const float* x, const float* weights = nullptr);
};

// Exact (globally optimal) k-means of n scalars (Faiss's Clustering1D::
// train_exact): the optimal clusters are runs of the sorted values, found by
// dynamic programming over (clusters, prefix) with the divide-and-conquer
// optimisation (the best split point is monotone in the prefix length):
// O(k n log n) time, O(k n) memory.  centroids: k floats, ascending.
// Returns the objective (sum of squared distances).  Needs 1 <= k <= n.
double kmeans1d_exact(size_t n, const float* x, size_t k, float* centroids);

// Row minima of a totally monotone nrows x ncols matrix (Faiss's smawk):
// argmins[i] = the leftmost column of row i's minimum.  Uses the monotonicity
// of the argmin (divide and conquer over rows, O((nrows + ncols) log nrows)).
void smawk(size_t nrows, size_t ncols, const float* x, int64_t* argmins);

// nearest centroid of each row: labels (n), distances (n)
void assign_to_centroids(idx_t n, const float* x, int k, const float* centroids, int d, MetricType metric,
                         idx_t* labels, float* distances);

}  // namespace annvil
