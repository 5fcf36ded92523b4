// Run-time choice of the kernel table, and helpers common to every level.
#include "distances/distances.h"

#include <cstring>

#include "core/error.h"
#include "simd/dispatch.h"

namespace annvil {

namespace {
const KernelDispatch<Kernels>& dispatch() {
  static const KernelDispatch<Kernels> d(&detail::kernels_scalar(), ANNVIL_ISA_TABLE(detail::kernels_avx2),
                                         ANNVIL_ISA_TABLE(detail::kernels_avx512));
  return d;
}
}  // namespace

const Kernels& kernels() { return dispatch().get(); }
const Kernels& kernels_for(SimdLevel level) { return dispatch().for_level(level); }

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
