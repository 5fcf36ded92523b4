// The metric vocabulary: Faiss's MetricType values and the questions every
// index asks about a metric (does larger mean closer? is it one of the
// "extra" metrics that only exact and graph/IVF-flat search support?).
#pragma once

namespace annvil {

// Same numeric values as Faiss (MetricType.h), so files and drop-in code that
// pass raw integers keep their meaning.
enum MetricType : int {
  METRIC_INNER_PRODUCT = 0,   // maximum inner product
  METRIC_L2 = 1,              // squared L2
  METRIC_L1 = 2,              // sum |x_i - y_i|
  METRIC_Linf = 3,            // max |x_i - y_i|
  METRIC_Lp = 4,              // sum |x_i - y_i|^p, p = metric_arg (no 1/p root, as Faiss)
  METRIC_Canberra = 20,       // sum |x_i - y_i| / (|x_i| + |y_i|)
  METRIC_BrayCurtis = 21,     // sum |x_i - y_i| / sum |x_i + y_i|
  METRIC_JensenShannon = 22,  // 1/2 sum (x_i log(x_i / m_i) + y_i log(y_i / m_i)), m = (x + y) / 2
  METRIC_Jaccard = 23,        // sum min(x_i, y_i) / sum max(x_i, y_i): a similarity
  METRIC_NaNEuclidean = 24,   // d / #present * sum over dims where neither is NaN of (x_i - y_i)^2
  METRIC_GOWER = 25,          // mean over non-NaN dims: |x_i - y_i| for numeric dims in [0, 1],
                              // [x_i != y_i] for categorical dims (negative values)
};

// Larger is closer (Faiss's is_similarity_metric): inner product and Jaccard.
constexpr bool is_similarity_metric(MetricType m) { return m == METRIC_INNER_PRODUCT || m == METRIC_Jaccard; }

// A metric beyond L2 / inner product (computed by the extra kernels of
// distances.h, never by the panel / GEMM form).
constexpr bool is_extra_metric(MetricType m) {
  return m == METRIC_L1 || m == METRIC_Linf || m == METRIC_Lp || (int(m) >= 20 && int(m) <= 25);
}

// Any value Faiss defines.
constexpr bool is_known_metric(int m) {
  return m == METRIC_INNER_PRODUCT || m == METRIC_L2 || is_extra_metric(MetricType(m));
}

// Slot of an extra metric in Kernels::extra (0 .. kExtraMetrics - 1), -1 otherwise.
constexpr int kExtraMetrics = 9;
constexpr int extra_metric_slot(MetricType m) {
  return m == METRIC_L1                   ? 0
         : m == METRIC_Linf               ? 1
         : m == METRIC_Lp                 ? 2
         : (int(m) >= 20 && int(m) <= 25) ? int(m) - 17
                                          : -1;
}

const char* metric_name(MetricType m);

}  // namespace annvil
