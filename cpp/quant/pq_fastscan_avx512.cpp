// AVX-512BW fast-scan accumulation: the AVX2 scheme (see pq_fastscan_avx2.cpp)
// on 512-bit registers, two sub-quantizer pairs (four LUT lanes) per shuffle;
// an odd number of pairs finishes with one 256-bit step.
#include <immintrin.h>

#include "quant/pq_fastscan.h"

namespace annvil {
namespace detail {

namespace {
inline __m128i fold4(__m512i v) {
  __m256i h = _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  return _mm_add_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}
inline __m128i fold2(__m256i v) { return _mm_add_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)); }

inline uint32_t store16(__m512i A, __m512i B, __m256i A2, __m256i B2, uint16_t* out, __m128i t) {
  __m512i even = _mm512_sub_epi16(A, _mm512_slli_epi16(B, 8));
  __m256i even2 = _mm256_sub_epi16(A2, _mm256_slli_epi16(B2, 8));
  __m128i e = _mm_add_epi16(fold4(even), fold2(even2));
  __m128i o = _mm_add_epi16(fold4(B), fold2(B2));
  __m128i v0 = _mm_unpacklo_epi16(e, o), v1 = _mm_unpackhi_epi16(e, o);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), v1);
  // v <= t  <=>  min(v, t) == v  (unsigned); pack the 16 lane results to bytes for movemask
  __m128i c0 = _mm_cmpeq_epi16(_mm_min_epu16(v0, t), v0);
  __m128i c1 = _mm_cmpeq_epi16(_mm_min_epu16(v1, t), v1);
  return uint32_t(_mm_movemask_epi8(_mm_packs_epi16(c0, c1)));
}
}  // namespace

void pq4_accumulate_avx512(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out,
                         uint16_t tmax, uint32_t* masks) {
  const __m128i t = _mm_set1_epi16(short(tmax));
  const size_t bb = M2 * 16, nquads = M2 / 4;
  const bool tail = (M2 % 4) != 0;
  const __m512i mask = _mm512_set1_epi8(0x0f);
  const __m256i mask2 = _mm256_set1_epi8(0x0f);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * bb;
    __m512i loA = _mm512_setzero_si512(), loB = loA, hiA = loA, hiB = loA;
    for (size_t q = 0; q < nquads; ++q) {
      __m512i c = _mm512_loadu_si512(blk + 64 * q);
      __m512i lut = _mm512_loadu_si512(lut_q + 64 * q);
      __m512i lo = _mm512_and_si512(c, mask);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), mask);
      __m512i rlo = _mm512_shuffle_epi8(lut, lo);
      __m512i rhi = _mm512_shuffle_epi8(lut, hi);
      loA = _mm512_add_epi16(loA, rlo);
      loB = _mm512_add_epi16(loB, _mm512_srli_epi16(rlo, 8));
      hiA = _mm512_add_epi16(hiA, rhi);
      hiB = _mm512_add_epi16(hiB, _mm512_srli_epi16(rhi, 8));
    }
    __m256i loA2 = _mm256_setzero_si256(), loB2 = loA2, hiA2 = loA2, hiB2 = loA2;
    if (tail) {
      __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * nquads));
      __m256i lut = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut_q + 64 * nquads));
      __m256i rlo = _mm256_shuffle_epi8(lut, _mm256_and_si256(c, mask2));
      __m256i rhi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask2));
      loA2 = rlo;
      loB2 = _mm256_srli_epi16(rlo, 8);
      hiA2 = rhi;
      hiB2 = _mm256_srli_epi16(rhi, 8);
    }
    uint32_t mlo = store16(loA, loB, loA2, loB2, out + b * 32, t);
    uint32_t mhi = store16(hiA, hiB, hiA2, hiB2, out + b * 32 + 16, t);
    if (masks) masks[b] = mlo | (mhi << 16);
  }
}

}  // namespace detail
}  // namespace annvil

namespace annvil {
namespace detail {

namespace {
// Q queries share each code load and nibble split.
template <int Q>
void multi512(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* const* luts, uint16_t* const* out,
              const uint16_t* tmax, uint32_t* const* masks) {
  const size_t bb = M2 * 16, nquads = M2 / 4;
  const bool tail = (M2 % 4) != 0;
  const __m512i mask = _mm512_set1_epi8(0x0f);
  const __m256i mask2 = _mm256_set1_epi8(0x0f);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = blocks + b * bb;
    __m512i loA[Q], loB[Q], hiA[Q], hiB[Q];
    for (int q = 0; q < Q; ++q) loA[q] = loB[q] = hiA[q] = hiB[q] = _mm512_setzero_si512();
    for (size_t k = 0; k < nquads; ++k) {
      __m512i c = _mm512_loadu_si512(blk + 64 * k);
      __m512i lo = _mm512_and_si512(c, mask);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), mask);
      for (int q = 0; q < Q; ++q) {
        __m512i lut = _mm512_loadu_si512(luts[q] + 64 * k);
        __m512i rlo = _mm512_shuffle_epi8(lut, lo);
        __m512i rhi = _mm512_shuffle_epi8(lut, hi);
        loA[q] = _mm512_add_epi16(loA[q], rlo);
        loB[q] = _mm512_add_epi16(loB[q], _mm512_srli_epi16(rlo, 8));
        hiA[q] = _mm512_add_epi16(hiA[q], rhi);
        hiB[q] = _mm512_add_epi16(hiB[q], _mm512_srli_epi16(rhi, 8));
      }
    }
    __m256i loA2[Q], loB2[Q], hiA2[Q], hiB2[Q];
    for (int q = 0; q < Q; ++q) loA2[q] = loB2[q] = hiA2[q] = hiB2[q] = _mm256_setzero_si256();
    if (tail) {
      __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * nquads));
      __m256i lo = _mm256_and_si256(c, mask2);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), mask2);
      for (int q = 0; q < Q; ++q) {
        __m256i lut = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(luts[q] + 64 * nquads));
        __m256i rlo = _mm256_shuffle_epi8(lut, lo);
        __m256i rhi = _mm256_shuffle_epi8(lut, hi);
        loA2[q] = rlo;
        loB2[q] = _mm256_srli_epi16(rlo, 8);
        hiA2[q] = rhi;
        hiB2[q] = _mm256_srli_epi16(rhi, 8);
      }
    }
    for (int q = 0; q < Q; ++q) {
      const __m128i t = _mm_set1_epi16(short(tmax[q]));
      uint32_t mlo = store16(loA[q], loB[q], loA2[q], loB2[q], out[q] + b * 32, t);
      uint32_t mhi = store16(hiA[q], hiB[q], hiA2[q], hiB2[q], out[q] + b * 32 + 16, t);
      if (masks) masks[q][b] = mlo | (mhi << 16);
    }
  }
}
}  // namespace

void pq4_accumulate_multi_avx512(const uint8_t* blocks, size_t nblocks, size_t M2, size_t nq,
                                 const uint8_t* const* luts, uint16_t* const* out, const uint16_t* tmax,
                                 uint32_t* const* masks) {
  for (size_t q = 0; q < nq;) {
    size_t left = nq - q;
    uint32_t* const* mk = masks ? masks + q : nullptr;
    if (left >= 4) {
      multi512<4>(blocks, nblocks, M2, luts + q, out + q, tmax + q, mk);
      q += 4;
    } else if (left == 3) {
      multi512<3>(blocks, nblocks, M2, luts + q, out + q, tmax + q, mk);
      q += 3;
    } else if (left == 2) {
      multi512<2>(blocks, nblocks, M2, luts + q, out + q, tmax + q, mk);
      q += 2;
    } else {
      multi512<1>(blocks, nblocks, M2, luts + q, out + q, tmax + q, mk);
      q += 1;
    }
  }
}

}  // namespace detail
}  // namespace annvil
