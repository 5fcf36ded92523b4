// Kernel bodies of the extra metrics (metric.h: L1, Linf, Lp, Canberra,
// BrayCurtis, JensenShannon, Jaccard, NaNEuclidean, Gower), written once and
// instantiated by every per-ISA translation unit (distances_scalar.cpp, and
// distances_avx2.cpp / distances_avx512.cpp through distances_impl.h) inside
// its anonymous namespace, after `V` (simd/ops_<isa>.h).
//
// Required from the includer, beyond what distances_impl.h needs:
//   V::mul, V::div, V::abs, V::max, V::min (lane-wise), V::reduce_max.
// load_partial pads with zeros, so a lane op may only see the padding where
// f(0, 0) is neutral for its reduction (true for |x - y|, min, max and
// |x + y|; not for Canberra's 0 / 0, whose tail runs lane by lane).
//
// Lp, JensenShannon, NaNEuclidean and Gower are element-wise with powf / log
// or per-lane branches on NaN and sign: they are plain loops here (one body,
// compiled under each ISA's flags).
//
// Every kernel has the signature of ExtraDistFn (distances.h):
//   float f(const float* x, const float* y, size_t d, float metric_arg)
// and the same numeric definition as Faiss, including its NaN results
// (Canberra with a dimension where both are 0, JensenShannon with a zero
// component, Gower with invalid data).

// (the includer includes <cmath> and <limits> before its namespace)

// Apply f(xv, yv) over the d lanes of x and y, a register at a time.
template <class F>
inline void for_lanes(const float* x, const float* y, size_t d, F&& f) {
  size_t p = 0;
  for (; p + V::W <= d; p += V::W) f(V::loadu(x + p), V::loadu(y + p));
  if (p < d) f(V::load_partial(x + p, d - p), V::load_partial(y + p, d - p));
}

float extra_l1(const float* x, const float* y, size_t d, float) {
  typename V::reg acc = V::zero();
  for_lanes(x, y, d, [&](typename V::reg a, typename V::reg b) { acc = V::add(acc, V::abs(V::sub(a, b))); });
  return V::reduce(acc);
}

float extra_linf(const float* x, const float* y, size_t d, float) {
  typename V::reg acc = V::zero();
  for_lanes(x, y, d, [&](typename V::reg a, typename V::reg b) { acc = V::max(acc, V::abs(V::sub(a, b))); });
  return V::reduce_max(acc);
}

float extra_lp(const float* x, const float* y, size_t d, float p) {
  float acc = 0;
  for (size_t i = 0; i < d; ++i) acc += std::pow(std::fabs(x[i] - y[i]), p);
  return acc;
}

float extra_canberra(const float* x, const float* y, size_t d, float) {
  typename V::reg acc = V::zero();
  size_t p = 0;
  for (; p + V::W <= d; p += V::W) {
    auto a = V::loadu(x + p), b = V::loadu(y + p);
    acc = V::add(acc, V::div(V::abs(V::sub(a, b)), V::add(V::abs(a), V::abs(b))));
  }
  float s = V::reduce(acc);
  for (; p < d; ++p) s += std::fabs(x[p] - y[p]) / (std::fabs(x[p]) + std::fabs(y[p]));
  return s;
}

float extra_braycurtis(const float* x, const float* y, size_t d, float) {
  typename V::reg num = V::zero(), den = V::zero();
  for_lanes(x, y, d, [&](typename V::reg a, typename V::reg b) {
    num = V::add(num, V::abs(V::sub(a, b)));
    den = V::add(den, V::abs(V::add(a, b)));
  });
  return V::reduce(num) / V::reduce(den);
}

float extra_jensenshannon(const float* x, const float* y, size_t d, float) {
  float acc = 0;
  for (size_t i = 0; i < d; ++i) {
    float xi = x[i], yi = y[i];
    float mi = 0.5f * (xi + yi);
    acc += -xi * std::log(mi / xi) - yi * std::log(mi / yi);
  }
  return 0.5f * acc;
}

// Larger is closer (a similarity, as in Faiss).
float extra_jaccard(const float* x, const float* y, size_t d, float) {
  typename V::reg num = V::zero(), den = V::zero();
  for_lanes(x, y, d, [&](typename V::reg a, typename V::reg b) {
    num = V::add(num, V::min(a, b));
    den = V::add(den, V::max(a, b));
  });
  return V::reduce(num) / V::reduce(den);
}

float extra_naneuclidean(const float* x, const float* y, size_t d, float) {
  float acc = 0;
  size_t present = 0;
  for (size_t i = 0; i < d; ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) continue;
    float t = x[i] - y[i];
    acc += t * t;
    ++present;
  }
  if (present == 0) return std::numeric_limits<float>::quiet_NaN();
  return float(d) / float(present) * acc;
}

float extra_gower(const float* x, const float* y, size_t d, float) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float acc = 0;
  size_t valid = 0;
  for (size_t i = 0; i < d; ++i) {
    float a = x[i], b = y[i];
    if (std::isnan(a) || std::isnan(b)) continue;
    if (a >= 0 && b >= 0) {  // numeric dimension: values must lie in [0, 1]
      if (a > 1 || b > 1) return nan;
      acc += std::fabs(a - b);
    } else if (a < 0 && b < 0) {  // categorical dimension: equal or not
      acc += a != b ? 1.f : 0.f;
    } else {  // one numeric, one categorical: invalid
      return nan;
    }
    ++valid;
  }
  return valid ? acc / float(valid) : nan;
}

// In metric.h's slot order (extra_metric_slot).
#define ANNVIL_EXTRA_KERNELS                                                                             \
  {extra_l1,      extra_linf,         extra_lp,   extra_canberra, extra_braycurtis, extra_jensenshannon, \
   extra_jaccard, extra_naneuclidean, extra_gower}
