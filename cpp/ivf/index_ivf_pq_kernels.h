// Small SIMD kernels of the IVF-PQ family, one translation unit per
// instruction set (index_ivf_pq.cpp holds the scalar ones and the dispatch).
//
// PQ sub-spaces are tiny (dsub = 2..16 dimensions), so the generic distance
// kernels, which vectorise along the dimension, spend most of their time in
// call and reduction overhead.  These kernels vectorise along the centroids
// instead, reading codebooks stored transposed: ct[(m * dsub + p) * ksub + j]
// = component p of centroid j of sub-space m.  A table entry is then a chain
// of dsub broadcast-FMAs over 16 (AVX-512) or 8 (AVX2) centroids at a time.
#pragma once
#include <cstddef>
#include <cstdint>

namespace annvil {
namespace detail {

struct IVFPQKernels {
  // out[m * ksub + j] = <x_m, c_{m,j}> for m < M, j < ksub
  void (*ip_table)(const float* x, const float* ct, size_t M, size_t dsub, size_t ksub, float* out);
  // out[i] = a[i] + alpha * b[i]
  void (*madd)(size_t n, const float* a, float alpha, const float* b, float* out);
  // nearest of k centroids (ct: dsub * k transposed, cnorms: k squared norms)
  // for n rows x + i * ldx (dsub floats each): labels[i], and dis[i] =
  // |c|^2 - 2 <x, c> (the L2 distance minus |x|^2); ties go to the smaller index.
  void (*assign)(size_t n, const float* x, size_t ldx, const float* ct, const float* cnorms, size_t dsub, size_t k,
                 int32_t* labels, float* dis);
  // 16-bit copy of a table of M rows of ksub floats: out = round((t - min_row)
  // * scale) with scale = 65535 / (largest row span); returns scale, and the
  // sum of the row minimums in *bias.
  double (*lut_to_u16)(const float* t, size_t M, size_t ksub, uint16_t* out, double* bias);
  // out[i] = sum_m lut[m * 256 + code_i[m]] for n codes of M bytes (M % 16 == 0);
  // lut: M * 256 uint16 plus 2 readable padding bytes.  Null when unavailable.
  void (*sums_u16)(const uint8_t* codes, size_t n, size_t M, const uint16_t* lut, uint32_t* out);
  // Fast-scan LUT quantisation with pq4_quantize_lut's semantics (M rows of
  // 16 floats -> M2 * 16 bytes, padding rows zero; one scale such that
  // entries fit a byte and any sum fits uint16).  Null: use pq4_quantize_lut.
  void (*lut_to_u8)(const float* t, size_t M, uint8_t* out, float* scale, float* bias);
};

const IVFPQKernels& ivfpq_kernels();  // for the active simd_level()
const IVFPQKernels& ivfpq_kernels_scalar();
const IVFPQKernels& ivfpq_kernels_avx2();
const IVFPQKernels& ivfpq_kernels_avx512();

}  // namespace detail
}  // namespace annvil
