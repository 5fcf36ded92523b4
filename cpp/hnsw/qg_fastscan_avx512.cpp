// AVX-512BW scan of one IndexQG vertex block: the fast-scan accumulation of
// pq_fastscan_avx512.cpp with the loops swapped, so that each 64-byte LUT
// register (two sub-quantizer pairs) is loaded once and applied to the codes
// of all G 32-neighbour groups of the vertex (G <= 4 accumulates in registers;
// more groups go 4 at a time).  Sums are bit-identical to pq4_accumulate.
#include <immintrin.h>

#include "hnsw/index_qg.h"

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
  __m128i c0 = _mm_cmpeq_epi16(_mm_min_epu16(v0, t), v0);
  __m128i c1 = _mm_cmpeq_epi16(_mm_min_epu16(v1, t), v1);
  return uint32_t(_mm_movemask_epi8(_mm_packs_epi16(c0, c1)));
}

template <int G>
void scan_groups(const uint8_t* blocks, size_t M2, const uint8_t* lut_q, uint16_t* out, uint16_t tmax,
                 uint32_t* masks) {
  const size_t bb = M2 * 16, nquads = M2 / 4;
  const __m512i mask = _mm512_set1_epi8(0x0f);
  __m512i loA[G], loB[G], hiA[G], hiB[G];
  for (int g = 0; g < G; ++g) loA[g] = loB[g] = hiA[g] = hiB[g] = _mm512_setzero_si512();
  for (size_t q = 0; q < nquads; ++q) {
    const __m512i lut = _mm512_loadu_si512(lut_q + 64 * q);
    for (int g = 0; g < G; ++g) {
      const __m512i c = _mm512_loadu_si512(blocks + g * bb + 64 * q);
      const __m512i rlo = _mm512_shuffle_epi8(lut, _mm512_and_si512(c, mask));
      const __m512i rhi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(c, 4), mask));
      loA[g] = _mm512_add_epi16(loA[g], rlo);
      loB[g] = _mm512_add_epi16(loB[g], _mm512_srli_epi16(rlo, 8));
      hiA[g] = _mm512_add_epi16(hiA[g], rhi);
      hiB[g] = _mm512_add_epi16(hiB[g], _mm512_srli_epi16(rhi, 8));
    }
  }
  const __m128i t = _mm_set1_epi16(short(tmax));
  const bool tail = (M2 % 4) != 0;
  for (int g = 0; g < G; ++g) {
    __m256i loA2 = _mm256_setzero_si256(), loB2 = loA2, hiA2 = loA2, hiB2 = loA2;
    if (tail) {
      const __m256i mask2 = _mm256_set1_epi8(0x0f);
      __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks + g * bb + 64 * nquads));
      __m256i lut = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut_q + 64 * nquads));
      __m256i rlo = _mm256_shuffle_epi8(lut, _mm256_and_si256(c, mask2));
      __m256i rhi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask2));
      loA2 = rlo;
      loB2 = _mm256_srli_epi16(rlo, 8);
      hiA2 = rhi;
      hiB2 = _mm256_srli_epi16(rhi, 8);
    }
    uint32_t mlo = store16(loA[g], loB[g], loA2, loB2, out + g * 32, t);
    uint32_t mhi = store16(hiA[g], hiB[g], hiA2, hiB2, out + g * 32 + 16, t);
    masks[g] = mlo | (mhi << 16);
  }
}
}  // namespace

void qg_scan_avx512(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out,
                    uint16_t tmax, uint32_t* masks) {
  const size_t bb = M2 * 16;
  while (nblocks > 0) {
    switch (nblocks) {
      case 1: scan_groups<1>(blocks, M2, lut_q, out, tmax, masks); return;
      case 2: scan_groups<2>(blocks, M2, lut_q, out, tmax, masks); return;
      case 3: scan_groups<3>(blocks, M2, lut_q, out, tmax, masks); return;
      default: scan_groups<4>(blocks, M2, lut_q, out, tmax, masks); break;
    }
    blocks += 4 * bb;
    out += 4 * 32;
    masks += 4;
    nblocks -= 4;
  }
}

}  // namespace detail
}  // namespace annvil
