// Scalar quantizer: each component coded on its own (Faiss's ScalarQuantizer).
//
//   QT_8bit          one byte per component, per-dimension range [vmin_i, vmin_i + vdiff_i]
//   QT_8bit_uniform  one byte per component, one range for all dimensions
//   QT_fp16          IEEE half precision (no training)
//
// 8-bit codes are Faiss's, byte for byte: t_i = clamp((x_i - vmin_i) / vdiff_i,
// 0, 1) is coded c_i = floor(255 t_i), and decodes to
//   x_i ~ vmin_i + b_i (c_i + 1/2),  b_i = vdiff_i / 255  (sq8_step).
// Distances are computed on the codes without decoding to a float vector:
//   <q, x>    = sum_i q_i (vmin_i + b_i / 2)  +  sum_i (q_i b_i) c_i
//   |q - x|^2 = sum_i (a_i - b_i c_i)^2,      a_i = q_i - vmin_i - b_i / 2
// so a query is turned once into (a, b) or (q b, constant) tables, and the
// kernels (sq_avx2.cpp / sq_avx512.cpp / scalar here) only widen bytes to
// floats and multiply-add.  fp16 codes are widened with F16C.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "index.h"

namespace annvil {

// the decoding step of 8-bit codes for a range of width vdiff (see above)
inline float sq8_step(float vdiff) { return vdiff * (1.f / 255.f); }

struct ScalarQuantizer {
  // Faiss's numbering
  enum QuantizerType : int { QT_8bit = 0, QT_4bit = 1, QT_8bit_uniform = 2, QT_4bit_uniform = 3, QT_fp16 = 4 };

  size_t d = 0;
  int qtype = QT_8bit;
  size_t code_size = 0;
  // QT_8bit: vmin (d) then vdiff (d); QT_8bit_uniform: vmin, vdiff; fp16: empty
  std::vector<float> trained;

  ScalarQuantizer() = default;
  ScalarQuantizer(size_t d, int qtype);

  bool needs_training() const { return qtype != QT_fp16; }
  bool is_trained() const { return !needs_training() || !trained.empty(); }
  // x: n * d (min/max range statistics, as Faiss's default RS_minmax)
  void train(size_t n, const float* x);
  // codes: n * code_size
  void compute_codes(const float* x, uint8_t* codes, size_t n) const;
  void decode(const uint8_t* codes, float* x, size_t n) const;
  // n codes (stride bytes apart) decoded, plus `offset` (d floats, e.g. the
  // IVF centroid; may be null), with the SIMD kernels: out is n * d
  void decode_fast(size_t n, const uint8_t* codes, size_t stride, const float* offset, float* out) const;
  // bytes of trained parameters expected for (d, qtype)
  size_t trained_size() const;
};

// Per-query distance evaluation on codes.  key() is "smaller is better": the
// L2 distance, or the negated inner product.
struct SQDistanceComputer {
  const ScalarQuantizer* sq;
  bool l2;
  std::vector<float> a, b;  // 8-bit tables (see sq.h header)
  std::vector<float> q;     // fp16: the query itself
  float c0 = 0;             // constant term of the inner product
  float extra = 0;          // added to the inner product (e.g. <q, centroid>)

  SQDistanceComputer(const ScalarQuantizer& sq, MetricType metric);
  void set_query(const float* x);  // x: d floats
  float key(const uint8_t* code) const;
  // keys of n codes (stride bytes apart)
  void keys(size_t n, const uint8_t* codes, size_t stride, float* out) const;
};

// SIMD kernels over codes, chosen at run time from simd_level().
struct SQKernels {
  // sum_i a_i c_i
  float (*u8_dot)(const float* a, const uint8_t* c, size_t d);
  // sum_i (a_i - b_i c_i)^2
  float (*u8_l2)(const float* a, const float* b, const uint8_t* c, size_t d);
  // sum_i q_i h_i and sum_i (q_i - h_i)^2 for half-precision h
  float (*f16_dot)(const float* q, const uint16_t* h, size_t d);
  float (*f16_l2)(const float* q, const uint16_t* h, size_t d);
  // The same over n codes `stride` bytes apart (four codes per pass, so the
  // query tables are loaded once per four codes): out[i] for code i.
  void (*u8_dot_ny)(const float* a, const uint8_t* c, size_t stride, size_t d, size_t n, float* out);
  void (*u8_l2_ny)(const float* a, const float* b, const uint8_t* c, size_t stride, size_t d, size_t n, float* out);
  void (*f16_dot_ny)(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out);
  void (*f16_l2_ny)(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out);
  // out_i = a_i + b_i c_i  (8-bit decoding with the bin-centre offset folded into a)
  void (*u8_decode)(const float* a, const float* b, const uint8_t* c, size_t d, float* out);
  // out_i = a_i + h_i  (a == nullptr: out_i = h_i)
  void (*f16_decode)(const float* a, const uint16_t* h, size_t d, float* out);
};
const SQKernels& sq_kernels();

uint16_t float_to_half(float f);  // round to nearest even, saturating to inf
// ties rounded away from zero: how Faiss's fp16 codes round (SQ codes use it
// so that they equal Faiss's byte for byte)
uint16_t float_to_half_ties_away(float f);
float half_to_float(uint16_t h);

namespace detail {
const SQKernels& sq_kernels_avx2();
const SQKernels& sq_kernels_avx512();
}  // namespace detail

}  // namespace annvil
