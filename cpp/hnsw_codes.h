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

#include "distances.h"
#include "index.h"
#include "pq.h"
#include "sq.h"

namespace annvil {

// Scalar-quantizer codes (QT_8bit, QT_8bit_uniform, QT_fp16), code_size
// bytes per vector.  8-bit codes decode to x_i = dec_a_i + dec_b_i c_i
// (bin centres: dec_a_i = vmin_i + dec_b_i / 2, dec_b_i = vdiff_i / 255, see sq.h),
// so with a prepared query
//   L2:  a_i = q_i - dec_a_i            key = sum_i (a_i - dec_b_i c_i)^2
//   IP:  a_i = q_i dec_b_i, a_d = <q, dec_a>   key = -(sum_i a_i c_i + a_d)
// and fp16 codes are compared with the query itself (F16C kernels).
struct SQSpace {
  const uint8_t* codes = nullptr;  // n * code_size
  size_t d = 0, code_size = 0;
  bool ip = false, fp16 = false;
  std::vector<float> dec;        // 2 * d: dec_a then dec_b (8-bit only)
  const float* dec_a = nullptr;  // into dec
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
    return ip ? -(u8_dot(q, c, d) + q[d]) : u8_l2(q, dec_b, c, d);
  }
  void decode(int32_t id, float* out) const;  // d floats
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

}  // namespace annvil
