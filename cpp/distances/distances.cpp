// Run-time choice of the kernel table, and helpers common to every level.
#include "distances/distances.h"

#include <atomic>
#include <cstring>

#include "core/error.h"

namespace annvil {

namespace {
std::atomic<const Kernels*>& active() {
  static std::atomic<const Kernels*> table{&kernels_for(simd_level())};
  return table;
}
}  // namespace

const Kernels& kernels_for(SimdLevel level) {
  switch (level) {
#if defined(ANNVIL_X86)
    case SimdLevel::avx512: return detail::kernels_avx512();
    case SimdLevel::avx2: return detail::kernels_avx2();
#endif
    default: return detail::kernels_scalar();
  }
}

const Kernels& kernels() { return *active().load(std::memory_order_relaxed); }

void detail::select_kernels(SimdLevel level) { active().store(&kernels_for(level)); }

ExtraDistFn extra_distance_fn(const Kernels& K, MetricType metric) {
  int slot = extra_metric_slot(metric);
  ANNVIL_CHECK(slot >= 0, "metric ", int(metric), " has no extra-metric kernel");
  return K.extra[slot];
}

void extra_distances_ny(ExtraDistFn fn, float metric_arg, const float* x, const float* y, size_t d, size_t ny,
                        float* out) {
  for (size_t i = 0; i < ny; ++i) out[i] = fn(x, y + i * d, d, metric_arg);
}

void pack_panel(const float* xq, size_t nq, size_t d, int nr, float* panel) {
  std::memset(panel, 0, sizeof(float) * d * nr);
  for (size_t j = 0; j < nq; ++j) {
    const float* q = xq + j * d;
    for (size_t p = 0; p < d; ++p) panel[p * nr + j] = q[p];
  }
}

}  // namespace annvil
