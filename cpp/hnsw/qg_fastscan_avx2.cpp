// AVX2 scan of one IndexQG vertex block: pq_fastscan_avx2.cpp's accumulation
// with each 32-byte LUT register (one sub-quantizer pair) loaded once for up
// to 2 groups of 32 neighbours (16 ymm registers).  Bit-identical sums.
#include <immintrin.h>

#include "hnsw/index_qg.h"

namespace annvil {
namespace detail {

namespace {
inline uint32_t store16(__m256i A, __m256i B, uint16_t* out, __m128i t) {
  __m256i even = _mm256_sub_epi16(A, _mm256_slli_epi16(B, 8));
  __m128i e = _mm_add_epi16(_mm256_castsi256_si128(even), _mm256_extracti128_si256(even, 1));
  __m128i o = _mm_add_epi16(_mm256_castsi256_si128(B), _mm256_extracti128_si256(B, 1));
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
  const size_t bb = M2 * 16, npairs = M2 / 2;
  const __m256i mask = _mm256_set1_epi8(0x0f);
  __m256i loA[G], loB[G], hiA[G], hiB[G];
  for (int g = 0; g < G; ++g) loA[g] = loB[g] = hiA[g] = hiB[g] = _mm256_setzero_si256();
  for (size_t p = 0; p < npairs; ++p) {
    const __m256i lut = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut_q + 32 * p));
    for (int g = 0; g < G; ++g) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks + g * bb + 32 * p));
      const __m256i rlo = _mm256_shuffle_epi8(lut, _mm256_and_si256(c, mask));
      const __m256i rhi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask));
      loA[g] = _mm256_add_epi16(loA[g], rlo);
      loB[g] = _mm256_add_epi16(loB[g], _mm256_srli_epi16(rlo, 8));
      hiA[g] = _mm256_add_epi16(hiA[g], rhi);
      hiB[g] = _mm256_add_epi16(hiB[g], _mm256_srli_epi16(rhi, 8));
    }
  }
  const __m128i t = _mm_set1_epi16(short(tmax));
  for (int g = 0; g < G; ++g) {
    uint32_t mlo = store16(loA[g], loB[g], out + g * 32, t);
    uint32_t mhi = store16(hiA[g], hiB[g], out + g * 32 + 16, t);
    masks[g] = mlo | (mhi << 16);
  }
}
}  // namespace

void qg_scan_avx2(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out,
                  uint16_t tmax, uint32_t* masks) {
  const size_t bb = M2 * 16;
  while (nblocks > 0) {
    if (nblocks == 1) {
      scan_groups<1>(blocks, M2, lut_q, out, tmax, masks);
      return;
    }
    scan_groups<2>(blocks, M2, lut_q, out, tmax, masks);
    blocks += 2 * bb;
    out += 2 * 32;
    masks += 2;
    nblocks -= 2;
  }
}

}  // namespace detail
}  // namespace annvil
