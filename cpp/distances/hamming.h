// Hamming distances between binary codes (Faiss's utils/hamming.h): a code
// is code_size = d / 8 bytes, bit j of the vector being bit (j % 8) of byte
// j / 8 (little-endian within bytes, as Faiss), and the distance between two
// codes is popcount(a ^ b).
//
// One kernel does the work: the distances from one query to a run of
// contiguous codes (hamming_kernels().to_many).  It has fast paths for codes of
// 4, 8, 16, 32 and 64 bytes (32 ... 512 bits: the query is held in registers,
// the loop is unrolled) and a 64-bit-word loop for any other size.  It is
// written once (hamming_impl.h) and compiled twice: hamming_scalar.cpp at the
// baseline ISA (popcount without the POPCNT instruction) and hamming_avx2.cpp
// with POPCNT, chosen at run time (simd/dispatch.h) with
// the rest of the kernels (simd.h).  Top-k, range and counting functions are
// built on it here, block by block, so they need no per-ISA code.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/index.h"

namespace annvil {

struct HammingKernels {
  // popcount(a ^ b) over code_size bytes
  int (*distance)(const uint8_t* a, const uint8_t* b, size_t code_size);
  // out[j] = distance(q, codes + j * code_size), j < n
  void (*to_many)(const uint8_t* q, const uint8_t* codes, size_t n, size_t code_size, int32_t* out);
};
const HammingKernels& hamming_kernels();  // for the active SIMD level
const HammingKernels& hamming_kernels_scalar();
const HammingKernels& hamming_kernels_avx2();

inline int hamming_distance(const uint8_t* a, const uint8_t* b, size_t code_size) {
  return hamming_kernels().distance(a, b, code_size);
}

// Distance reported for a missing result (Faiss: INT32_MAX with label -1).
constexpr int32_t kHammingMissing = 0x7fffffff;

// ---- exact search ------------------------------------------------------------------
// k nearest codes of each query among nb codes: D, I (nq * k), sorted by
// distance then id; missing results are (kHammingMissing, -1).  labels maps
// positions to ids (null: identity); sel filters on the ids.  Parallel over
// queries, or over the base when there are few queries.
void hamming_knn(size_t nq, const uint8_t* q, size_t nb, const uint8_t* b, size_t code_size, size_t k, int32_t* D,
                 idx_t* I, const IDSelector* sel = nullptr, const idx_t* labels = nullptr);

// Range search results with integer distances (Faiss's binary RangeSearchResult).
struct BinaryRangeResult {
  size_t nq = 0;
  std::vector<size_t> lims;  // nq + 1
  std::vector<int32_t> distances;
  std::vector<idx_t> labels;
};
using BinaryHits = std::vector<std::vector<std::pair<int32_t, idx_t>>>;
// per-query hits -> result (each query's hits sorted by distance then id)
void fill_binary_range_result(BinaryHits& hits, BinaryRangeResult* result);

// All codes at distance < radius (Faiss's convention for binary range search).
void hamming_range(size_t nq, const uint8_t* q, size_t nb, const uint8_t* b, size_t code_size, int radius,
                   BinaryRangeResult* result, const IDSelector* sel = nullptr, const idx_t* labels = nullptr);

// ---- Faiss's hamming utilities ---------------------------------------------------
// dis[i * nb + j] = distance(a_i, b_j)
void hammings(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, size_t code_size, int32_t* dis);
// number of pairs (i, j) with distance <= ht
size_t hamming_count_thres(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, int ht, size_t code_size);
// number of pairs i < j of the n codes with distance <= ht
size_t crosshamming_count_thres(const uint8_t* codes, size_t n, int ht, size_t code_size);
// every pair with distance <= ht: idx gets (i, j) int64 pairs, dis the
// distances, in row-major order; returns the number of pairs (the caller
// sizes idx to 2 * count and dis to count, see hamming_count_thres)
size_t match_hamming_thres(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, int ht, size_t code_size,
                           int64_t* idx, int32_t* dis);
// k nearest by generalized Hamming distance (number of differing bytes),
// sorted when `ordered` (always here), ties by smaller id
void generalized_hammings_knn(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, size_t code_size, size_t k,
                              int32_t* D, idx_t* I);

// ---- conversions -----------------------------------------------------------------
// n codes of d bits -> n * d floats: bit 1 -> +1, bit 0 -> -1 (Faiss's
// binary_to_real / IndexLSH decoding)
void binary_to_real(size_t n, size_t d, const uint8_t* codes, float* x);
// n * d floats -> codes: bit set where x > 0 (Faiss's real_to_binary)
void real_to_binary(size_t n, size_t d, const float* x, uint8_t* codes);
// Faiss's bitvec_shuffle: output bit j of each vector is input bit order[j]
// (order: db entries in [0, da)); a: n * da / 8 bytes, b: n * db / 8 bytes
void bitvec_shuffle(size_t n, size_t da, size_t db, const int32_t* order, const uint8_t* a, uint8_t* b);

}  // namespace annvil
