// k-means (Lloyd iterations) on the exact-search kernels, Faiss's Clustering
// semantics: subsampling to max_points_per_centroid * k, random initial
// centroids, empty clusters repaired by splitting the largest one, nredo runs
// keeping the best objective, optional spherical (unit-norm) centroids.
#pragma once
#include <cstdint>
#include <vector>

#include "index.h"

namespace annvil {

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
};

struct ClusteringIterationStats {
  float obj;     // sum of squared distances (L2) or of inner products (IP)
  double time;   // seconds since the start of this run
  int nsplit;    // empty clusters repaired in this iteration
};

struct Clustering : ClusteringParameters {
  int d;
  int k;
  std::vector<float> centroids;  // k * d
  std::vector<ClusteringIterationStats> iteration_stats;

  Clustering(int d, int k, const ClusteringParameters& cp = ClusteringParameters());

  // x: n * d.  Throws if n < k.
  void train(idx_t n, const float* x);
};

// nearest centroid of each row: labels (n), distances (n)
void assign_to_centroids(idx_t n, const float* x, int k, const float* centroids, int d, MetricType metric,
                         idx_t* labels, float* distances);

}  // namespace annvil
