// Product quantization: the vector is cut into M sub-vectors of dsub = d / M
// dimensions, each replaced by the index of its nearest centroid in a
// per-sub-space codebook of ksub = 2^nbits entries.  A code is the M indices
// written as one little-endian bit stream (index m occupies bits
// [m * nbits, (m + 1) * nbits)), code_size = ceil(M * nbits / 8) bytes, which
// is Faiss's layout for every nbits.
//
// Asymmetric distances: for a query q, the table T[m][j] = dist(q_m, c_{m,j})
// (M x ksub floats) turns the distance to a code into a sum of M lookups:
//   |q - decode(c)|^2 = sum_m T[m][c_m]       (L2, exact for the decoded vector)
//   <q, decode(c)>    = sum_m T'[m][c_m]      (inner product)
// These tables are the reusable piece for IndexPQ, fast-scan and IVF-PQ.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/index.h"
#include "quant/kmeans.h"

namespace annvil {

class Writer;
class Reader;

struct ProductQuantizer {
  size_t d = 0, M = 0, nbits = 0;
  size_t dsub = 0, ksub = 0, code_size = 0;
  std::vector<float> centroids;  // M * ksub * dsub: centroid j of sub-space m at (m * ksub + j) * dsub
  ClusteringParameters cp;       // k-means settings of train() (Faiss defaults: 25 iterations, 256 pts/centroid)
  bool verbose = false;
  bool is_trained = false;

  ProductQuantizer(size_t d, size_t M, size_t nbits);

  const float* get_centroids(size_t m, size_t j) const { return centroids.data() + (m * ksub + j) * dsub; }

  // x: n * d.  k-means in each sub-space; needs n >= ksub.
  void train(idx_t n, const float* x);
  // niter >= 0 overrides cp.niter; when already trained, each sub-space
  // k-means starts from the current centroids ("hot start", used by OPQ)
  void train_hot(idx_t n, const float* x, int niter);

  // codes: n * code_size
  void compute_codes(idx_t n, const float* x, uint8_t* codes) const;
  // unpacked codes: n * M sub-space indices (uint16 holds nbits <= 16)
  void compute_code_indices(idx_t n, const float* x, uint16_t* idx) const;
  // x: n * d
  void decode(idx_t n, const uint8_t* codes, float* x) const;

  // table: M * ksub; table[m * ksub + j] = |x_m - c_{m,j}|^2
  void compute_distance_table(const float* x, float* table) const;
  // table[m * ksub + j] = <x_m, c_{m,j}>
  void compute_inner_prod_table(const float* x, float* table) const;
  // n tables of M * ksub floats, for either metric
  void compute_tables(idx_t n, const float* x, MetricType metric, float* tables) const;

  // Faiss's symmetric-distance table: sdc_table[(m * ksub + i) * ksub + j]
  // = |c_{m,i} - c_{m,j}|^2 (M * ksub * ksub floats)
  std::vector<float> sdc_table;
  void compute_sdc_table();
  // Faiss's transposed centroid layout: transposed_centroids[(j * M + m) *
  // ksub + i] = component j of c_{m,i} (dsub * M * ksub floats) and
  // centroids_sq_lengths[m * ksub + i] = |c_{m,i}|^2.  Kept for clients that
  // read them; annvil's encoder does not need them.
  std::vector<float> transposed_centroids, centroids_sq_lengths;
  void sync_transposed_centroids();
  void clear_transposed_centroids();
  // codes from sub-space indices: idx n * M values < ksub
  void pack_codes(idx_t n, const int64_t* idx, uint8_t* codes) const;

  // bit-stream helpers (little-endian bit order, Faiss's PQEncoderGeneric)
  static void write_index(uint8_t* code, size_t m, size_t nbits, uint32_t v);
  static uint32_t read_index(const uint8_t* code, size_t m, size_t nbits);

  void write(Writer& w) const;
  static ProductQuantizer read(Reader& r);

 private:
  void check_trained() const;
};

}  // namespace annvil
