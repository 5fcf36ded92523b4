// PQ look-up tables and encoding in the layout of the small SIMD kernels
// (ivf/index_ivf_pq_kernels.h): transposed codebooks, the inner-product and
// L2 tables of a query, nearest-centroid encoding, a lazily rebuilt codebook
// cache, and the sums of table entries over codes that are the inner loop of
// every asymmetric (ADC) scan.  Used by IndexIVFPQ and IndexIVFPQFastScan;
// plain PQ (training, codes layout, decoding) is in pq.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "quant/pq.h"

namespace annvil {

// Codebooks of a ProductQuantizer laid out for the kernels of
// index_ivf_pq_kernels.h: transposed centroids ct (M * dsub * ksub) and their
// squared norms (M * ksub).
struct PQCodebooks {
  std::vector<float> ct, norms;
  uint64_t fingerprint = 0;
  void build(const ProductQuantizer& pq);
};
// A cheap fingerprint of the centroids (shape and a sample of values), used
// to notice that a PQ was retrained or its centroids were replaced.
uint64_t pq_fingerprint(const ProductQuantizer& pq);

// out: M * ksub.  <x_m, c_{m,j}>, and |x_m - c_{m,j}|^2.
void pq_ip_table(const ProductQuantizer& pq, const PQCodebooks& cb, const float* x, float* out);
void pq_l2_table(const ProductQuantizer& pq, const PQCodebooks& cb, const float* x, float* out);
// Codes of n vectors (x: n * d, codes: n * code_size), nearest centroid per sub-space.
void pq_encode(const ProductQuantizer& pq, const PQCodebooks& cb, idx_t n, const float* x, uint8_t* codes);
// Thread-safe lazily (re)built PQCodebooks of an index's pq.
class PQCodebookCache {
 public:
  PQCodebookCache() = default;
  PQCodebookCache(const PQCodebookCache&) {}
  PQCodebookCache& operator=(const PQCodebookCache&) { return *this; }
  std::shared_ptr<const PQCodebooks> get(const ProductQuantizer& pq) const;

 private:
  mutable std::mutex mu_;
  mutable std::shared_ptr<const PQCodebooks> cb_;
};

// out[i] = sum_m lut[m * ksub + code_i[m]] for n codes with nbits = 8
// (code_size = M bytes each).  lut: M * 256 floats.
void pq8_code_sums(const uint8_t* codes, size_t n, size_t M, const float* lut, float* out);
// same with a uint16 table and exact integer sums
void pq8_code_sums_u16(const uint8_t* codes, size_t n, size_t M, const uint16_t* lut, uint32_t* out);
// out[i] = sum_m lut[m * ksub + code_i[m]] for any nbits (decodes the bit
// stream; the nbits = 8 case has the faster pq8_code_sums).  lut: M * ksub floats.
void pq_code_sums_generic(const ProductQuantizer& pq, const uint8_t* codes, size_t n, const float* lut, float* out);

}  // namespace annvil
