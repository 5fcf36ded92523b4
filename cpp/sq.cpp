// ScalarQuantizer codec (training, encoding, decoding), portable half
// precision conversion, the scalar kernels and the run-time kernel choice.
#include "sq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "simd.h"

namespace annvil {

// ---- half precision, portable ------------------------------------------------------
namespace {
template <bool kTiesAway>
uint16_t float_to_half_impl(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));  // inf / nan
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to beyond the largest half: inf
  if (ax < 0x38800000u) {  // half subnormal or zero: round |f| * 2^24 to an integer, ties to even
    float af;
    std::memcpy(&af, &ax, 4);
    float s = af * 16777216.f;  // exact (power of two scaling)
    uint32_t v = uint32_t(kTiesAway ? std::round(s) : std::nearbyint(s));
    return uint16_t(sign | v);
  }
  // normal: rebias the exponent and round the mantissa from 23 to 10 bits
  uint32_t e = (ax >> 23) - 127 + 15;
  uint32_t mant = ax & 0x7fffffu;
  uint32_t h = (e << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (kTiesAway || (h & 1u)))) ++h;  // may carry into the exponent
  return uint16_t(sign | h);
}
}  // namespace

uint16_t float_to_half(float f) { return float_to_half_impl<false>(f); }
uint16_t float_to_half_ties_away(float f) { return float_to_half_impl<true>(f); }

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  uint32_t x;
  if (e == 0) {
    if (m == 0) {
      x = sign;
    } else {
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

// ---- scalar kernels -------------------------------------------------------------------
namespace {
float u8_dot_scalar(const float* a, const uint8_t* c, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += a[i] * float(c[i]);
  return s;
}
float u8_l2_scalar(const float* a, const float* b, const uint8_t* c, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) {
    float t = a[i] - b[i] * float(c[i]);
    s += t * t;
  }
  return s;
}
float f16_dot_scalar(const float* q, const uint16_t* h, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += q[i] * half_to_float(h[i]);
  return s;
}
float f16_l2_scalar(const float* q, const uint16_t* h, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) {
    float t = q[i] - half_to_float(h[i]);
    s += t * t;
  }
  return s;
}
void u8_decode_scalar(const float* a, const float* b, const uint8_t* c, size_t d, float* out) {
  for (size_t i = 0; i < d; ++i) out[i] = a[i] + b[i] * float(c[i]);
}
void f16_decode_scalar(const float* a, const uint16_t* h, size_t d, float* out) {
  for (size_t i = 0; i < d; ++i) out[i] = (a ? a[i] : 0.f) + half_to_float(h[i]);
}
void u8_dot_ny_scalar(const float* a, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = u8_dot_scalar(a, c + i * stride, d);
}
void u8_l2_ny_scalar(const float* a, const float* b, const uint8_t* c, size_t stride, size_t d, size_t n,
                     float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = u8_l2_scalar(a, b, c + i * stride, d);
}
void f16_dot_ny_scalar(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = f16_dot_scalar(q, reinterpret_cast<const uint16_t*>(c + i * stride), d);
}
void f16_l2_ny_scalar(const float* q, const uint8_t* c, size_t stride, size_t d, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = f16_l2_scalar(q, reinterpret_cast<const uint16_t*>(c + i * stride), d);
}
const SQKernels kScalar{u8_dot_scalar,    u8_l2_scalar,     f16_dot_scalar,    f16_l2_scalar,
                        u8_dot_ny_scalar, u8_l2_ny_scalar,  f16_dot_ny_scalar, f16_l2_ny_scalar,
                        u8_decode_scalar, f16_decode_scalar};
}  // namespace

const SQKernels& sq_kernels() {
  switch (simd_level()) {
    case SimdLevel::avx512:
      return detail::sq_kernels_avx512();
    case SimdLevel::avx2:
      return detail::sq_kernels_avx2();
    default:
      return kScalar;
  }
}

// ---- the codec ---------------------------------------------------------------------------
ScalarQuantizer::ScalarQuantizer(size_t d_, int qtype_) : d(d_), qtype(qtype_) {
  ANNVIL_CHECK(d_ > 0, "dimension must be positive");
  switch (qtype) {
    case QT_8bit:
    case QT_8bit_uniform:
      code_size = d;
      break;
    case QT_fp16:
      code_size = 2 * d;
      break;
    default:
      ANNVIL_THROW(value, "unsupported scalar quantizer type ", qtype,
                   "; annvil supports QT_8bit (0), QT_8bit_uniform (2) and QT_fp16 (4)");
  }
}

size_t ScalarQuantizer::trained_size() const {
  switch (qtype) {
    case QT_8bit:
      return 2 * d;
    case QT_8bit_uniform:
      return 2;
    default:
      return 0;
  }
}

void ScalarQuantizer::train(size_t n, const float* x) {
  if (!needs_training()) return;
  ANNVIL_CHECK(n > 0, "the scalar quantizer needs at least one training vector");
  if (qtype == QT_8bit) {
    std::vector<float> vmin(d, std::numeric_limits<float>::infinity());
    std::vector<float> vmax(d, -std::numeric_limits<float>::infinity());
    for (size_t i = 0; i < n; ++i)
      for (size_t p = 0; p < d; ++p) {
        float v = x[i * d + p];
        vmin[p] = std::min(vmin[p], v);
        vmax[p] = std::max(vmax[p], v);
      }
    trained.assign(2 * d, 0.f);
    for (size_t p = 0; p < d; ++p) {
      trained[p] = vmin[p];
      trained[d + p] = vmax[p] - vmin[p];
    }
  } else {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (size_t i = 0; i < n * d; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
    trained = {lo, hi - lo};
  }
}

void ScalarQuantizer::compute_codes(const float* x, uint8_t* codes, size_t n) const {
  ANNVIL_CHECK(is_trained(), "the scalar quantizer is not trained");
  if (qtype == QT_fp16) {
    for (size_t i = 0; i < n; ++i) {
      uint16_t* h = reinterpret_cast<uint16_t*>(codes + i * code_size);
      for (size_t p = 0; p < d; ++p) {
        uint16_t v = float_to_half_ties_away(x[i * d + p]);  // Faiss's fp16 codes, byte for byte
        std::memcpy(h + p, &v, 2);
      }
    }
    return;
  }
  const bool uni = qtype == QT_8bit_uniform;
  for (size_t i = 0; i < n; ++i)
    for (size_t p = 0; p < d; ++p) {
      float vmin = uni ? trained[0] : trained[p];
      float vdiff = uni ? trained[1] : trained[d + p];
      float t = 0.f;
      if (vdiff != 0) {
        t = (x[i * d + p] - vmin) / vdiff;
        t = t < 0.f ? 0.f : (t > 1.f ? 1.f : t);  // also maps NaN to 0
        if (!(t >= 0.f)) t = 0.f;
      }
      codes[i * code_size + p] = uint8_t(int(255.f * t));
    }
}

void ScalarQuantizer::decode(const uint8_t* codes, float* x, size_t n) const {
  ANNVIL_CHECK(is_trained(), "the scalar quantizer is not trained");
  if (qtype == QT_fp16) {
    for (size_t i = 0; i < n; ++i)
      for (size_t p = 0; p < d; ++p) {
        uint16_t v;
        std::memcpy(&v, codes + i * code_size + 2 * p, 2);
        x[i * d + p] = half_to_float(v);
      }
    return;
  }
  const bool uni = qtype == QT_8bit_uniform;
  for (size_t i = 0; i < n; ++i)
    for (size_t p = 0; p < d; ++p) {
      float vmin = uni ? trained[0] : trained[p];
      float b = sq8_step(uni ? trained[1] : trained[d + p]);
      x[i * d + p] = vmin + b * (float(codes[i * code_size + p]) + 0.5f);
    }
}

void ScalarQuantizer::decode_fast(size_t n, const uint8_t* codes, size_t stride, const float* offset,
                                  float* out) const {
  ANNVIL_CHECK(is_trained(), "the scalar quantizer is not trained");
  const SQKernels& K = sq_kernels();
  if (qtype == QT_fp16) {
    for (size_t i = 0; i < n; ++i)
      K.f16_decode(offset, reinterpret_cast<const uint16_t*>(codes + i * stride), d, out + i * d);
    return;
  }
  const bool uni = qtype == QT_8bit_uniform;
  std::vector<float> a(d), b(d);
  for (size_t p = 0; p < d; ++p) {
    float vmin = uni ? trained[0] : trained[p];
    b[p] = sq8_step(uni ? trained[1] : trained[d + p]);
    a[p] = vmin + 0.5f * b[p] + (offset ? offset[p] : 0.f);
  }
  for (size_t i = 0; i < n; ++i) K.u8_decode(a.data(), b.data(), codes + i * stride, d, out + i * d);
}

// ---- distances on codes ------------------------------------------------------------------
SQDistanceComputer::SQDistanceComputer(const ScalarQuantizer& s, MetricType metric)
    : sq(&s), l2(metric == METRIC_L2) {
  if (s.qtype == ScalarQuantizer::QT_fp16) {
    q.resize(s.d);
  } else {
    a.resize(s.d);
    b.resize(s.d);
  }
}

void SQDistanceComputer::set_query(const float* x) {
  const size_t d = sq->d;
  if (sq->qtype == ScalarQuantizer::QT_fp16) {
    std::copy(x, x + d, q.begin());
    return;
  }
  const bool uni = sq->qtype == ScalarQuantizer::QT_8bit_uniform;
  const float* t = sq->trained.data();
  double cst = 0;
  for (size_t p = 0; p < d; ++p) {
    float vmin = uni ? t[0] : t[p];
    float bp = sq8_step(uni ? t[1] : t[d + p]);
    if (l2) {
      a[p] = x[p] - vmin - 0.5f * bp;
      b[p] = bp;
    } else {
      a[p] = x[p] * bp;
      cst += double(x[p]) * (vmin + 0.5f * bp);
    }
  }
  c0 = float(cst);
}

float SQDistanceComputer::key(const uint8_t* code) const {
  const SQKernels& K = sq_kernels();
  const size_t d = sq->d;
  if (sq->qtype == ScalarQuantizer::QT_fp16) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(code);
    return l2 ? K.f16_l2(q.data(), h, d) : -(K.f16_dot(q.data(), h, d) + extra);
  }
  return l2 ? K.u8_l2(a.data(), b.data(), code, d) : -(c0 + extra + K.u8_dot(a.data(), code, d));
}

void SQDistanceComputer::keys(size_t n, const uint8_t* codes, size_t stride, float* out) const {
  const SQKernels& K = sq_kernels();
  const size_t d = sq->d;
  if (sq->qtype == ScalarQuantizer::QT_fp16) {
    if (l2) {
      K.f16_l2_ny(q.data(), codes, stride, d, n, out);
    } else {
      K.f16_dot_ny(q.data(), codes, stride, d, n, out);
      for (size_t i = 0; i < n; ++i) out[i] = -(extra + out[i]);
    }
    return;
  }
  if (l2) {
    K.u8_l2_ny(a.data(), b.data(), codes, stride, d, n, out);
  } else {
    K.u8_dot_ny(a.data(), codes, stride, d, n, out);
    for (size_t i = 0; i < n; ++i) out[i] = -(c0 + extra + out[i]);
  }
}

}  // namespace annvil
