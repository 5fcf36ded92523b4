// AVX2 fast-scan accumulation: one 256-bit register holds the LUTs of a pair
// of sub-quantizers (one per 128-bit lane), vpshufb looks up 16 vectors per
// lane.  uint8 results are summed in uint16 without unpacking: adding the
// shuffled bytes as 16-bit words accumulates even + 256 * odd, and a second
// accumulator of the words shifted right by 8 holds the odd sums, so
// even = A - (B << 8) modulo 2^16 (exact while true sums stay below 65536,
// which the LUT scale guarantees).
#include <immintrin.h>

#include "quant/pq_fastscan.h"

namespace annvil {
namespace detail {

namespace {
// lane-reduced, interleaved results of one accumulator pair -> 16 uint16
inline uint32_t store16(__m256i A, __m256i B, uint16_t* out, __m128i t) {
  __m256i even = _mm256_sub_epi16(A, _mm256_slli_epi16(B, 8));
  __m128i e = _mm_add_epi16(_mm256_castsi256_si128(even), _mm256_extracti128_si256(even, 1));
  __m128i o = _mm_add_epi16(_mm256_castsi256_si128(B), _mm256_extracti128_si256(B, 1));
  __m128i v0 = _mm_unpacklo_epi16(e, o), v1 = _mm_unpackhi_epi16(e, o);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), v1);
  // v <= t  <=>  min(v, t) == v  (unsigned); pack the 16 lane results to bytes for movemask
  __m128i c0 = _mm_cmpeq_epi16(_mm_min_epu16(v0, t), v0);
  __m128i c1 = _mm_cmpeq_epi16(_mm_min_epu16(v1, t), v1);
  return uint32_t(_mm_movemask_epi8(_mm_packs_epi16(c0, c1)));
}
}  // namespace

void pq4_accumulate_avx2(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out,
                         uint16_t tmax, uint32_t* masks) {
  const __m128i t = _mm_set1_epi16(short(tmax));
  const size_t bb = M2 * 16, npairs = M2 / 2;
  const __m256i mask = _mm256_set1_epi8(0x0f);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * bb;
    __m256i loA = _mm256_setzero_si256(), loB = loA, hiA = loA, hiB = loA;
    for (size_t p = 0; p < npairs; ++p) {
      __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * p));
      __m256i lut = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut_q + 32 * p));
      __m256i lo = _mm256_and_si256(c, mask);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), mask);
      __m256i rlo = _mm256_shuffle_epi8(lut, lo);
      __m256i rhi = _mm256_shuffle_epi8(lut, hi);
      loA = _mm256_add_epi16(loA, rlo);
      loB = _mm256_add_epi16(loB, _mm256_srli_epi16(rlo, 8));
      hiA = _mm256_add_epi16(hiA, rhi);
      hiB = _mm256_add_epi16(hiB, _mm256_srli_epi16(rhi, 8));
    }
    uint32_t mlo = store16(loA, loB, out + b * 32, t);
    uint32_t mhi = store16(hiA, hiB, out + b * 32 + 16, t);
    if (masks) masks[b] = mlo | (mhi << 16);
  }
}

}  // namespace detail
}  // namespace annvil

namespace annvil {
namespace detail {

namespace {
// Q queries share each code load and nibble split (Q <= 2: 16 ymm registers).
template <int Q>
void multi256(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* const* luts, uint16_t* const* out,
              const uint16_t* tmax, uint32_t* const* masks) {
  const size_t bb = M2 * 16, npairs = M2 / 2;
  const __m256i mask = _mm256_set1_epi8(0x0f);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * bb;
    __m256i loA[Q], loB[Q], hiA[Q], hiB[Q];
    for (int q = 0; q < Q; ++q) loA[q] = loB[q] = hiA[q] = hiB[q] = _mm256_setzero_si256();
    for (size_t p = 0; p < npairs; ++p) {
      __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * p));
      __m256i lo = _mm256_and_si256(c, mask);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), mask);
      for (int q = 0; q < Q; ++q) {
        __m256i lut = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(luts[q] + 32 * p));
        __m256i rlo = _mm256_shuffle_epi8(lut, lo);
        __m256i rhi = _mm256_shuffle_epi8(lut, hi);
        loA[q] = _mm256_add_epi16(loA[q], rlo);
        loB[q] = _mm256_add_epi16(loB[q], _mm256_srli_epi16(rlo, 8));
        hiA[q] = _mm256_add_epi16(hiA[q], rhi);
        hiB[q] = _mm256_add_epi16(hiB[q], _mm256_srli_epi16(rhi, 8));
      }
    }
    for (int q = 0; q < Q; ++q) {
      const __m128i t = _mm_set1_epi16(short(tmax[q]));
      uint32_t mlo = store16(loA[q], loB[q], out[q] + b * 32, t);
      uint32_t mhi = store16(hiA[q], hiB[q], out[q] + b * 32 + 16, t);
      if (masks) masks[q][b] = mlo | (mhi << 16);
    }
  }
}
}  // namespace

void pq4_accumulate_multi_avx2(const uint8_t* blocks, size_t nblocks, size_t M2, size_t nq, const uint8_t* const* luts,
                               uint16_t* const* out, const uint16_t* tmax, uint32_t* const* masks) {
  for (size_t q = 0; q < nq;) {
    uint32_t* const* mk = masks ? masks + q : nullptr;
    if (nq - q >= 2) {
      multi256<2>(blocks, nblocks, M2, luts + q, out + q, tmax + q, mk);
      q += 2;
    } else {
      multi256<1>(blocks, nblocks, M2, luts + q, out + q, tmax + q, mk);
      q += 1;
    }
  }
}

}  // namespace detail
}  // namespace annvil
