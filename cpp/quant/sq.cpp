// ScalarQuantizer codec (training, encoding, decoding), the query tables of
// the distance computers and the run-time kernel choice (the kernels are
// sq_impl.h, compiled by sq_scalar.cpp / sq_avx2.cpp / sq_avx512.cpp).
#include "quant/sq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "distances/distances.h"
#include "simd/dispatch.h"

namespace annvil {

// half precision: the portable converter is simd/ops_scalar.h's (via sq.h)

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return uint16_t((x + 0x8000u) >> 16);
}

float bf16_to_float(uint16_t h) {
  uint32_t x = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// ---- the kernel table of the active level -----------------------------------------------
const SQKernels& sq_kernels() {
  static const KernelDispatch<SQKernels> d(&detail::sq_kernels_scalar(), ANNVIL_ISA_TABLE(detail::sq_kernels_avx2),
                                           ANNVIL_ISA_TABLE(detail::sq_kernels_avx512));
  return d.get();
}

// ---- the codec ---------------------------------------------------------------------------
ScalarQuantizer::ScalarQuantizer(size_t d_, int qtype_) : d(d_), qtype(qtype_) {
  ANNVIL_CHECK(d_ > 0, "dimension must be positive");
  ANNVIL_CHECK(valid_qtype(qtype), "unsupported scalar quantizer type ", qtype,
               "; annvil supports QT_8bit (0), QT_4bit (1), QT_8bit_uniform (2), QT_4bit_uniform (3), QT_fp16 (4), "
               "QT_8bit_direct (5), QT_6bit (6), QT_bf16 (7) and QT_8bit_direct_signed (8)");
  switch (kind()) {
    case Kind::u8:
      code_size = d;
      break;
    case Kind::u4:
      code_size = (d + 1) / 2;
      break;
    case Kind::u6:
      code_size = (d * 6 + 7) / 8;
      break;
    case Kind::f16:
    case Kind::bf16:
      code_size = 2 * d;
      break;
  }
}

ScalarQuantizer::Kind ScalarQuantizer::kind() const {
  switch (qtype) {
    case QT_4bit:
    case QT_4bit_uniform:
      return Kind::u4;
    case QT_6bit:
      return Kind::u6;
    case QT_fp16:
      return Kind::f16;
    case QT_bf16:
      return Kind::bf16;
    default:
      return Kind::u8;
  }
}

int ScalarQuantizer::levels() const {
  switch (qtype) {
    case QT_8bit:
    case QT_8bit_uniform:
      return 255;
    case QT_4bit:
    case QT_4bit_uniform:
      return 15;
    case QT_6bit:
      return 63;
    default:
      return 0;
  }
}

size_t ScalarQuantizer::trained_size() const { return needs_training() ? (uniform() ? 2 : 2 * d) : 0; }

void ScalarQuantizer::train(size_t n, const float* x) {
  if (!needs_training()) return;
  ANNVIL_CHECK(n > 0, "the scalar quantizer needs at least one training vector");
  if (!uniform()) {
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

namespace {
// component i of a packed code: 4 bits (low nibble first) or 6 bits (four in 3 bytes)
inline void put_u4(uint8_t* code, size_t i, int c) { code[i / 2] |= uint8_t(c << ((i & 1) << 2)); }
inline int get_u4(const uint8_t* code, size_t i) { return (code[i / 2] >> ((i & 1) << 2)) & 0xf; }
inline void put_u6(uint8_t* code, size_t i, int c) {
  uint8_t* g = code + (i >> 2) * 3;
  switch (i & 3) {
    case 0:
      g[0] |= uint8_t(c);
      break;
    case 1:
      g[0] |= uint8_t(c << 6);
      g[1] |= uint8_t(c >> 2);
      break;
    case 2:
      g[1] |= uint8_t(c << 4);
      g[2] |= uint8_t(c >> 4);
      break;
    default:
      g[2] |= uint8_t(c << 2);
      break;
  }
}
inline int get_u6(const uint8_t* code, size_t i) {
  const uint8_t* g = code + (i >> 2) * 3;
  switch (i & 3) {
    case 0:
      return g[0] & 0x3f;
    case 1:
      return (g[0] >> 6) | ((g[1] & 0xf) << 2);
    case 2:
      return (g[1] >> 4) | ((g[2] & 3) << 4);
    default:
      return g[2] >> 2;
  }
}
inline uint8_t saturate_u8(float v) {
  // the integer part, as Faiss's (unsigned char) cast for values in range;
  // values outside [0, 256) saturate instead of wrapping
  return v <= 0.f ? uint8_t(0) : v >= 255.f ? uint8_t(255) : uint8_t(int(v));
}
}  // namespace

void ScalarQuantizer::compute_codes(const float* x, uint8_t* codes, size_t n) const {
  if (!is_trained()) ANNVIL_THROW(not_trained, "ScalarQuantizer is not trained: call train(x) first");
  const Kind k = kind();
  for (size_t i = 0; i < n; ++i) {
    const float* xi = x + i * d;
    uint8_t* code = codes + i * code_size;
    switch (qtype) {
      case QT_fp16:
        for (size_t p = 0; p < d; ++p) {
          uint16_t v = float_to_half(xi[p]);
          std::memcpy(code + 2 * p, &v, 2);
        }
        continue;
      case QT_bf16:
        for (size_t p = 0; p < d; ++p) {
          uint16_t v = float_to_bf16(xi[p]);
          std::memcpy(code + 2 * p, &v, 2);
        }
        continue;
      case QT_8bit_direct:
        for (size_t p = 0; p < d; ++p) code[p] = saturate_u8(xi[p]);
        continue;
      case QT_8bit_direct_signed:
        for (size_t p = 0; p < d; ++p) code[p] = saturate_u8(xi[p] + 128.f);
        continue;
      default:
        break;
    }
    // trained integer types, with Faiss's arithmetic (the codes must agree
    // bit for bit): t = (x - vmin) / vdiff in float, clamped to [0, 1], then
    // truncated L * t (8 bits: float product; 4 and 6 bits: double product)
    std::memset(code, 0, code_size);
    const bool uni = uniform();
    for (size_t p = 0; p < d; ++p) {
      const float vmin = uni ? trained[0] : trained[p];
      const float vdiff = uni ? trained[1] : trained[d + p];
      float t = 0;
      if (vdiff != 0) t = (xi[p] - vmin) / vdiff;
      if (t < 0) t = 0;
      if (t > 1.0f) t = 1.0f;
      if (k == Kind::u8)
        code[p] = uint8_t(int(255 * t));
      else if (k == Kind::u4)
        put_u4(code, p, int(t * 15.0));
      else
        put_u6(code, p, int(t * 63.0));
    }
  }
}

void ScalarQuantizer::unpack(const uint8_t* code, uint8_t* out) const {
  switch (kind()) {
    case Kind::u4:
      for (size_t p = 0; p < d; ++p) out[p] = uint8_t(get_u4(code, p));
      break;
    case Kind::u6:
      for (size_t p = 0; p < d; ++p) out[p] = uint8_t(get_u6(code, p));
      break;
    case Kind::u8:
      std::memcpy(out, code, d);
      break;
    default:
      ANNVIL_THROW(runtime, "unpack: not an integer scalar quantizer type");
  }
}

void ScalarQuantizer::affine(float* off, float* scale) const {
  if (qtype == QT_8bit_direct || qtype == QT_8bit_direct_signed) {
    for (size_t p = 0; p < d; ++p) {
      off[p] = qtype == QT_8bit_direct ? 0.f : -128.f;
      scale[p] = 1.f;
    }
    return;
  }
  ANNVIL_CHECK(needs_training() && trained.size() == trained_size(), "the scalar quantizer is not trained");
  const bool uni = uniform();
  const float inv = 1.f / float(levels());
  for (size_t p = 0; p < d; ++p) {
    const float vmin = uni ? trained[0] : trained[p];
    scale[p] = (uni ? trained[1] : trained[d + p]) * inv;
    off[p] = vmin + 0.5f * scale[p];
  }
}

void ScalarQuantizer::decode(const uint8_t* codes, float* x, size_t n) const {
  if (!is_trained()) ANNVIL_THROW(not_trained, "ScalarQuantizer is not trained: call train(x) first");
  const Kind k = kind();
  const bool uni = uniform();
  const float L = float(levels());
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* code = codes + i * code_size;
    float* xi = x + i * d;
    for (size_t p = 0; p < d; ++p) {
      uint16_t h;
      switch (qtype) {
        case QT_fp16:
          std::memcpy(&h, code + 2 * p, 2);
          xi[p] = half_to_float(h);
          continue;
        case QT_bf16:
          std::memcpy(&h, code + 2 * p, 2);
          xi[p] = bf16_to_float(h);
          continue;
        case QT_8bit_direct:
          xi[p] = float(code[p]);
          continue;
        case QT_8bit_direct_signed:
          xi[p] = float(int(code[p]) - 128);
          continue;
        default:
          break;
      }
      const int c = k == Kind::u8 ? code[p] : k == Kind::u4 ? get_u4(code, p) : get_u6(code, p);
      const float vmin = uni ? trained[0] : trained[p];
      const float vdiff = uni ? trained[1] : trained[d + p];
      const float t = (float(c) + 0.5f) / L;
      xi[p] = vmin + t * vdiff;
    }
  }
}

void ScalarQuantizer::decode_fast(size_t n, const uint8_t* codes, size_t stride, const float* offset,
                                  float* out) const {
  if (!is_trained()) ANNVIL_THROW(not_trained, "ScalarQuantizer is not trained: call train(x) first");
  const SQKernels& K = sq_kernels();
  const Kind k = kind();
  if (k == Kind::f16) {
    for (size_t i = 0; i < n; ++i)
      K.f16_decode(offset, reinterpret_cast<const uint16_t*>(codes + i * stride), d, out + i * d);
    return;
  }
  if (k == Kind::bf16) {
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* c = codes + i * stride;
      for (size_t p = 0; p < d; ++p) {
        uint16_t h;
        std::memcpy(&h, c + 2 * p, 2);
        out[i * d + p] = bf16_to_float(h) + (offset ? offset[p] : 0.f);
      }
    }
    return;
  }
  std::vector<float> a(d), b(d);
  affine(a.data(), b.data());
  if (offset)
    for (size_t p = 0; p < d; ++p) a[p] += offset[p];
  std::vector<uint8_t> u(k == Kind::u8 ? 0 : d);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * stride;
    if (k != Kind::u8) {
      unpack(c, u.data());
      c = u.data();
    }
    K.u8_decode(a.data(), b.data(), c, d, out + i * d);
  }
}

// ---- distances on codes ------------------------------------------------------------------
SQDistanceComputer::SQDistanceComputer(const ScalarQuantizer& s, MetricType metric)
    : sq(&s), l2(metric == METRIC_L2), kind(s.kind()) {
  if (kind == ScalarQuantizer::Kind::f16 || kind == ScalarQuantizer::Kind::bf16) {
    q.resize(s.d);
  } else {
    a.resize(s.d);
    b.resize(s.d);
    off.resize(s.d);
    scale.resize(s.d);
    s.affine(off.data(), scale.data());
    b = scale;  // the L2 kernel's b_i = scale_i, the same for every query
  }
}

float sq_query_tables(size_t d, const float* off, const float* scale, bool l2, const float* x, float* a) {
  if (l2) {
    for (size_t p = 0; p < d; ++p) a[p] = x[p] - off[p];
    return 0.f;
  }
  double cst = 0;
  for (size_t p = 0; p < d; ++p) {
    a[p] = x[p] * scale[p];
    cst += double(x[p]) * off[p];
  }
  return float(cst);
}

void SQDistanceComputer::set_query(const float* x) {
  const size_t d = sq->d;
  if (!q.empty()) {
    std::copy(x, x + d, q.begin());
    return;
  }
  c0 = sq_query_tables(d, off.data(), scale.data(), l2, x, a.data());
}

namespace {
constexpr size_t kUnpackBlock = 64;  // codes unpacked / widened at a time

void widen_bf16(const uint8_t* c, size_t d, float* out) {
  for (size_t p = 0; p < d; ++p) {
    uint16_t h;
    std::memcpy(&h, c + 2 * p, 2);
    out[p] = bf16_to_float(h);
  }
}
}  // namespace

float SQDistanceComputer::key(const uint8_t* code) const {
  const SQKernels& K = sq_kernels();
  const size_t d = sq->d;
  switch (kind) {
    case ScalarQuantizer::Kind::f16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(code);
      return l2 ? K.f16_l2(q.data(), h, d) : -(K.f16_dot(q.data(), h, d) + extra);
    }
    case ScalarQuantizer::Kind::bf16: {
      fbuf.resize(d);
      widen_bf16(code, d, fbuf.data());
      return l2 ? annvil::l2sqr(q.data(), fbuf.data(), d) : -(annvil::inner_product(q.data(), fbuf.data(), d) + extra);
    }
    case ScalarQuantizer::Kind::u4:
    case ScalarQuantizer::Kind::u6:
      ubuf.resize(d);
      sq->unpack(code, ubuf.data());
      code = ubuf.data();
      break;
    default:
      break;
  }
  return l2 ? K.u8_l2(a.data(), b.data(), code, d) : -(c0 + extra + K.u8_dot(a.data(), code, d));
}

void SQDistanceComputer::keys(size_t n, const uint8_t* codes, size_t stride, float* out) const {
  const SQKernels& K = sq_kernels();
  const size_t d = sq->d;
  if (kind == ScalarQuantizer::Kind::f16) {
    if (l2) {
      K.f16_l2_ny(q.data(), codes, stride, d, n, out);
    } else {
      K.f16_dot_ny(q.data(), codes, stride, d, n, out);
      for (size_t i = 0; i < n; ++i) out[i] = -(extra + out[i]);
    }
    return;
  }
  if (kind == ScalarQuantizer::Kind::bf16) {
    const Kernels& FK = kernels();
    fbuf.resize(kUnpackBlock * d);
    for (size_t i0 = 0; i0 < n; i0 += kUnpackBlock) {
      const size_t m = std::min(kUnpackBlock, n - i0);
      for (size_t i = 0; i < m; ++i) widen_bf16(codes + (i0 + i) * stride, d, fbuf.data() + i * d);
      if (l2) {
        FK.l2sqr_ny(q.data(), fbuf.data(), d, m, out + i0);
      } else {
        FK.inner_product_ny(q.data(), fbuf.data(), d, m, out + i0);
        for (size_t i = 0; i < m; ++i) out[i0 + i] = -(extra + out[i0 + i]);
      }
    }
    return;
  }
  auto run = [&](const uint8_t* c, size_t cs, size_t m, float* o) {
    if (l2) {
      K.u8_l2_ny(a.data(), b.data(), c, cs, d, m, o);
    } else {
      K.u8_dot_ny(a.data(), c, cs, d, m, o);
      for (size_t i = 0; i < m; ++i) o[i] = -(c0 + extra + o[i]);
    }
  };
  if (kind == ScalarQuantizer::Kind::u8) {
    run(codes, stride, n, out);
    return;
  }
  ubuf.resize(kUnpackBlock * d);
  for (size_t i0 = 0; i0 < n; i0 += kUnpackBlock) {
    const size_t m = std::min(kUnpackBlock, n - i0);
    for (size_t i = 0; i < m; ++i) sq->unpack(codes + (i0 + i) * stride, ubuf.data() + i * d);
    run(ubuf.data(), d, m, out + i0);
  }
}

}  // namespace annvil
