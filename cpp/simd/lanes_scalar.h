// Integer SIMD lanes, portable emulation: the register of lanes_avx2.h (32
// bytes = two 128-bit lanes) as a plain array, each op the lane-wise C++ of
// the instruction it stands for, so the fast-scan bodies (quant/pq_fastscan_impl.h)
// compile unchanged for the scalar level and give bit-identical sums.
//
// Vocabulary (the same in lanes_avx2.h and lanes_avx512.h):
//   U8x    byte lanes of one register: load, splat, and, per-128-bit-lane
//          byte shuffle (pshufb: the 4-bit LUT look-up)
//   U16x   the same register as uint16 lanes: wrapping add / sub, shifts,
//          and the fold of the 128-bit lanes into one U16x8
//   U16x8  8 uint16 lanes (128 bits): interleave, store, the <= threshold mask
//   IntLanes  the three types, the register width and the register count
//          (the kernels size their register tiles from it)
// Names are distinct from the float vocabulary of ops_<isa>.h, which shares
// these namespaces.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace annvil {
namespace simd {
namespace scalar {

struct U8x {
  struct reg {
    uint8_t b[32];
  };
  static constexpr size_t kBytes = 32;
  static reg load(const uint8_t* p) {
    reg r;
    std::memcpy(r.b, p, kBytes);
    return r;
  }
  static reg splat(uint8_t v) {
    reg r;
    std::memset(r.b, v, kBytes);
    return r;
  }
  static reg bit_and(reg a, reg b) {
    for (size_t i = 0; i < kBytes; ++i) a.b[i] &= b.b[i];
    return a;
  }
  // per 16-byte lane: r[i] = idx[i] & 0x80 ? 0 : lut[lane base + (idx[i] & 15)]
  static reg shuffle(reg lut, reg idx) {
    reg r;
    for (size_t i = 0; i < kBytes; ++i)
      r.b[i] = (idx.b[i] & 0x80) ? uint8_t(0) : lut.b[(i & ~size_t(15)) + (idx.b[i] & 15)];
    return r;
  }
};

struct U16x8 {
  struct reg {
    uint16_t w[8];
  };
  static reg splat(uint16_t v) {
    reg r;
    for (size_t i = 0; i < 8; ++i) r.w[i] = v;
    return r;
  }
  // (a0, b0, a1, b1, a2, b2, a3, b3) and the same for lanes 4..7
  static reg interleave_lo(reg a, reg b) {
    reg r;
    for (size_t i = 0; i < 4; ++i) {
      r.w[2 * i] = a.w[i];
      r.w[2 * i + 1] = b.w[i];
    }
    return r;
  }
  static reg interleave_hi(reg a, reg b) {
    reg r;
    for (size_t i = 0; i < 4; ++i) {
      r.w[2 * i] = a.w[i + 4];
      r.w[2 * i + 1] = b.w[i + 4];
    }
    return r;
  }
  static void store(uint16_t* p, reg v) { std::memcpy(p, v.w, sizeof v.w); }
  // bit i set when lane i of (a, b) (a: lanes 0..7, b: 8..15) is <= t's lane
  static uint32_t le_mask(reg a, reg b, reg t) {
    uint32_t m = 0;
    for (size_t i = 0; i < 8; ++i) m |= uint32_t(a.w[i] <= t.w[i]) << i | uint32_t(b.w[i] <= t.w[i]) << (i + 8);
    return m;
  }
};

// uint16 lanes over U8x::reg: word i is bytes 2i (low) and 2i + 1 (high), as on x86
struct U16x {
  using reg = U8x::reg;
  static constexpr size_t kLanes = 16;
  static uint16_t get(const reg& r, size_t i) { return uint16_t(r.b[2 * i] | (r.b[2 * i + 1] << 8)); }
  static void put(reg& r, size_t i, uint16_t v) {
    r.b[2 * i] = uint8_t(v);
    r.b[2 * i + 1] = uint8_t(v >> 8);
  }
  static reg zero() { return U8x::splat(0); }
  static reg add(reg a, reg b) {
    for (size_t i = 0; i < kLanes; ++i) put(a, i, uint16_t(get(a, i) + get(b, i)));
    return a;
  }
  static reg sub(reg a, reg b) {
    for (size_t i = 0; i < kLanes; ++i) put(a, i, uint16_t(get(a, i) - get(b, i)));
    return a;
  }
  template <int S>
  static reg srli(reg a) {
    for (size_t i = 0; i < kLanes; ++i) put(a, i, uint16_t(get(a, i) >> S));
    return a;
  }
  template <int S>
  static reg slli(reg a) {
    for (size_t i = 0; i < kLanes; ++i) put(a, i, uint16_t(get(a, i) << S));
    return a;
  }
  // the sum (wrapping) of the 128-bit lanes of a U16x register
  static U16x8::reg fold(const reg& v) {
    U16x8::reg r;
    for (size_t i = 0; i < 8; ++i) r.w[i] = uint16_t(get(v, i) + get(v, i + 8));
    return r;
  }
};

struct IntLanes {
  using U8 = U8x;
  using U16 = U16x;
  using U16h = U16x8;
  static constexpr size_t kBytes = U8x::kBytes;
  // registers the kernels may tile over (the compiler keeps these arrays in
  // memory anyway): one query and one block at a time
  static constexpr int kRegisters = 8;
};

}  // namespace scalar
}  // namespace simd
}  // namespace annvil
