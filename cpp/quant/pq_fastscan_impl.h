// The fast-scan accumulation, written once over the integer lanes of
// simd/lanes_<isa>.h and instantiated by pq_fastscan_{scalar,avx2,avx512}.cpp
// (PQ4Kernels) and hnsw/qg_fastscan_{scalar,avx2,avx512}.cpp (QGKernels).
// Include after one lanes header; L is that header's IntLanes.
//
// One register holds the LUTs of R = L::kBytes / 32 sub-quantizer pairs (one
// 16-entry LUT per 128-bit lane, the block layout of pq_fastscan.h) and the
// matching code bytes; the byte shuffle looks up 16 vectors per lane.  uint8
// results are summed in uint16 without unpacking: adding the shuffled bytes
// as 16-bit words accumulates even + 256 * odd, and a second accumulator of
// the words shifted right by 8 holds the odd sums, so even = A - (B << 8)
// modulo 2^16 (exact while true sums stay below 65536, which the LUT scale
// guarantees).  Every step is an addition modulo 2^16, so all widths, tile
// shapes and summation orders give bit-identical sums.
#pragma once
#include <cstddef>
#include <cstdint>

namespace annvil {
namespace detail {
namespace fastscan {

#define ANNVIL_FS_INLINE inline __attribute__((always_inline))

// Q queries x G consecutive blocks (block g at blocks + g * bb): out[q] + 32 g
// gets the 32 sums of block g for query q, masks[q][g] (when masks is
// non-null) the bits of the sums <= tmax[q].  Each code register is loaded
// and split into nibbles once for the Q queries, each LUT register once for
// the G blocks; Q * G * 4 accumulators must fit L::kRegisters.
template <class L, int Q, int G>
ANNVIL_FS_INLINE void accumulate_tile(const uint8_t* blocks, size_t bb, const uint8_t* const* luts,
                                      uint16_t* const* out, const uint16_t* tmax, uint32_t* const* masks) {
  using U8 = typename L::U8;
  using U16 = typename L::U16;
  using H = typename L::U16h;
  const typename U8::reg nib = U8::splat(0x0f);
  typename U16::reg loA[Q][G], loB[Q][G], hiA[Q][G], hiB[Q][G];
  // the unroll pragmas make GCC keep the Q x G accumulators in registers
  // (without them it spills and reloads all of them around every block)
#pragma GCC unroll 16
  for (int q = 0; q < Q; ++q)
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) loA[q][g] = loB[q][g] = hiA[q][g] = hiB[q][g] = U16::zero();
  auto step = [&](const typename U8::reg* lut, const typename U8::reg* code) __attribute__((always_inline)) {
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const typename U8::reg lo = U8::bit_and(code[g], nib);
      const typename U8::reg hi = U8::bit_and(U16::template srli<4>(code[g]), nib);
#pragma GCC unroll 16
      for (int q = 0; q < Q; ++q) {
        const typename U8::reg rlo = U8::shuffle(lut[q], lo), rhi = U8::shuffle(lut[q], hi);
        loA[q][g] = U16::add(loA[q][g], rlo);
        loB[q][g] = U16::add(loB[q][g], U16::template srli<8>(rlo));
        hiA[q][g] = U16::add(hiA[q][g], rhi);
        hiB[q][g] = U16::add(hiB[q][g], U16::template srli<8>(rhi));
      }
    }
  };
  constexpr size_t R = L::kBytes;
  const size_t nfull = bb / R;
  for (size_t s = 0; s < nfull; ++s) {
    typename U8::reg lut[Q], code[G];
#pragma GCC unroll 16
    for (int q = 0; q < Q; ++q) lut[q] = U8::load(luts[q] + R * s);
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) code[g] = U8::load(blocks + g * bb + R * s);
    step(lut, code);
  }
  if constexpr (R > 32) {
    // AVX-512: an odd number of pairs (M2 % 4 == 2) ends with one 32-byte
    // step, zero-extended (zero LUT lanes add nothing)
    static_assert(R == 64, "the tail step assumes two pairs per register");
    if (bb % R) {
      typename U8::reg lut[Q], code[G];
#pragma GCC unroll 16
      for (int q = 0; q < Q; ++q) lut[q] = U8::load_low_half(luts[q] + R * nfull);
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) code[g] = U8::load_low_half(blocks + g * bb + R * nfull);
      step(lut, code);
    }
  }
  // lane-reduced, interleaved sums of one accumulator pair -> 16 uint16
  auto store16 = [](typename U16::reg A, typename U16::reg B, uint16_t* o, typename H::reg t)
                     __attribute__((always_inline)) {
                       const typename H::reg e = U16::fold(U16::sub(A, U16::template slli<8>(B)));
                       const typename H::reg od = U16::fold(B);
                       const typename H::reg v0 = H::interleave_lo(e, od), v1 = H::interleave_hi(e, od);
                       H::store(o, v0);
                       H::store(o + 8, v1);
                       return H::le_mask(v0, v1, t);
                     };
#pragma GCC unroll 16
  for (int q = 0; q < Q; ++q) {
    const typename H::reg t = H::splat(tmax[q]);
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const uint32_t mlo = store16(loA[q][g], loB[q][g], out[q] + 32 * g, t);
      const uint32_t mhi = store16(hiA[q][g], hiB[q][g], out[q] + 32 * g + 16, t);
      if (masks) masks[q][g] = mlo | (mhi << 16);
    }
  }
}

// tiles of up to kMax queries or blocks: 4 accumulators each, in half the registers
template <class L>
constexpr int kMaxTile = L::kRegisters / 8 > 0 ? L::kRegisters / 8 : 1;

// pq4_accumulate_masked: one block at a time
template <class L>
void accumulate(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out, uint16_t tmax,
                uint32_t* masks) {
  const size_t bb = M2 * 16;
  for (size_t b = 0; b < nblocks; ++b) {
    uint16_t* o = out + 32 * b;
    uint32_t* mk = masks ? masks + b : nullptr;
    accumulate_tile<L, 1, 1>(blocks + b * bb, bb, &lut_q, &o, &tmax, masks ? &mk : nullptr);
  }
}

// Q queries over all blocks, one block at a time
template <class L, int Q>
void accumulate_queries(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* const* luts,
                        uint16_t* const* out, const uint16_t* tmax, uint32_t* const* masks) {
  const size_t bb = M2 * 16;
  for (size_t b = 0; b < nblocks; ++b) {
    uint16_t* o[Q];
    uint32_t* mk[Q];
    for (int q = 0; q < Q; ++q) {
      o[q] = out[q] + 32 * b;
      mk[q] = masks ? masks[q] + b : nullptr;
    }
    accumulate_tile<L, Q, 1>(blocks + b * bb, bb, luts, o, tmax, masks ? mk : nullptr);
  }
}

// the largest tile <= n (n >= 1), from Q down to 1
template <class L, int Q = kMaxTile<L>>
void accumulate_query_tile(size_t n, const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* const* luts,
                           uint16_t* const* out, const uint16_t* tmax, uint32_t* const* masks) {
  if constexpr (Q > 1) {
    if (n < size_t(Q)) return accumulate_query_tile<L, Q - 1>(n, blocks, nblocks, M2, luts, out, tmax, masks);
  }
  accumulate_queries<L, Q>(blocks, nblocks, M2, luts, out, tmax, masks);
}

// pq4_accumulate_multi: queries in tiles of up to kMaxTile
template <class L>
void accumulate_multi(const uint8_t* blocks, size_t nblocks, size_t M2, size_t nq, const uint8_t* const* luts,
                      uint16_t* const* out, const uint16_t* tmax, uint32_t* const* masks) {
  constexpr size_t T = size_t(kMaxTile<L>);
  for (size_t q = 0; q < nq;) {
    const size_t t = nq - q < T ? nq - q : T;
    accumulate_query_tile<L>(t, blocks, nblocks, M2, luts + q, out + q, tmax + q, masks ? masks + q : nullptr);
    q += t;
  }
}

// the largest block tile <= n (n >= 1), from G down to 1
template <class L, int G = kMaxTile<L>>
ANNVIL_FS_INLINE void accumulate_block_tile(size_t n, const uint8_t* blocks, size_t bb, const uint8_t* lut_q,
                                            uint16_t* out, uint16_t tmax, uint32_t* masks) {
  if constexpr (G > 1) {
    if (n < size_t(G)) return accumulate_block_tile<L, G - 1>(n, blocks, bb, lut_q, out, tmax, masks);
  }
  accumulate_tile<L, 1, G>(blocks, bb, &lut_q, &out, &tmax, &masks);
}

// One query over a few blocks (an IndexQG vertex: its neighbours' codes),
// each LUT register loaded once for a tile of up to kMaxTile blocks; masks
// must be non-null.
template <class L>
void accumulate_blocks(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out,
                       uint16_t tmax, uint32_t* masks) {
  constexpr size_t T = size_t(kMaxTile<L>);
  const size_t bb = M2 * 16;
  while (nblocks > 0) {
    const size_t t = nblocks < T ? nblocks : T;
    accumulate_block_tile<L>(t, blocks, bb, lut_q, out, tmax, masks);
    blocks += t * bb;
    out += 32 * t;
    masks += t;
    nblocks -= t;
  }
}

#undef ANNVIL_FS_INLINE

}  // namespace fastscan
}  // namespace detail
}  // namespace annvil
