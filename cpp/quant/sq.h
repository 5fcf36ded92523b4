// Scalar quantizer: each component coded on its own (Faiss's ScalarQuantizer,
// same type numbers, same codes byte for byte).
//
//   QT_8bit (0)              1 byte / component, per-dimension range [vmin_i, vmin_i + vdiff_i]
//   QT_4bit (1)              4 bits / component (two per byte, low nibble first), per-dimension range
//   QT_8bit_uniform (2)      1 byte / component, one range for all dimensions
//   QT_4bit_uniform (3)      4 bits / component, one range
//   QT_fp16 (4)              IEEE half precision (no training)
//   QT_8bit_direct (5)       the value itself as an unsigned byte (no training; values in [0, 255])
//   QT_6bit (6)              6 bits / component, four in 3 bytes, per-dimension range
//   QT_bf16 (7)              bfloat16: the top 16 bits of the float, rounded (no training)
//   QT_8bit_direct_signed (8) value + 128 as a byte (values in [-128, 127])
//
// The trained integer types have L = 2^bits - 1 levels: with t = clamp((x - vmin) / vdiff, 0, 1)
// the component is c = int(L t) (truncated) and decodes to the bin centre
//   x ~ vmin + (c + 1/2) / L * vdiff.
// Every integer type thus decodes as an affine map of the integer component:
//   x_i = off_i + scale_i c_i      (affine(); direct: off = 0 / -128, scale = 1)
// and distances are computed on the codes without decoding to a float vector:
//   <q, x>    = sum_i q_i off_i  +  sum_i (q_i scale_i) c_i
//   |q - x|^2 = sum_i (a_i - scale_i c_i)^2,      a_i = q_i - off_i
// so a query is turned once into tables (sq_query_tables) and the kernels
// (sq_impl.h, one body for every ISA) only widen bytes to floats and multiply-add.
// 4- and 6-bit codes are unpacked to one byte per component first (a block
// at a time) and then go through the same byte kernels; bf16 codes are
// widened to floats (a shift) and go through the float kernels of distances.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/index.h"
#include "simd/ops_scalar.h"

namespace annvil {

struct ScalarQuantizer {
  // Faiss's numbering
  enum QuantizerType : int {
    QT_8bit = 0,
    QT_4bit = 1,
    QT_8bit_uniform = 2,
    QT_4bit_uniform = 3,
    QT_fp16 = 4,
    QT_8bit_direct = 5,
    QT_6bit = 6,
    QT_bf16 = 7,
    QT_8bit_direct_signed = 8,
  };
  // how the components are stored: bytes, packed 4 / 6 bits, or 16-bit floats
  enum class Kind { u8, u4, u6, f16, bf16 };

  size_t d = 0;
  int qtype = QT_8bit;
  size_t code_size = 0;
  // per-dimension types: vmin (d) then vdiff (d); uniform types: vmin, vdiff;
  // the others: empty
  std::vector<float> trained;

  ScalarQuantizer() = default;
  ScalarQuantizer(size_t d, int qtype);

  static bool valid_qtype(int qtype) { return qtype >= QT_8bit && qtype <= QT_8bit_direct_signed; }
  Kind kind() const;
  bool uniform() const { return qtype == QT_8bit_uniform || qtype == QT_4bit_uniform; }
  // levels L of the trained integer types (255, 15, 63), 0 for the others
  int levels() const;
  bool needs_training() const { return levels() > 0; }
  bool is_trained() const { return !needs_training() || !trained.empty(); }
  // x: n * d (min/max range statistics, as Faiss's default RS_minmax)
  void train(size_t n, const float* x);
  // codes: n * code_size
  void compute_codes(const float* x, uint8_t* codes, size_t n) const;
  // exact inverse as Faiss computes it (vmin + (c + 1/2) / L * vdiff, in that order)
  void decode(const uint8_t* codes, float* x, size_t n) const;
  // n codes (stride bytes apart) decoded, plus `offset` (d floats, e.g. the
  // IVF centroid; may be null), with the SIMD kernels: out is n * d
  void decode_fast(size_t n, const uint8_t* codes, size_t stride, const float* offset, float* out) const;
  // bytes of trained parameters expected for (d, qtype)
  size_t trained_size() const;
  // integer kinds (u8, u4, u6): component i decodes to off[i] + scale[i] * c_i; off, scale: d floats
  void affine(float* off, float* scale) const;
  // the integer components of one code, one byte each (out: d bytes)
  void unpack(const uint8_t* code, uint8_t* out) const;
};

uint16_t float_to_bf16(float f);  // rounded half up in magnitude, as Faiss's encode_bf16
float bf16_to_float(uint16_t h);

// The query tables of the integer kinds (see the header), the one query
// preparation of SQDistanceComputer and HNSW's SQSpace.  off, scale: the
// affine decoder (d floats each, ScalarQuantizer::affine); x: the query (d);
// a: d floats out.
//   L2: a_i = x_i - off_i                   (the kernel's b is `scale`)
//   IP: a_i = x_i scale_i, returns <x, off> (summed in double)
// Returns 0 for L2.
float sq_query_tables(size_t d, const float* off, const float* scale, bool l2, const float* x, float* a);

// Per-query distance evaluation on codes.  key() is "smaller is better": the
// L2 distance, or the negated inner product.
struct SQDistanceComputer {
  const ScalarQuantizer* sq;
  bool l2;
  ScalarQuantizer::Kind kind;
  std::vector<float> a, b;            // integer kinds: tables (see the header)
  std::vector<float> q;               // fp16 / bf16: the query itself
  float c0 = 0;                       // constant term of the inner product
  float extra = 0;                    // added to the inner product (e.g. <q, centroid>)
  std::vector<float> off, scale;      // the quantizer's affine decoder (integer kinds)
  mutable std::vector<uint8_t> ubuf;  // unpacked components of a block (u4, u6)
  mutable std::vector<float> fbuf;    // widened components of a block (bf16)

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

// float_to_half (rounded half up in magnitude, as Faiss's encode_fp16) and
// half_to_float are simd/ops_scalar.h's, the one portable fp16 converter.

namespace detail {
const SQKernels& sq_kernels_scalar();
const SQKernels& sq_kernels_avx2();
const SQKernels& sq_kernels_avx512();
}  // namespace detail

}  // namespace annvil
