// Portable reference kernels (compiled for baseline x86-64 / any CPU).
// Also the oracle the SIMD levels are tested against.  The plain distances and
// the panel kernels keep their own reference loops (four accumulators, NR = 8,
// MR = 4: a one-lane V would serialise them); the extra metrics share the
// bodies of distances_extra_impl.h over simd/ops_scalar.h.
#include <cmath>
#include <limits>
#include <cstring>

#include "distances/distances.h"
#include "simd/ops_scalar.h"

namespace annvil {
namespace {

constexpr int NR = 8;  // queries per panel
constexpr int MR = 4;  // base rows per micro-block

float l2sqr_ref(const float* x, const float* y, size_t d) {
  float acc[4] = {0, 0, 0, 0};
  size_t p = 0;
  for (; p + 4 <= d; p += 4)
    for (int u = 0; u < 4; ++u) {
      float t = x[p + u] - y[p + u];
      acc[u] += t * t;
    }
  for (; p < d; ++p) {
    float t = x[p] - y[p];
    acc[0] += t * t;
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

float ip_ref(const float* x, const float* y, size_t d) {
  float acc[4] = {0, 0, 0, 0};
  size_t p = 0;
  for (; p + 4 <= d; p += 4)
    for (int u = 0; u < 4; ++u) acc[u] += x[p + u] * y[p + u];
  for (; p < d; ++p) acc[0] += x[p] * y[p];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

void l2sqr_ny_ref(const float* x, const float* y, size_t d, size_t ny, float* out) {
  for (size_t i = 0; i < ny; ++i) out[i] = l2sqr_ref(x, y + i * d, d);
}
void ip_ny_ref(const float* x, const float* y, size_t d, size_t ny, float* out) {
  for (size_t i = 0; i < ny; ++i) out[i] = ip_ref(x, y + i * d, d);
}
void norms_ref(const float* x, size_t d, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = ip_ref(x + i * d, x + i * d, d);
}

// acc[r][j] = <b_r, q_j> for mr rows
inline void micro(const float* panel, size_t d, const float* base, int mr, float acc[MR][NR]) {
  std::memset(acc, 0, sizeof(float) * MR * NR);
  for (size_t p = 0; p < d; ++p) {
    const float* q = panel + p * NR;
    for (int r = 0; r < mr; ++r) {
      float b = base[r * d + p];
      for (int j = 0; j < NR; ++j) acc[r][j] += b * q[j];
    }
  }
}

void scan_panel_ref(const float* panel, size_t d, const float* base, size_t nb, const float* bterm, float alpha,
                    int64_t row0, PanelSink* sink) {
  float acc[MR][NR];
  for (size_t i0 = 0; i0 < nb; i0 += MR) {
    int mr = nb - i0 < MR ? int(nb - i0) : MR;
    micro(panel, d, base + i0 * d, mr, acc);
    for (int r = 0; r < mr; ++r) {
      float bt = bterm ? bterm[i0 + r] : 0.f;
      for (int j = 0; j < NR; ++j) {
        float key = bt + alpha * acc[r][j];
        if (key < sink->thresholds[j]) sink->push(j, key, row0 + int64_t(i0 + r));
      }
    }
  }
}

void scan_panel_top1_ref(const float* panel, size_t d, const float* base, size_t nb, const float* bterm, float alpha,
                         int64_t row0, float* best, int64_t* best_row) {
  float acc[MR][NR];
  for (size_t i0 = 0; i0 < nb; i0 += MR) {
    int mr = nb - i0 < MR ? int(nb - i0) : MR;
    micro(panel, d, base + i0 * d, mr, acc);
    for (int r = 0; r < mr; ++r) {
      float bt = bterm ? bterm[i0 + r] : 0.f;
      for (int j = 0; j < NR; ++j) {
        float key = bt + alpha * acc[r][j];
        if (key < best[j]) {
          best[j] = key;
          best_row[j] = row0 + int64_t(i0 + r);
        }
      }
    }
  }
}

void panel_products_ref(const float* panel, size_t d, const float* base, size_t nb, float* out) {
  float acc[MR][NR];
  for (size_t i0 = 0; i0 < nb; i0 += MR) {
    int mr = nb - i0 < MR ? int(nb - i0) : MR;
    micro(panel, d, base + i0 * d, mr, acc);
    for (int r = 0; r < mr; ++r) std::memcpy(out + (i0 + r) * NR, acc[r], sizeof(float) * NR);
  }
}

// The extra metrics run the shared bodies (distances_extra_impl.h) over the
// one-lane ops, as the reference.
using V = simd::scalar::V;

#include "distances/distances_extra_impl.h"

}  // namespace

const Kernels& detail::kernels_scalar() {
  static const Kernels k{SimdLevel::scalar,   NR,
                         l2sqr_ref,           ip_ref,
                         l2sqr_ny_ref,        ip_ny_ref,
                         norms_ref,           scan_panel_ref,
                         scan_panel_top1_ref, panel_products_ref,
                         ANNVIL_EXTRA_KERNELS};
  return k;
}

}  // namespace annvil
