// Exact kernels exposed as functions: knn, pairwise distances, norms, SIMD
// level and OpenMP thread control.
#include <omp.h>

#include "common.h"
#include "distances/distances.h"
#include "distances/knn.h"
#include "core/parallel.h"
#include "simd/simd.h"

namespace annvil_py {

using namespace annvil;

namespace {
void check_metric(int metric) {
  ANNVIL_CHECK(is_known_metric(metric), "unknown metric ", metric, "; use one of the METRIC_* constants");
}
}  // namespace

void init_distances(py::module_& m) {
  m.def(
      "simd_level", [] { return std::string(simd_level_name(simd_level())); },
      "The SIMD path the kernels use now: 'avx512', 'avx2' or 'scalar'.");
  m.def("detected_simd_level", [] { return std::string(simd_level_name(detected_simd_level())); });
  m.def(
      "set_simd_level", [](const std::string& name) { set_simd_level(parse_simd_level(name)); }, py::arg("level"),
      "Force a SIMD level (at most what the CPU supports); for tests and benchmarks.");
  m.def("omp_set_num_threads", [](int n) { omp_set_num_threads(n < 1 ? 1 : n); }, py::arg("n"));
  m.def("omp_get_max_threads", [] { return omp_get_max_threads(); });

  m.def(
      "_knn",
      [](const FloatArray& xq, const FloatArray& xb, int64_t k, int metric, float metric_arg) {
        check_metric(metric);
        int64_t d = xq.shape(1);
        int64_t nq = rows_of(xq, d, "queries"), nb = rows_of(xb, d, "database");
        ANNVIL_CHECK(k > 0, "k must be positive, got ", k);
        py::array_t<float> D({nq, k});
        py::array_t<int64_t> I({nq, k});
        float* dp = D.mutable_data();
        int64_t* ip = I.mutable_data();
        const float *qp = xq.data(), *bp = xb.data();
        {
          py::gil_scoped_release release;
          knn_exact(size_t(nq), qp, size_t(nb), bp, size_t(d), size_t(k), MetricType(metric), dp, ip, nullptr, nullptr,
                    metric_arg);
        }
        return py::make_tuple(D, I);
      },
      py::arg("xq"), py::arg("xb"), py::arg("k"), py::arg("metric"), py::arg("metric_arg") = 0.f);
  m.def(
      "_pairwise_distances",
      [](const FloatArray& xq, const FloatArray& xb, int metric, float metric_arg) {
        check_metric(metric);
        int64_t d = xq.shape(1);
        int64_t nq = rows_of(xq, d, "queries"), nb = rows_of(xb, d, "database");
        py::array_t<float> out({nq, nb});
        float* op = out.mutable_data();
        const float *qp = xq.data(), *bp = xb.data();
        {
          py::gil_scoped_release release;
          pairwise_distances(size_t(nq), qp, size_t(nb), bp, size_t(d), MetricType(metric), op, metric_arg);
        }
        return out;
      },
      py::arg("xq"), py::arg("xb"), py::arg("metric"), py::arg("metric_arg") = 0.f);
  m.def("_inject_parallel_fault", &arm_parallel_fault, py::arg("n"),
        "test hook: the n-th parallel loop iteration from now throws (0 disarms)");
  m.def("_find_non_finite", [](const FloatArray& x) {
    const float* p = x.data();
    size_t n = size_t(x.size());
    py::gil_scoped_release release;
    return find_non_finite(n, p);
  });
  m.def("_find_norm_overflow", [](const FloatArray& x) {
    if (x.ndim() != 2) ANNVIL_THROW(value, "expected a 2-D array");
    const float* p = x.data();
    size_t n = size_t(x.shape(0)), d = size_t(x.shape(1));
    py::gil_scoped_release release;
    return find_norm_overflow(n, p, d);
  });
  m.def("_normalize_rows", [](FloatArray& x) {
    if (x.ndim() != 2) ANNVIL_THROW(value, "normalize_L2 needs a 2-D array");
    float* p = x.mutable_data();
    size_t n = size_t(x.shape(0)), d = size_t(x.shape(1));
    py::gil_scoped_release release;
    normalize_rows(n, p, d);
  });
  m.def("_norms_sqr", [](const FloatArray& x) {
    if (x.ndim() != 2) ANNVIL_THROW(value, "need a 2-D array");
    py::array_t<float> out(x.shape(0));
    float* op = out.mutable_data();
    const float* p = x.data();
    size_t n = size_t(x.shape(0)), d = size_t(x.shape(1));
    py::gil_scoped_release release;
    compute_norms(n, p, d, op);
    return out;
  });
}

}  // namespace annvil_py
