// 4-bit PQ "fast-scan": codes of 32 vectors are interleaved so that one
// 128-bit lane holds 16 bytes whose nibbles are the codes of 32 vectors for one
// sub-quantizer; the 16-entry uint8 look-up table of that sub-quantizer sits in
// the matching lane of a register, and one byte shuffle (pshufb) then looks up
// 16 vectors at once.  Sums are accumulated in uint16.
//
// Block layout (bbs = 32 vectors, M2 = M rounded up to even, padding
// sub-quantizers have code 0 and a zero LUT): a block is M2 * 16 bytes; the
// pair of sub-quantizers (2p, 2p + 1) occupies bytes [32 p, 32 p + 32):
//   byte 32 p + 16 L + j  (L in {0, 1}, j < 16):
//       low nibble  = code of vector j      for sub-quantizer 2p + L
//       high nibble = code of vector j + 16 for sub-quantizer 2p + L
// The quantised LUT has the same shape: M2 * 16 bytes, entry (m, c) at 16 m + c,
// so the 32 bytes at 32 p are exactly the register for pair p (and the 64
// bytes at 64 q the AVX-512 register for pairs 2q, 2q + 1).
//
// These pieces are independent of IndexPQFastScan so IVF fast-scan can reuse
// them on its own packed lists.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/index.h"

namespace annvil {

constexpr size_t kPQ4BlockSize = 32;  // vectors per block (bbs)

inline size_t pq4_M2(size_t M) { return (M + 1) & ~size_t(1); }
inline size_t pq4_block_bytes(size_t M) { return pq4_M2(M) * 16; }
inline size_t pq4_nblocks(size_t n) { return (n + kPQ4BlockSize - 1) / kPQ4BlockSize; }

// Pack n codes (PQ byte layout with nbits = 4: n * ceil(M / 2) bytes) into
// pq4_nblocks(n) blocks at `blocks` (pq4_nblocks(n) * pq4_block_bytes(M)
// bytes, zero-filled first); vector i lands at position i of the block array.
void pq4_pack_codes(const uint8_t* codes, size_t n, size_t M, uint8_t* blocks);
// Same for sub-quantizer indices given unpacked (n * M bytes, values < 16),
// written at positions i0 .. i0 + n - 1 (blocks must be large enough).
void pq4_pack_indices(const uint8_t* idx, size_t n, size_t M, size_t i0, uint8_t* blocks);
// Code of vector i for sub-quantizer m, and its inverse.
uint8_t pq4_get_packed_element(const uint8_t* blocks, size_t M, size_t i, size_t m);
void pq4_set_packed_element(uint8_t* blocks, size_t M, size_t i, size_t m, uint8_t code);
// Back to the PQ byte layout (n * ceil(M / 2) bytes) for vectors i0 .. i0 + n - 1.
void pq4_unpack_codes(const uint8_t* blocks, size_t M, size_t i0, size_t n, uint8_t* codes);

// A float LUT quantised to uint8: lut_q[m][c] = round((lut[m][c] - min_m) * scale),
// so that   sum_m lut[m][c_m] ~= sum_m lut_q[m][c_m] / scale + bias.
// `scale` keeps every entry <= 255 and every possible sum <= 65535.
struct QuantizedLUT {
  std::vector<uint8_t> q;  // M2 * 16
  float scale = 1.f;
  float inv_scale = 1.f;  // 1 / scale (0 when scale is 0: a constant LUT)
  float bias = 0.f;
  void set_scale(float s) {
    scale = s;
    inv_scale = s > 0.f ? 1.f / s : 0.f;
  }
  // dequantise an accumulated uint16 sum.  Every fast-scan path (SIMD, the
  // scalar reference implems, range search) goes through pq4_dequantize with
  // the same bias so that they give bit-identical distances.
  float to_float(uint32_t acc) const { return float(acc) * inv_scale + bias; }
  // largest possible |dequantised - exact sum| from rounding: M / (2 scale)
  float max_error(size_t M) const { return 0.5f * float(M) / scale; }
};
inline float pq4_dequantize(uint32_t acc, float inv_scale, float bias) { return float(acc) * inv_scale + bias; }

// lut: M * 16 floats (smaller = better, e.g. L2 distances or negated inner products)
void pq4_quantize_lut(const float* lut, size_t M, QuantizedLUT& out);
// nlut LUTs (nlut * M * 16 floats, e.g. one per probed inverted list of a
// query) quantised with one shared scale, so that dequantised sums compare
// across them; each keeps its own bias.  out: nlut entries.
void pq4_quantize_luts(const float* luts, size_t nlut, size_t M, QuantizedLUT* out);

// Faiss's quantize_LUT_and_bias (utils/quantize_lut.h), same semantics, for
// the drop-in API: nprobe LUTs of M x ksub floats (one shared 2-D LUT when
// !lut_is_3d) with per-probe biases (bias may be null: no bias, 2-D only)
// become uint8 LUTs (LUTq: nprobe (or 1) * M2 * ksub, padding rows zero) and
// uint16 biases (biasq may be null for a 3-D LUT: the bias is then folded
// into the LUTs) such that  dis ~= (sum_m LUTq[m][c_m] + biasq) / a + b.
// A constant LUT gives a = 0 (never a division by zero).
void quantize_LUT_and_bias(size_t nprobe, size_t M, size_t ksub, bool lut_is_3d, const float* LUT, const float* bias,
                           uint8_t* LUTq, size_t M2, uint16_t* biasq, float* a_out, float* b_out);

// Faiss's CodePackerPQ4 for our block layout: codes of bbs vectors (bbs a
// multiple of 32) per block of bbs / 32 consecutive 32-vector blocks, so a
// vector's global position i addresses it whatever bbs is.
inline size_t pq4_block_stride(size_t M, size_t bbs) { return bbs / kPQ4BlockSize * pq4_block_bytes(M); }
// bytes that hold n vectors in blocks of bbs
inline size_t pq4_codes_bytes(size_t n, size_t M, size_t bbs) { return (n + bbs - 1) / bbs * pq4_block_stride(M, bbs); }

struct PQ4CodePacker {
  size_t M, bbs, code_size, nvec, block_size;
  PQ4CodePacker(size_t M_, size_t bbs_)
      : M(M_), bbs(bbs_), code_size((M_ + 1) / 2), nvec(bbs_), block_size(pq4_block_stride(M_, bbs_)) {}
  // code: code_size bytes (PQ layout); i: the vector's position from the start of `blocks`
  void pack_1(const uint8_t* code, size_t i, uint8_t* blocks) const {
    for (size_t m = 0; m < M; ++m)
      pq4_set_packed_element(blocks, M, i, m, uint8_t((code[m >> 1] >> ((m & 1) * 4)) & 15));
  }
  void unpack_1(const uint8_t* blocks, size_t i, uint8_t* code) const { pq4_unpack_codes(blocks, M, i, 1, code); }
};

// out[32 b + j] = sum over sub-quantizers of lut_q[m][code(vector 32 b + j, m)]
// for blocks b < nblocks (padding vectors included).  Dispatches on simd_level().
void pq4_accumulate(const uint8_t* blocks, size_t nblocks, size_t M, const uint8_t* lut_q, uint16_t* out);
// Same, and masks[b] gets bit j set when out[32 b + j] <= tmax (the
// threshold test done in SIMD, so the caller only visits candidates).
void pq4_accumulate_masked(const uint8_t* blocks, size_t nblocks, size_t M, const uint8_t* lut_q, uint16_t* out,
                           uint16_t tmax, uint32_t* masks);

// Several queries at once (nq <= kPQ4MaxQueries): the code bytes of a block
// are loaded and split into nibbles once for all of them.  luts[q], out[q]
// (nblocks * 32), tmax[q], masks[q] (nblocks) as in pq4_accumulate_masked.
constexpr size_t kPQ4MaxQueries = 4;
void pq4_accumulate_multi(const uint8_t* blocks, size_t nblocks, size_t M, size_t nq, const uint8_t* const* luts,
                          uint16_t* const* out, const uint16_t* tmax, uint32_t* const* masks);

// Blocks per scan chunk: about 32 KiB of codes, so a chunk stays in L1/L2
// while every query of a batch passes over it (the code array is read from
// memory once per batch rather than once per query: the scan is otherwise
// memory-bound).
inline size_t pq4_chunk_blocks(size_t M) {
  size_t c = (32 * 1024) / pq4_block_bytes(M);
  return std::max<size_t>(1, std::min<size_t>(c, 64));
}

// Scan the `n` vectors stored in pq4_nblocks(n) blocks against nq quantised
// LUTs (luts[q]: M2 * 16 bytes).  `consider(q, acc, i)` is called for vector
// i (0-based in this code array) whenever its uint16 sum acc for query q is
// below thresholds[q]; the callback may lower thresholds[q] as its heap fills
// (typically to the heap's worst key).  Callers map i to ids and apply
// selectors, so the same scan serves flat and inverted-list storage.
template <class Consider>
void pq4_scan_multi(const uint8_t* blocks, size_t n, size_t M, size_t nq, const uint8_t* const* luts,
                    const uint32_t* thresholds, Consider&& consider) {
  constexpr size_t G = kPQ4MaxQueries;
  alignas(64) uint16_t acc[G][64 * kPQ4BlockSize];
  uint32_t masks[G][64];
  uint16_t* outp[G];
  uint32_t* maskp[G];
  for (size_t g = 0; g < G; ++g) {
    outp[g] = acc[g];
    maskp[g] = masks[g];
  }
  const size_t nb = pq4_nblocks(n), bb = pq4_block_bytes(M), chunk = pq4_chunk_blocks(M);
  for (size_t b0 = 0; b0 < nb; b0 += chunk) {
    size_t nc = std::min(chunk, nb - b0);
    size_t i0 = b0 * kPQ4BlockSize;
    for (size_t q0 = 0; q0 < nq; q0 += G) {
      size_t ng = std::min(G, nq - q0);
      uint16_t tmax[G];
      for (size_t g = 0; g < ng; ++g) {
        uint32_t t = thresholds[q0 + g];
        // t == 0: nothing can enter; masks then only flag sums of 0, which consider() rejects
        tmax[g] = uint16_t(t == 0 ? 0 : std::min<uint32_t>(t - 1, 0xffff));
      }
      pq4_accumulate_multi(blocks + b0 * bb, nc, M, ng, luts + q0, outp, tmax, maskp);
      for (size_t g = 0; g < ng; ++g) {
        const size_t q = q0 + g;
        for (size_t b = 0; b < nc; ++b) {
          uint32_t m = masks[g][b];
          if (!m) continue;
          size_t base = i0 + b * kPQ4BlockSize;
          if (base + kPQ4BlockSize > n) m &= (1u << (n - base)) - 1;  // padding vectors of the last block
          while (m) {
            size_t j = size_t(__builtin_ctz(m));
            m &= m - 1;
            uint32_t a = acc[g][b * kPQ4BlockSize + j];
            if (a < thresholds[q]) consider(q, a, base + j);
          }
        }
      }
    }
  }
}

// Single-query form of pq4_scan_multi: consider(acc, i).
template <class Consider>
void pq4_scan(const uint8_t* blocks, size_t n, size_t M, const uint8_t* lut_q, const uint32_t* threshold,
              Consider&& consider) {
  pq4_scan_multi(blocks, n, M, 1, &lut_q, threshold, [&](size_t, uint32_t acc, size_t i) { consider(acc, i); });
}

namespace detail {
// The accumulation kernels, one table per instruction set, all compiled from
// quant/pq_fastscan_impl.h (M2 = pq4_M2(M); masks may be null: no threshold test).
struct PQ4Kernels {
  void (*accumulate)(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out,
                     uint16_t tmax, uint32_t* masks);
  void (*accumulate_multi)(const uint8_t* blocks, size_t nblocks, size_t M2, size_t nq, const uint8_t* const* luts,
                           uint16_t* const* out, const uint16_t* tmax, uint32_t* const* masks);
};
const PQ4Kernels& pq4_kernels();  // for the active simd_level()
const PQ4Kernels& pq4_kernels_scalar();
const PQ4Kernels& pq4_kernels_avx2();
const PQ4Kernels& pq4_kernels_avx512();
}  // namespace detail

}  // namespace annvil
