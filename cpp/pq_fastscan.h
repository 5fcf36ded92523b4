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

#include "index.h"

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
  float bias = 0.f;
  // dequantise an accumulated uint16 sum
  float to_float(uint32_t acc) const { return float(acc) / scale + bias; }
  // largest possible |dequantised - exact sum| from rounding: M / (2 scale)
  float max_error(size_t M) const { return 0.5f * float(M) / scale; }
};
// lut: M * 16 floats (smaller = better, e.g. L2 distances or negated inner products)
void pq4_quantize_lut(const float* lut, size_t M, QuantizedLUT& out);

// out[32 b + j] = sum over sub-quantizers of lut_q[m][code(vector 32 b + j, m)]
// for blocks b < nblocks (padding vectors included).  Dispatches on simd_level().
void pq4_accumulate(const uint8_t* blocks, size_t nblocks, size_t M, const uint8_t* lut_q, uint16_t* out);

// Scan `nblocks` blocks holding `n` vectors (the last block may be partial),
// keeping the k best (smallest accumulated sums) in a TopK-compatible
// collector: `consider(acc, i)` is called for vector i (0-based in the range)
// whenever acc < *threshold, where threshold is updated by the caller.
// Returned through a callback so IVF lists can map i to ids and apply selectors.
template <class Consider>
void pq4_scan(const uint8_t* blocks, size_t n, size_t M, const uint8_t* lut_q, const uint32_t* threshold,
              Consider&& consider) {
  constexpr size_t kChunk = 32;  // blocks per accumulation batch
  alignas(64) uint16_t acc[kChunk * kPQ4BlockSize];
  const size_t nb = pq4_nblocks(n), bb = pq4_block_bytes(M);
  for (size_t b0 = 0; b0 < nb; b0 += kChunk) {
    size_t nc = std::min(kChunk, nb - b0);
    pq4_accumulate(blocks + b0 * bb, nc, M, lut_q, acc);
    size_t i0 = b0 * kPQ4BlockSize;
    size_t lim = std::min(n - i0, nc * kPQ4BlockSize);
    for (size_t j = 0; j < lim; ++j)
      if (acc[j] < *threshold) consider(uint32_t(acc[j]), i0 + j);
  }
}

namespace detail {
void pq4_accumulate_scalar(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out);
void pq4_accumulate_avx2(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out);
void pq4_accumulate_avx512(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out);
}  // namespace detail

}  // namespace annvil
