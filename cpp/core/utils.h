// Faiss's utility functions (faiss/utils/random.h, Heap.h, utils.h): random
// data with Faiss's generator (the same values for the same seed), top-k of
// rows (kmin / kmax), the accumulating result heaps behind ResultHeap, the
// merge of per-shard result lists, and small statistics helpers.
//
// Random generator (Faiss's RandomGenerator): std::mt19937 seeded with the
// low 32 bits of the seed; rand_int = mt() & 0x7fffffff, rand_float =
// mt() / mt.max(), rand_int64 = rand_int() | rand_int() << 31.  Arrays of
// n >= 1024 values are cut into 1024 blocks (block j covers [j n / 1024,
// (j + 1) n / 1024)) with block generators seeded a0 + j * b0 (a0, b0: the
// first two rand_int of the seed's generator, int arithmetic), so the values
// do not depend on the number of threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "core/index.h"

namespace annvil {

struct RandomGenerator {
  std::mt19937 mt;
  explicit RandomGenerator(int64_t seed = 1234) : mt(static_cast<unsigned int>(seed)) {}
  int rand_int() { return int(mt() & 0x7fffffff); }
  // the two draws in an explicit order: in Faiss's `rand_int() | rand_int() << 31`
  // the order is unspecified, and the value faiss-cpu's build gives (the test
  // against Faiss) is the low part drawn first
  int64_t rand_int64() {
    const int64_t lo = rand_int();
    const int64_t hi = rand_int();
    return lo | (hi << 31);
  }
  // in [0, max): mt() % max, as faiss-cpu 1.15.1 (later Faiss uses a multiply-shift)
  int rand_int(int max) { return int(mt() % uint32_t(max)); }
  float rand_float() { return float(mt()) / float(mt.max()); }
  double rand_double() { return double(mt()) / double(mt.max()); }
};

// x: n values each
void float_rand(float* x, size_t n, int64_t seed);                      // uniform in [0, 1]
void float_randn(float* x, size_t n, int64_t seed);                     // standard normal (Marsaglia's polar method)
void int64_rand(int64_t* x, size_t n, int64_t seed);                    // in [0, 2^62)
void int64_rand_max(int64_t* x, size_t n, uint64_t max, int64_t seed);  // in [0, max)
void byte_rand(uint8_t* x, size_t n, int64_t seed);
// perm: a random permutation of 0..n-1 (Fisher-Yates with rand_int(n - i))
void rand_perm(int* perm, size_t n, int64_t seed);
// x: n * d floats, low intrinsic dimension (10) vectors mapped through sin():
// Faiss's rand_smooth_vectors, good for testing compression
void rand_smooth_vectors(size_t n, size_t d, float* x, int64_t seed);

// ---- accumulating heaps (Faiss's float_maxheap_array_t / float_minheap_array_t) ----
// nh heaps of capacity k stored in val (nh * k) / ids (nh * k).  keep_max=false
// keeps the k smallest values (a max-heap, neutral value +FLT_MAX), true the k
// largest (a min-heap, neutral value -FLT_MAX); neutral entries have id -1.
// T is float or int32_t.
template <class T>
void heap_heapify(size_t nh, size_t k, T* val, int64_t* ids, bool keep_max);
// Push the n values of row i (x[i * ldx + j], ids xids[i * id_stride + j];
// xids == nullptr: id j + id0) into heap subset[i] (subset == nullptr: heap i),
// for nrows rows.
template <class T>
void heap_addn(size_t nh, size_t k, T* val, int64_t* ids, bool keep_max, size_t nrows, const int64_t* subset, size_t n,
               const T* x, size_t ldx, const int64_t* xids, size_t id_stride, int64_t id0);
// Sort every heap best first; neutral entries stay at the end.
template <class T>
void heap_reorder(size_t nh, size_t k, T* val, int64_t* ids, bool keep_max);

// Merge nshard sorted result lists (D_all, I_all: nshard * n * k) into the k
// best per query (D, I: n * k).  Entries with id -1 end a shard's list.
template <class T>
void merge_knn_results(size_t n, size_t k, size_t nshard, const T* D_all, const int64_t* I_all, T* D, int64_t* I,
                       bool keep_max);

// Number of distinct non-negative ids present in both lists.
size_t ranklist_intersection_size(size_t k1, const int64_t* v1, size_t k2, const int64_t* v2);

// Faiss's imbalance factor of an assignment: k * sum(hist^2) / n^2 (1 = balanced).
double imbalance_factor(size_t n, size_t k, const int64_t* assign);

// c = a + bf * b (n floats); returns argmin of c
void fvec_madd(size_t n, const float* a, float bf, const float* b, float* c);
int fvec_madd_and_argmin(size_t n, const float* a, float bf, const float* b, float* c);

// dis[i] = distance(x[ix[i]], y[iy[i]]) for i < n (rows of dimension d)
void pairwise_indexed_distances(size_t d, size_t n, const float* x, const int64_t* ix, const float* y,
                                const int64_t* iy, MetricType metric, float* dis);

// Faiss's MatrixStats: per-dimension and per-vector statistics of an n x d
// matrix, with a human-readable report flagging the usual data problems
// (duplicates, null vectors, constant dimensions, unnormalised means...).
struct MatrixStats {
  size_t n = 0, d = 0;
  size_t n_collision = 0, n_valid = 0, n0 = 0;
  double min_norm2 = 0, max_norm2 = 0;
  uint64_t hash_value = 0;
  std::string comments;
  MatrixStats(size_t n, size_t d, const float* x);
};

}  // namespace annvil
