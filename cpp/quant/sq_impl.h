// Scalar-quantizer kernel bodies (the SQKernels table of sq.h), written once
// over the vector ops `V` and compiled by sq_scalar.cpp, sq_avx2.cpp and
// sq_avx512.cpp, each with its own flags (simd/isa.h: the file includes its
// ops header, defines ANNVIL_ISA and includes this body, which defines
// detail::sq_kernels_<isa>()).  Everything but that accessor has internal
// linkage, so the compilations never merge.
//
// Codes are widened to floats W components at a time (V::loadu8 for bytes,
// V::loadh for halves); the last d % W components go through the partial
// (zero-padded) loads into the same accumulators, so there is no scalar
// remainder loop.  A zero-padded lane adds 0 to every sum here: a_i = b_i = 0
// and c_i = 0 give (0 - 0 * 0)^2 = 0 and 0 * 0 = 0.
//
// Also the one float x half dot product (and L2) of the tree: HNSW's fp16
// storage takes f16_dot / f16_l2 from this table (hnsw_f16_impl.h).
#include "quant/sq.h"
#include "simd/isa.h"

namespace annvil {
namespace {

using V = simd::ANNVIL_ISA::V;

struct LoadU8 {
  static typename V::reg full(const uint8_t* c, size_t p) { return V::loadu8(c + p); }
  static typename V::reg partial(const uint8_t* c, size_t p, size_t r) { return V::loadu8_partial(c + p, r); }
};
struct LoadF16 {
  static typename V::reg full(const uint8_t* c, size_t p) { return V::loadh(reinterpret_cast<const uint16_t*>(c) + p); }
  static typename V::reg partial(const uint8_t* c, size_t p, size_t r) {
    return V::loadh_partial(reinterpret_cast<const uint16_t*>(c) + p, r);
  }
};

// sum_i a_i c_i (DOT) or sum_i (a_i - b_i c_i)^2 (L2 with b; b == nullptr:
// sum_i (a_i - c_i)^2) for one code: two accumulator chains.
template <bool L2, class Load>
inline float one_code(const float* a, const float* b, const uint8_t* c, size_t d) {
  typename V::reg s0 = V::zero(), s1 = V::zero();
  auto step = [&](typename V::reg av, typename V::reg bv, typename V::reg v, typename V::reg& s) {
    if (L2) {
      typename V::reg t = b ? V::fnmadd(bv, v, av) : V::sub(av, v);
      s = V::fmadd(t, t, s);
    } else {
      s = V::fmadd(av, v, s);
    }
  };
  size_t i = 0;
  for (; i + 2 * V::W <= d; i += 2 * V::W) {
    step(V::loadu(a + i), L2 && b ? V::loadu(b + i) : V::zero(), Load::full(c, i), s0);
    step(V::loadu(a + i + V::W), L2 && b ? V::loadu(b + i + V::W) : V::zero(), Load::full(c, i + V::W), s1);
  }
  if (i + V::W <= d) {
    step(V::loadu(a + i), L2 && b ? V::loadu(b + i) : V::zero(), Load::full(c, i), s0);
    i += V::W;
  }
  if (i < d) {
    const size_t r = d - i;
    step(V::load_partial(a + i, r), L2 && b ? V::load_partial(b + i, r) : V::zero(), Load::partial(c, i, r), s1);
  }
  return V::reduce(V::add(s0, s1));
}

float u8_dot(const float* a, const uint8_t* c, size_t d) { return one_code<false, LoadU8>(a, nullptr, c, d); }
float u8_l2(const float* a, const float* b, const uint8_t* c, size_t d) { return one_code<true, LoadU8>(a, b, c, d); }
float f16_dot(const float* q, const uint16_t* h, size_t d) {
  return one_code<false, LoadF16>(q, nullptr, reinterpret_cast<const uint8_t*>(h), d);
}
float f16_l2(const float* q, const uint16_t* h, size_t d) {
  return one_code<true, LoadF16>(q, nullptr, reinterpret_cast<const uint8_t*>(h), d);
}

// Four codes per pass: one accumulator per code (independent FMA chains),
// each query chunk loaded once for the four.
template <bool L2, class Load>
void ny4(const float* a, const float* b, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  auto chunk = [&](const float* x, size_t p, size_t r) {
    return r == V::W ? V::loadu(x + p) : V::load_partial(x + p, r);
  };
  auto code = [&](const uint8_t* cc, size_t p, size_t r) {
    return r == V::W ? Load::full(cc, p) : Load::partial(cc, p, r);
  };
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint8_t* c0 = c + i * stride;
    const uint8_t* c1 = c0 + stride;
    const uint8_t* c2 = c1 + stride;
    const uint8_t* c3 = c2 + stride;
    typename V::reg s0 = V::zero(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t p = 0; p < d; p += V::W) {
      const size_t r = d - p < size_t(V::W) ? d - p : size_t(V::W);
      typename V::reg av = chunk(a, p, r);
      typename V::reg bv = L2 && b ? chunk(b, p, r) : av;
      auto step = [&](const uint8_t* cc, typename V::reg& s) {
        typename V::reg v = code(cc, p, r);
        if (L2) {
          typename V::reg t = b ? V::fnmadd(bv, v, av) : V::sub(av, v);
          s = V::fmadd(t, t, s);
        } else {
          s = V::fmadd(av, v, s);
        }
      };
      step(c0, s0);
      step(c1, s1);
      step(c2, s2);
      step(c3, s3);
    }
    out[i] = V::reduce(s0);
    out[i + 1] = V::reduce(s1);
    out[i + 2] = V::reduce(s2);
    out[i + 3] = V::reduce(s3);
  }
  for (; i < n; ++i) {
    const uint8_t* cc = c + i * stride;
    typename V::reg s = V::zero();
    for (size_t p = 0; p < d; p += V::W) {
      const size_t r = d - p < size_t(V::W) ? d - p : size_t(V::W);
      typename V::reg av = chunk(a, p, r);
      typename V::reg v = code(cc, p, r);
      if (L2) {
        typename V::reg t = b ? V::fnmadd(chunk(b, p, r), v, av) : V::sub(av, v);
        s = V::fmadd(t, t, s);
      } else {
        s = V::fmadd(av, v, s);
      }
    }
    out[i] = V::reduce(s);
  }
}

void u8_dot_ny(const float* a, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<false, LoadU8>(a, nullptr, c, stride, d, n, out);
}
void u8_l2_ny(const float* a, const float* b, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<true, LoadU8>(a, b, c, stride, d, n, out);
}
void f16_dot_ny(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<false, LoadF16>(q, nullptr, c, stride, d, n, out);
}
void f16_l2_ny(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  ny4<true, LoadF16>(q, nullptr, c, stride, d, n, out);
}

void u8_decode(const float* a, const float* b, const uint8_t* c, size_t d, float* out) {
  size_t i = 0;
  for (; i + V::W <= d; i += V::W) V::storeu(out + i, V::fmadd(V::loadu(b + i), V::loadu8(c + i), V::loadu(a + i)));
  if (i < d) {
    const size_t r = d - i;
    typename V::reg v = V::fmadd(V::load_partial(b + i, r), V::loadu8_partial(c + i, r), V::load_partial(a + i, r));
    V::store_partial(out + i, v, r);
  }
}

void f16_decode(const float* a, const uint16_t* h, size_t d, float* out) {
  size_t i = 0;
  for (; i + V::W <= d; i += V::W) {
    typename V::reg v = V::loadh(h + i);
    if (a) v = V::add(v, V::loadu(a + i));
    V::storeu(out + i, v);
  }
  if (i < d) {
    const size_t r = d - i;
    typename V::reg v = V::loadh_partial(h + i, r);
    if (a) v = V::add(v, V::load_partial(a + i, r));
    V::store_partial(out + i, v, r);
  }
}

}  // namespace

const SQKernels& detail::ANNVIL_ISA_FN(sq_kernels_)() {
  static const SQKernels k{u8_dot,   u8_l2,      f16_dot,   f16_l2,    u8_dot_ny,
                           u8_l2_ny, f16_dot_ny, f16_l2_ny, u8_decode, f16_decode};
  return k;
}

}  // namespace annvil
