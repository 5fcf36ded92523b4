// The Hamming kernel body, written once over the vector ops `V` (its
// popcount64) and compiled by each ISA file (simd/isa.h): hamming_scalar.cpp
// at the baseline (popcount emulated), hamming_avx2.cpp with the POPCNT
// instruction; defines hamming_kernels_<isa>().  Everything else has internal
// linkage, so the compilations never merge.  Codes are read as unaligned 64-bit words (memcpy compiles to plain
// loads).  No AVX-512 file: with no vector popcount in the baseline AVX-512
// set, the AVX2 table (scalar POPCNT) serves that level too.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "distances/hamming.h"
#include "simd/isa.h"

namespace annvil {
namespace {

using V = simd::ANNVIL_ISA::V;

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int pop64(uint64_t v) { return V::popcount64(v); }

inline int distance_any(const uint8_t* a, const uint8_t* b, size_t n) {
  int s = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) s += pop64(load64(a + i) ^ load64(b + i));
  for (; i < n; ++i) s += pop64(uint64_t(a[i] ^ b[i]));
  return s;
}

// W 64-bit words, the query kept in registers
template <int W>
void to_many_words(const uint8_t* q, const uint8_t* codes, size_t n, int32_t* out) {
  uint64_t qw[W];
  for (int w = 0; w < W; ++w) qw[w] = load64(q + 8 * w);
  for (size_t j = 0; j < n; ++j) {
    const uint8_t* c = codes + j * (8 * W);
    int s = 0;
    for (int w = 0; w < W; ++w) s += pop64(qw[w] ^ load64(c + 8 * w));
    out[j] = s;
  }
}

inline void to_many_4(const uint8_t* q, const uint8_t* codes, size_t n, int32_t* out) {
  const uint32_t qw = load32(q);
  for (size_t j = 0; j < n; ++j) out[j] = pop64(uint64_t(qw ^ load32(codes + 4 * j)));
}

inline int distance(const uint8_t* a, const uint8_t* b, size_t n) {
  switch (n) {
    case 4:
      return pop64(uint64_t(load32(a) ^ load32(b)));
    case 8:
      return pop64(load64(a) ^ load64(b));
    case 16:
      return pop64(load64(a) ^ load64(b)) + pop64(load64(a + 8) ^ load64(b + 8));
    case 32:
      return pop64(load64(a) ^ load64(b)) + pop64(load64(a + 8) ^ load64(b + 8)) +
             pop64(load64(a + 16) ^ load64(b + 16)) + pop64(load64(a + 24) ^ load64(b + 24));
    default:
      return distance_any(a, b, n);
  }
}

inline void to_many(const uint8_t* q, const uint8_t* codes, size_t n, size_t code_size, int32_t* out) {
  switch (code_size) {
    case 4:
      to_many_4(q, codes, n, out);
      return;
    case 8:
      to_many_words<1>(q, codes, n, out);
      return;
    case 16:
      to_many_words<2>(q, codes, n, out);
      return;
    case 32:
      to_many_words<4>(q, codes, n, out);
      return;
    case 64:
      to_many_words<8>(q, codes, n, out);
      return;
    default:
      for (size_t j = 0; j < n; ++j) out[j] = distance_any(q, codes + j * code_size, code_size);
  }
}

}  // namespace

const HammingKernels& ANNVIL_ISA_FN(hamming_kernels_)() {
  static const HammingKernels k{&distance, &to_many};
  return k;
}

}  // namespace annvil
