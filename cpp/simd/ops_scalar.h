// Portable vector ops (one float lane) and the tree's one portable fp16
// converter.  The kernel bodies (distances_impl.h, distances_extra_impl.h,
// sq_impl.h, hnsw_f16_impl.h, hamming_impl.h) are written against the ops
// struct `V`; ops_avx2.h and ops_avx512.h define the same names for wider
// registers.  The integer lanes of the 4-bit LUT kernels are in lanes_scalar.h.
//
// Everything here has internal linkage (anonymous namespaces): a translation
// unit compiled with AVX flags that includes this header must never lend its
// copy of an inline function to baseline code.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace annvil {
namespace {

// ---- IEEE half precision, portable --------------------------------------------------
// exact (every half is a float)
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  uint32_t x;
  if (e == 0) {
    if (m == 0) {
      x = sign;
    } else {  // subnormal: m * 2^-24
      float v = float(m) / 16777216.f;
      std::memcpy(&x, &v, 4);
      x |= sign;
    }
  } else if (e == 31) {
    x = sign | 0x7f800000u | (m << 13);
  } else {
    x = sign | ((e - 15 + 127) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// rounded half up in magnitude (as Faiss's encode_fp16), saturating to inf
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));  // inf / nan
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to beyond the largest half: inf
  if (ax < 0x38800000u) {  // half subnormal or zero: round |f| * 2^24 to an integer, ties up
    float af;
    std::memcpy(&af, &ax, 4);
    float s = af * 16777216.f;  // exact (power of two scaling)
    uint32_t v = uint32_t(std::floor(double(s) + 0.5));
    return uint16_t(sign | v);
  }
  // normal: rebias the exponent and round the mantissa from 23 to 10 bits
  uint32_t e = (ax >> 23) - 127 + 15;
  uint32_t mant = ax & 0x7fffffu;
  uint32_t h = (e << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  // ties round up in magnitude, as Faiss's SQ encoder does (not to even), so
  // that codes match Faiss's byte for byte; a carry into the exponent is right
  if (rest >= 0x1000u) ++h;
  return uint16_t(sign | h);
}

// exact float -> half, or false when v has no exact half representation
inline bool float_to_half_exact(float v, uint16_t* out) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  const uint32_t sign = (b >> 31) << 15, exp = (b >> 23) & 0xffu, man = b & 0x7fffffu;
  if (exp == 0 && man == 0) {
    *out = uint16_t(sign);
    return true;
  }
  if (exp == 0 || exp == 255) return false;  // float subnormals, inf, nan
  const int e = int(exp) - 127;
  if (e > 15 || e < -24) return false;
  if (e >= -14) {  // normal half: the 13 low mantissa bits must be zero
    if (man & 0x1fffu) return false;
    *out = uint16_t(sign | uint32_t(e + 15) << 10 | (man >> 13));
    return true;
  }
  // subnormal half: value = m * 2^-24 with m = (1.man) * 2^(e + 24) an integer
  const uint32_t full = 0x800000u | man;
  const int shift = -(e + 1);  // 14 .. 23
  if (full & ((1u << shift) - 1)) return false;
  *out = uint16_t(sign | (full >> shift));
  return true;
}

}  // namespace

namespace simd {
namespace scalar {
namespace {

struct V {
  using reg = float;
  using ireg = int32_t;
  static constexpr int W = 1;
  // float lanes
  static reg zero() { return 0.f; }
  static reg load(const float* p) { return *p; }
  static reg loadu(const float* p) { return *p; }
  static reg load_partial(const float* p, size_t n) { return n ? *p : 0.f; }  // lanes >= n are zero
  static reg set1(float v) { return v; }
  static void store(float* p, reg v) { *p = v; }
  static void storeu(float* p, reg v) { *p = v; }
  static void store_partial(float* p, reg v, size_t n) {
    if (n) *p = v;
  }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg div(reg a, reg b) { return a / b; }
  static reg fmadd(reg a, reg b, reg c) { return a * b + c; }   // a * b + c
  static reg fnmadd(reg a, reg b, reg c) { return c - a * b; }  // c - a * b
  static reg abs(reg a) { return std::fabs(a); }
  static reg max(reg a, reg b) { return std::fmax(a, b); }
  static reg min(reg a, reg b) { return std::fmin(a, b); }
  static float reduce(reg v) { return v; }
  static float reduce_max(reg v) { return v; }
  static float reduce_min(reg v) { return v; }
  static void store_u16(uint16_t* p, reg v) { *p = uint16_t(int32_t(v)); }  // truncated; v in [0, 65535]
  static uint32_t lt_mask(reg a, reg b) { return a < b ? 1u : 0u; }
  static ireg iset1(int v) { return v; }
  static void istoreu(int32_t* p, ireg v) { *p = v; }
  static ireg iota() { return 0; }
  static ireg iadd(ireg a, ireg b) { return a + b; }
  static void update_min(reg& best, ireg& idx, reg cand, ireg cidx) {
    if (cand < best) {
      best = cand;
      idx = cidx;
    }
  }
  // widening loads: W bytes / W halves to floats
  static reg loadu8(const uint8_t* c) { return float(*c); }
  static reg loadu8_partial(const uint8_t* c, size_t n) { return n ? float(*c) : 0.f; }
  static reg loadh(const uint16_t* h) { return annvil::half_to_float(*h); }
  static reg loadh_partial(const uint16_t* h, size_t n) { return n ? annvil::half_to_float(*h) : 0.f; }
  // one lane of fp16
  static float half_to_float(uint16_t h) { return annvil::half_to_float(h); }
  static bool float_to_half_exact(float f, uint16_t* out) { return annvil::float_to_half_exact(f, out); }
  // W floats to halves; false (out untouched) unless every one is exact
  static bool store_half_exact(const float* x, uint16_t* out) { return annvil::float_to_half_exact(*x, out); }
  // popcount (the baseline has no POPCNT instruction: the compiler emulates it)
  static int popcount64(uint64_t v) { return __builtin_popcountll(v); }
};

}  // namespace
}  // namespace scalar
}  // namespace simd
}  // namespace annvil
