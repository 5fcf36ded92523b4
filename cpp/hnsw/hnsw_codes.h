// Compressed vector storages for the HNSW graph (IndexHNSWSQ, IndexHNSWPQ):
// the "Space" types the graph templates in hnsw.cpp are instantiated with,
// next to FlatSpace (hnsw.h).  A Space offers
//   prepare(x, buf)    the per-query form of a float32 query x
//   to_query(q, id)    key from a prepared query to stored vector id
//   query_of(id, buf)  the prepared query of stored vector id (for inserts)
//   between(a, b)      key between two stored vectors
//   prefetch(id), prefetch_ahead
// Keys are "smaller is better": L2 squared, or -<x, y> for inner product.
// to_query is inline (it is the hot loop of search and construction);
// between decodes both vectors, which for PQ equals Faiss's symmetric
// (SDC) distance and for SQ is the distance between the decoded vectors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "distances/distances.h"
#include "distances/hamming.h"
#include "core/index.h"
#include "quant/pq.h"
#include "quant/sq.h"

namespace annvil {

// Scalar-quantizer codes (every type of sq.h), code_size bytes per vector.
// Integer codes decode to x_i = dec_a_i + dec_b_i c_i (ScalarQuantizer::
// affine: bin centres for the trained types), so with a prepared query
//   L2:  a_i = q_i - dec_a_i            key = sum_i (a_i - dec_b_i c_i)^2
//   IP:  a_i = q_i dec_b_i, a_d = <q, dec_a>   key = -(sum_i a_i c_i + a_d)
// 4- and 6-bit codes are unpacked to bytes (a per-thread buffer) first; fp16
// codes are compared with the query itself (F16C kernels), bf16 codes are
// widened to floats (a shift) for the float kernels.
struct SQSpace {
  const uint8_t* codes = nullptr;  // n * code_size
  const ScalarQuantizer* sq = nullptr;
  size_t d = 0, code_size = 0;
  bool ip = false, fp16 = false;
  bool packed = false, bf16 = false;  // u4 / u6 codes; bf16 codes
  std::vector<float> dec;             // 2 * d: dec_a then dec_b (8-bit only)
  const float* dec_a = nullptr;       // into dec
  const float* dec_b = nullptr;
  float (*u8_dot)(const float*, const uint8_t*, size_t) = nullptr;
  float (*u8_l2)(const float*, const float*, const uint8_t*, size_t) = nullptr;
  float (*f16_dot)(const float*, const uint16_t*, size_t) = nullptr;
  float (*f16_l2)(const float*, const uint16_t*, size_t) = nullptr;
  int prefetch_lines = 1;
  int prefetch_ahead = 2;

  // the decoder is derived from sq.trained here, so it can never be stale;
  // not copyable (dec_a / dec_b point into dec)
  SQSpace(const ScalarQuantizer& sq, const uint8_t* codes, MetricType metric);
  SQSpace(const SQSpace&) = delete;
  SQSpace& operator=(const SQSpace&) = delete;

  const float* prepare(const float* x, std::vector<float>& buf) const;
  float to_query(const float* q, int32_t id) const {
    const uint8_t* c = codes + size_t(id) * code_size;
    if (fp16) {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(c);
      return ip ? -f16_dot(q, h, d) : f16_l2(q, h, d);
    }
    if (bf16) return bf16_key(q, c);
    if (packed) c = unpacked(c);
    return ip ? -(u8_dot(q, c, d) + q[d]) : u8_l2(q, dec_b, c, d);
  }
  float bf16_key(const float* q, const uint8_t* c) const;
  const uint8_t* unpacked(const uint8_t* c) const;  // the components as bytes (per-thread buffer)
  void decode(int32_t id, float* out) const;        // d floats
  const float* query_of(int32_t id, std::vector<float>& buf) const;
  float between(int32_t a, int32_t b) const;
  void prefetch(int32_t id) const {
    const char* p = reinterpret_cast<const char*>(codes + size_t(id) * code_size);
    for (int l = 0; l < prefetch_lines; ++l) __builtin_prefetch(p + 64 * l, 0, 3);
  }
};

// Product-quantizer codes.  The prepared query is the table T (M * ksub) of
// distances (L2) or inner products (IP) between the query's sub-vectors and
// the centroids; the key to a code is then sum_m T[m][c_m] (negated for IP).
struct PQSpace {
  const uint8_t* codes = nullptr;  // n * code_size
  const ProductQuantizer* pq = nullptr;
  size_t d = 0, M = 0, ksub = 0, nbits = 0, code_size = 0;
  bool ip = false;
  int prefetch_lines = 1;
  int prefetch_ahead = 2;

  PQSpace(const ProductQuantizer& pq, const uint8_t* codes, MetricType metric);

  const float* prepare(const float* x, std::vector<float>& buf) const;
  float to_query(const float* T, int32_t id) const {
    const uint8_t* c = codes + size_t(id) * code_size;
    float s;
    if (nbits == 8) {
      // four independent sums hide the latency of the dependent adds
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      size_t m = 0;
      for (; m + 4 <= M; m += 4) {
        s0 += T[(m + 0) * 256 + c[m + 0]];
        s1 += T[(m + 1) * 256 + c[m + 1]];
        s2 += T[(m + 2) * 256 + c[m + 2]];
        s3 += T[(m + 3) * 256 + c[m + 3]];
      }
      for (; m < M; ++m) s0 += T[m * 256 + c[m]];
      s = (s0 + s1) + (s2 + s3);
    } else {
      s = 0;
      for (size_t m = 0; m < M; ++m) s += T[m * ksub + ProductQuantizer::read_index(c, m, nbits)];
    }
    return ip ? -s : s;
  }
  void decode(int32_t id, float* out) const;  // d floats
  const float* query_of(int32_t id, std::vector<float>& buf) const;
  float between(int32_t a, int32_t b) const;
  void prefetch(int32_t id) const {
    const char* p = reinterpret_cast<const char*>(codes + size_t(id) * code_size);
    for (int l = 0; l < prefetch_lines; ++l) __builtin_prefetch(p + 64 * l, 0, 3);
  }
};

// Binary codes (IndexBinaryHNSW), compared by Hamming distance.  The graph
// code passes queries as `const float*`; here they are codes of code_size
// bytes, copied by prepare() into a float buffer (so they are aligned and
// outlive the caller's array) and read back as bytes.  Keys are the
// distances themselves (small integers, exact in float).
struct HammingSpace {
  const uint8_t* codes = nullptr;  // n * code_size
  size_t code_size = 0;
  int (*fn)(const uint8_t*, const uint8_t*, size_t) = nullptr;
  int prefetch_ahead = 2;

  HammingSpace(const uint8_t* codes_, size_t code_size_)
      : codes(codes_), code_size(code_size_), fn(hamming_kernels().distance) {}

  // x: really a code (code_size bytes) passed through the float* interface
  const float* prepare(const float* x, std::vector<float>& buf) const {
    buf.resize((code_size + 3) / 4);
    std::memcpy(buf.data(), x, code_size);
    return buf.data();
  }
  float to_query(const float* q, int32_t id) const {
    return float(fn(reinterpret_cast<const uint8_t*>(q), codes + size_t(id) * code_size, code_size));
  }
  const float* query_of(int32_t id, std::vector<float>& buf) const {
    return prepare(reinterpret_cast<const float*>(codes + size_t(id) * code_size), buf);
  }
  float between(int32_t a, int32_t b) const {
    return float(fn(codes + size_t(a) * code_size, codes + size_t(b) * code_size, code_size));
  }
  void prefetch(int32_t id) const { __builtin_prefetch(codes + size_t(id) * code_size, 0, 3); }
};

}  // namespace annvil
