#include "quant/pq_fastscan.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "simd/dispatch.h"

namespace annvil {

namespace {
inline size_t byte_offset(size_t M, size_t i, size_t m, bool* high) {
  size_t b = i / kPQ4BlockSize, j = i % kPQ4BlockSize;
  *high = j >= 16;
  return b * pq4_block_bytes(M) + (m >> 1) * 32 + (m & 1) * 16 + (j & 15);
}
}  // namespace

uint8_t pq4_get_packed_element(const uint8_t* blocks, size_t M, size_t i, size_t m) {
  bool high;
  uint8_t v = blocks[byte_offset(M, i, m, &high)];
  return high ? uint8_t(v >> 4) : uint8_t(v & 15);
}

void pq4_set_packed_element(uint8_t* blocks, size_t M, size_t i, size_t m, uint8_t code) {
  bool high;
  uint8_t& v = blocks[byte_offset(M, i, m, &high)];
  v = high ? uint8_t((v & 0x0f) | (code << 4)) : uint8_t((v & 0xf0) | (code & 15));
}

void pq4_pack_indices(const uint8_t* idx, size_t n, size_t M, size_t i0, uint8_t* blocks) {
  for (size_t i = 0; i < n; ++i)
    for (size_t m = 0; m < M; ++m) pq4_set_packed_element(blocks, M, i0 + i, m, idx[i * M + m]);
}

void pq4_pack_codes(const uint8_t* codes, size_t n, size_t M, uint8_t* blocks) {
  const size_t cs = (M + 1) / 2;
  std::memset(blocks, 0, pq4_nblocks(n) * pq4_block_bytes(M));
  for (size_t i = 0; i < n; ++i)
    for (size_t m = 0; m < M; ++m) {
      uint8_t byte = codes[i * cs + m / 2];
      pq4_set_packed_element(blocks, M, i, m, (m & 1) ? uint8_t(byte >> 4) : uint8_t(byte & 15));
    }
}

void pq4_unpack_codes(const uint8_t* blocks, size_t M, size_t i0, size_t n, uint8_t* codes) {
  const size_t cs = (M + 1) / 2;
  std::memset(codes, 0, n * cs);
  for (size_t i = 0; i < n; ++i)
    for (size_t m = 0; m < M; ++m) {
      uint8_t c = pq4_get_packed_element(blocks, M, i0 + i, m);
      codes[i * cs + m / 2] |= (m & 1) ? uint8_t(c << 4) : c;
    }
}

void pq4_quantize_luts(const float* luts, size_t nlut, size_t M, QuantizedLUT* out) {
  const size_t M2 = pq4_M2(M);
  std::vector<float> mins(nlut * M);
  float max_span = 0.f;
  double max_sum_span = 0.0;
  for (size_t l = 0; l < nlut; ++l) {
    double sum_span = 0.0, bias = 0.0;
    for (size_t m = 0; m < M; ++m) {
      const float* t = luts + (l * M + m) * 16;
      float lo = *std::min_element(t, t + 16), hi = *std::max_element(t, t + 16);
      mins[l * M + m] = lo;
      bias += lo;
      max_span = std::max(max_span, hi - lo);
      sum_span += double(hi - lo);
    }
    out[l].bias = float(bias);
    max_sum_span = std::max(max_sum_span, sum_span);
  }
  // one scale for all sub-quantizers and LUTs (sums must stay comparable):
  // entries fit in a byte, and any sum of M entries fits in uint16 (each
  // entry may round up by 1/2, hence the M / 2 margin)
  double scale = max_span > 0 ? 255.0 / double(max_span) : 1.0;
  const double sum_cap = 65535.0 - 0.5 * double(M) - 1.0;
  if (max_sum_span * scale > sum_cap) scale = sum_cap / max_sum_span;
  for (size_t l = 0; l < nlut; ++l) {
    out[l].set_scale(float(scale));
    out[l].q.assign(M2 * 16, 0);
    for (size_t m = 0; m < M; ++m)
      for (size_t c = 0; c < 16; ++c) {
        double v = std::nearbyint(double(luts[(l * M + m) * 16 + c] - mins[l * M + m]) * scale);
        out[l].q[m * 16 + c] = uint8_t(std::min(255.0, std::max(0.0, v)));
      }
  }
}

void pq4_quantize_lut(const float* lut, size_t M, QuantizedLUT& out) { pq4_quantize_luts(lut, 1, M, &out); }

namespace {
// NaN entries are ignored, as in Faiss
float tab_min(const float* t, size_t n) {
  float v = HUGE_VALF;
  for (size_t i = 0; i < n; ++i)
    if (t[i] < v) v = t[i];
  return v;
}
float tab_max(const float* t, size_t n) {
  float v = -HUGE_VALF;
  for (size_t i = 0; i < n; ++i)
    if (t[i] > v) v = t[i];
  return v;
}
template <class T>
void round_tab(const float* t, size_t n, float a, float lo, T* out) {
  for (size_t i = 0; i < n; ++i) out[i] = T(std::floor((t[i] - lo) * a + 0.5f));
}
float finite_or_zero(float a) { return std::isfinite(a) ? a : 0.f; }
}  // namespace

void quantize_LUT_and_bias(size_t nprobe, size_t M, size_t ksub, bool lut_is_3d, const float* LUT, const float* bias,
                           uint8_t* LUTq, size_t M2, uint16_t* biasq, float* a_out, float* b_out) {
  ANNVIL_CHECK(M2 >= M, "M2 (", M2, ") must be at least M (", M, ")");
  float a = 0.f, b = 0.f;
  if (!bias || !lut_is_3d) {
    ANNVIL_CHECK(bias || !lut_is_3d, "a 3-D LUT needs a bias");
    std::vector<float> mins(M);
    float span_lut = -HUGE_VALF, span_dis = 0.f, bias_min = 0.f;
    if (bias) {
      bias_min = tab_min(bias, nprobe);
      span_dis = tab_max(bias, nprobe) - bias_min;
    }
    for (size_t m = 0; m < M; ++m) {
      mins[m] = tab_min(LUT + m * ksub, ksub);
      const float span = tab_max(LUT + m * ksub, ksub) - mins[m];
      span_lut = std::max(span_lut, span);
      span_dis += span;
      b += mins[m];
    }
    a = finite_or_zero(
        std::min(span_lut > 0 ? 255.f / span_lut : HUGE_VALF, span_dis > 0 ? 65535.f / span_dis : HUGE_VALF));
    b += bias_min;
    for (size_t m = 0; m < M; ++m) round_tab(LUT + m * ksub, ksub, a, mins[m], LUTq + m * ksub);
    std::memset(LUTq + M * ksub, 0, ksub * (M2 - M));
    if (bias && biasq) round_tab(bias, nprobe, a, bias_min, biasq);
  } else if (biasq) {
    // 3-D LUT, bias kept apart: one scale, each probe's constant part in its bias
    std::vector<float> mins(nprobe * M), bias2(nprobe);
    const float bias_min = tab_min(bias, nprobe);
    float span_lut = -HUGE_VALF, span_dis = -HUGE_VALF;
    b = HUGE_VALF;
    for (size_t j = 0; j < nprobe; ++j) {
      float sd = bias[j] - bias_min, b2 = bias[j];
      for (size_t m = 0; m < M; ++m) {
        const float* t = LUT + (j * M + m) * ksub;
        mins[j * M + m] = tab_min(t, ksub);
        const float span = tab_max(t, ksub) - mins[j * M + m];
        span_lut = std::max(span_lut, span);
        sd += span;
        b2 += mins[j * M + m];
      }
      span_dis = std::max(span_dis, sd);
      bias2[j] = b2;
      b = std::min(b, b2);
    }
    a = finite_or_zero(
        std::min(span_lut > 0 ? 255.f / span_lut : HUGE_VALF, span_dis > 0 ? 65535.f / span_dis : HUGE_VALF));
    for (size_t j = 0; j < nprobe; ++j) {
      for (size_t m = 0; m < M; ++m)
        round_tab(LUT + (j * M + m) * ksub, ksub, a, mins[j * M + m], LUTq + (j * M2 + m) * ksub);
      std::memset(LUTq + (j * M2 + M) * ksub, 0, ksub * (M2 - M));
    }
    round_tab(bias2.data(), nprobe, a, b, biasq);
  } else {
    // 3-D LUT without a bias output: bias / M folded into every row
    std::vector<float> lut2(nprobe * M * ksub);
    for (size_t j = 0; j < nprobe; ++j) {
      const float bj = bias[j] / float(M);
      for (size_t i = 0; i < M * ksub; ++i) lut2[j * M * ksub + i] = LUT[j * M * ksub + i] + bj;
    }
    std::vector<float> mins(M, HUGE_VALF), maxs(M, -HUGE_VALF);
    for (size_t j = 0; j < nprobe; ++j)
      for (size_t m = 0; m < M; ++m) {
        const float* t = lut2.data() + (j * M + m) * ksub;
        mins[m] = std::min(mins[m], tab_min(t, ksub));
        maxs[m] = std::max(maxs[m], tab_max(t, ksub));
      }
    float span = -HUGE_VALF;
    for (size_t m = 0; m < M; ++m) {
      span = std::max(span, maxs[m] - mins[m]);
      b += mins[m];
    }
    a = span > 0 ? 255.f / span : 0.f;
    for (size_t j = 0; j < nprobe; ++j) {
      for (size_t m = 0; m < M; ++m)
        round_tab(lut2.data() + (j * M + m) * ksub, ksub, a, mins[m], LUTq + (j * M2 + m) * ksub);
      std::memset(LUTq + (j * M2 + M) * ksub, 0, ksub * (M2 - M));
    }
  }
  if (a_out) *a_out = a;
  if (b_out) *b_out = b;
}

namespace detail {
const PQ4Kernels& pq4_kernels() {
  static const KernelDispatch<PQ4Kernels> d(&pq4_kernels_scalar(), ANNVIL_ISA_TABLE(pq4_kernels_avx2),
                                            ANNVIL_ISA_TABLE(pq4_kernels_avx512));
  return d.get();
}
}  // namespace detail

void pq4_accumulate_masked(const uint8_t* blocks, size_t nblocks, size_t M, const uint8_t* lut_q, uint16_t* out,
                           uint16_t tmax, uint32_t* masks) {
  detail::pq4_kernels().accumulate(blocks, nblocks, pq4_M2(M), lut_q, out, tmax, masks);
}

void pq4_accumulate_multi(const uint8_t* blocks, size_t nblocks, size_t M, size_t nq, const uint8_t* const* luts,
                          uint16_t* const* out, const uint16_t* tmax, uint32_t* const* masks) {
  detail::pq4_kernels().accumulate_multi(blocks, nblocks, pq4_M2(M), nq, luts, out, tmax, masks);
}

void pq4_accumulate(const uint8_t* blocks, size_t nblocks, size_t M, const uint8_t* lut_q, uint16_t* out) {
  pq4_accumulate_masked(blocks, nblocks, M, lut_q, out, 0xffff, nullptr);
}

}  // namespace annvil
