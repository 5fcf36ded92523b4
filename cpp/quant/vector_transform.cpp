#include "quant/vector_transform.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

#include "distances/distances.h"
#include "core/io.h"
#include "distances/knn.h"
#include "quant/pq.h"
#include "core/utils.h"

namespace annvil {

// ---------------------------------------------------------------- base
VectorTransform::VectorTransform(int d_in_, int d_out_) : d_in(d_in_), d_out(d_out_) {
  ANNVIL_CHECK(d_in_ > 0 && d_out_ > 0, "transform dimensions must be positive, got d_in=", d_in_, " d_out=", d_out_);
}

void VectorTransform::train(idx_t, const float*) {}

void VectorTransform::check_trained() const {
  if (!is_trained) ANNVIL_THROW(not_trained, type_tag(), " is not trained: call train() first");
}

std::vector<float> VectorTransform::apply(idx_t n, const float* x) const {
  check_trained();
  std::vector<float> out(size_t(n) * d_out);
  apply_noalloc(n, x, out.data());
  return out;
}

void VectorTransform::reverse_transform(idx_t, const float*, float*) const {
  ANNVIL_THROW(runtime, type_tag(), " cannot be reversed");
}

void VectorTransform::check_identical(const VectorTransform& other) const {
  ANNVIL_CHECK(other.type_tag() == type_tag(), "transforms differ: ", type_tag(), " vs ", other.type_tag());
  ANNVIL_CHECK(other.d_in == d_in && other.d_out == d_out, type_tag(), ": dimensions differ (", d_in, "->", d_out,
               " vs ", other.d_in, "->", other.d_out, ")");
}

// ---------------------------------------------------------------- linear
LinearTransform::LinearTransform(int d_in_, int d_out_, bool bias)
    : VectorTransform(d_in_, d_out_), have_bias(bias), A(size_t(d_in_) * d_out_, 0.f), b(bias ? d_out_ : 0, 0.f) {
  is_trained = false;
}

void LinearTransform::apply_noalloc(idx_t n, const float* x, float* xt) const {
  check_trained();
  ANNVIL_CHECK(A.size() == size_t(d_in) * d_out, type_tag(), ": the matrix A holds ", A.size(), " values, expected ",
               size_t(d_in) * d_out);
  ANNVIL_CHECK(!have_bias || b.size() == size_t(d_out), type_tag(), ": the bias b holds ", b.size(),
               " values, expected d_out=", d_out);
  const Kernels& K = kernels();
  ParallelErrors perr;
#pragma omp parallel for if (n > 256) schedule(static)
  for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
    float* o = xt + size_t(i) * d_out;
    K.inner_product_ny(x + size_t(i) * d_in, A.data(), size_t(d_in), size_t(d_out), o);
    if (have_bias)
      for (int j = 0; j < d_out; ++j) o[j] += b[size_t(j)];
  } ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void LinearTransform::transform_transpose(idx_t n, const float* xt, float* x) const {
  ANNVIL_CHECK(A.size() == size_t(d_in) * d_out, type_tag(), ": the matrix A holds ", A.size(), " values, expected ",
               size_t(d_in) * d_out);
  ANNVIL_CHECK(!have_bias || b.size() == size_t(d_out), type_tag(), ": the bias b holds ", b.size(),
               " values, expected d_out=", d_out);
  // x = A^T (xt - b)
  ParallelErrors perr;
#pragma omp parallel for if (n > 256) schedule(static)
  for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
    float* o = x + size_t(i) * d_in;
    const float* y = xt + size_t(i) * d_out;
    std::fill(o, o + d_in, 0.f);
    for (int r = 0; r < d_out; ++r) {
      float v = y[r] - (have_bias ? b[size_t(r)] : 0.f);
      const float* a = A.data() + size_t(r) * d_in;
      for (int c = 0; c < d_in; ++c) o[c] += v * a[c];
    }
  } ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void LinearTransform::reverse_transform(idx_t n, const float* xt, float* x) const {
  check_trained();
  ANNVIL_CHECK(is_orthonormal, type_tag(), " is not orthonormal: reverse_transform is not available");
  transform_transpose(n, xt, x);
}

void LinearTransform::set_is_orthonormal() {
  if (d_out > d_in) {
    is_orthonormal = false;
    return;
  }
  ANNVIL_CHECK(A.size() == size_t(d_in) * d_out, type_tag(), ": the matrix A is not set");
  // rows of A orthonormal: A A^T = I within Faiss's tolerance
  const double eps = 4e-5;
  bool ok = true;
  for (int i = 0; i < d_out && ok; ++i)
    for (int j = i; j < d_out; ++j) {
      double acc = 0;
      const float *ai = &A[size_t(i) * d_in], *aj = &A[size_t(j) * d_in];
      for (int c = 0; c < d_in; ++c) acc += double(ai[c]) * aj[c];
      if (i == j) acc -= 1;
      if (!(std::fabs(acc) <= eps)) {
        ok = false;
        break;
      }
    }
  is_orthonormal = ok;
}

void LinearTransform::check_identical(const VectorTransform& other) const {
  VectorTransform::check_identical(other);
  auto* o = dynamic_cast<const LinearTransform*>(&other);
  ANNVIL_CHECK(o && o->A == A && o->b == b && o->have_bias == have_bias, type_tag(),
               ": the matrices A and biases b differ");
}

void LinearTransform::write_payload(Writer& w) const {
  w.write<int32_t>(d_in);
  w.write<int32_t>(d_out);
  w.write<uint8_t>(uint8_t(is_trained) | uint8_t(have_bias) << 1 | uint8_t(is_orthonormal) << 2);
  w.write_vector(A);
  w.write_vector(b);
}

void LinearTransform::read_payload(Reader& r) {
  uint8_t flags = r.read<uint8_t>();
  is_trained = flags & 1;
  have_bias = (flags >> 1) & 1;
  is_orthonormal = (flags >> 2) & 1;
  r.read_vector(A);
  r.read_vector(b);
  if (A.size() != size_t(d_in) * d_out || b.size() != (have_bias ? size_t(d_out) : 0))
    r.corrupt("linear transform matrix size does not match its dimensions");
}

// ---------------------------------------------------------------- polar factor
void polar_factor(int rows, int cols, const double* a, double* out) {
  if (rows < cols) {
    std::vector<double> at(size_t(rows) * cols), pt(size_t(rows) * cols);
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) at[size_t(j) * rows + i] = a[size_t(i) * cols + j];
    polar_factor(cols, rows, at.data(), pt.data());
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) out[size_t(i) * cols + j] = pt[size_t(j) * rows + i];
    return;
  }
  // one-sided Jacobi (Hestenes): rotate column pairs of G until they are
  // orthogonal; then G = U S and the rotations accumulate V.
  const size_t m = size_t(rows), n = size_t(cols);
  std::vector<double> G(m * n), V(n * n, 0.0);  // both column-major
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) G[j * m + i] = a[i * n + j];
  for (size_t j = 0; j < n; ++j) V[j * n + j] = 1.0;
  const double eps = 1e-12;
  for (int sweep = 0; sweep < 60; ++sweep) {
    double off = 0.0;
    for (size_t p = 0; p + 1 < n; ++p)
      for (size_t q = p + 1; q < n; ++q) {
        double* gp = &G[p * m];
        double* gq = &G[q * m];
        double alpha = 0, beta = 0, gamma = 0;
        for (size_t i = 0; i < m; ++i) {
          alpha += gp[i] * gp[i];
          beta += gq[i] * gq[i];
          gamma += gp[i] * gq[i];
        }
        if (gamma == 0.0 || std::fabs(gamma) <= eps * std::sqrt(alpha * beta)) continue;
        off = std::max(off, std::fabs(gamma) / std::sqrt(alpha * beta));
        double zeta = (beta - alpha) / (2.0 * gamma);
        double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1.0 + zeta * zeta));
        double c = 1.0 / std::sqrt(1.0 + t * t), s = c * t;
        for (size_t i = 0; i < m; ++i) {
          double x = gp[i], y = gq[i];
          gp[i] = c * x - s * y;
          gq[i] = s * x + c * y;
        }
        double* vp = &V[p * n];
        double* vq = &V[q * n];
        for (size_t i = 0; i < n; ++i) {
          double x = vp[i], y = vq[i];
          vp[i] = c * x - s * y;
          vq[i] = s * x + c * y;
        }
      }
    if (off < 1e-10) break;
  }
  // U = G S^-1 (columns with a zero singular value are left at zero: the
  // polar factor is not unique there)
  for (size_t j = 0; j < n; ++j) {
    double* g = &G[j * m];
    double s = 0;
    for (size_t i = 0; i < m; ++i) s += g[i] * g[i];
    s = std::sqrt(s);
    double inv = s > 1e-300 ? 1.0 / s : 0.0;
    for (size_t i = 0; i < m; ++i) g[i] *= inv;
  }
  // out = U V^T
  for (size_t i = 0; i < m; ++i)
    for (size_t k = 0; k < n; ++k) {
      double acc = 0;
      for (size_t j = 0; j < n; ++j) acc += G[j * m + i] * V[j * n + k];
      out[i * n + k] = acc;
    }
}


// ---------------------------------------------------------------- QR
void matrix_qr(int m, int n, float* a_io) {
  ANNVIL_CHECK(m >= n && n >= 0, "matrix_qr needs m >= n, got m=", m, " n=", n);
  const size_t M = size_t(m), N = size_t(n);
  // column j of the m x n matrix (LAPACK's column-major view) = a_io[j * m ...]
  std::vector<double> a(a_io, a_io + M * N), tau(N, 0.0);
  // geqr2: H_j = I - tau_j v_j v_j^T zeroes column j below the diagonal,
  // v_j = (1, x_{j+1..m} / (alpha - beta)), beta = -sign(alpha) |x_{j..m}|
  for (size_t j = 0; j < N; ++j) {
    double* col = &a[j * M];
    double alpha = col[j], xnorm = 0;
    for (size_t i = j + 1; i < M; ++i) xnorm += col[i] * col[i];
    xnorm = std::sqrt(xnorm);
    if (xnorm == 0.0) continue;  // tau = 0: H_j = I
    double beta = -std::copysign(std::hypot(alpha, xnorm), alpha);
    tau[j] = (beta - alpha) / beta;
    double scale = 1.0 / (alpha - beta);
    for (size_t i = j + 1; i < M; ++i) col[i] *= scale;
    col[j] = beta;
    for (size_t c = j + 1; c < N; ++c) {  // apply H_j to the later columns
      double* cc = &a[c * M];
      double w = cc[j];
      for (size_t i = j + 1; i < M; ++i) w += col[i] * cc[i];
      w *= tau[j];
      cc[j] -= w;
      for (size_t i = j + 1; i < M; ++i) cc[i] -= w * col[i];
    }
  }
  // org2r: Q = H_0 H_1 ... H_{n-1} applied to the first n columns of I
  std::vector<double> q(M * N, 0.0);
  for (size_t j = 0; j < N; ++j) q[j * M + j] = 1.0;
  for (size_t jj = N; jj-- > 0;) {
    if (tau[jj] == 0.0) continue;
    const double* v = &a[jj * M];
    for (size_t c = jj; c < N; ++c) {
      double* qc = &q[c * M];
      double w = qc[jj];
      for (size_t i = jj + 1; i < M; ++i) w += v[i] * qc[i];
      w *= tau[jj];
      qc[jj] -= w;
      for (size_t i = jj + 1; i < M; ++i) qc[i] -= w * v[i];
    }
  }
  for (size_t i = 0; i < M * N; ++i) a_io[i] = float(q[i]);
}

// ---------------------------------------------------------------- symmetric eigensolver
void symmetric_eigen(int n_, double* a, double* w) {
  ANNVIL_CHECK(n_ >= 0, "symmetric_eigen: negative size");
  const size_t n = size_t(n_);
  if (n == 0) return;
  for (size_t i = 0; i < n * n; ++i)
    ANNVIL_CHECK(std::isfinite(a[i]), "eigen-decomposition of a matrix with non-finite values (NaN/inf in the data?)");
  // V = a (row-major, V[i][j]); tred2 (Householder reduction to tridiagonal
  // form, EISPACK / JAMA), then tql2 (implicit QL) on the transposed
  // accumulation so that the rotations run over contiguous rows.
  std::vector<double> V(a, a + n * n);
  auto at = [&](size_t i, size_t j) -> double& { return V[i * n + j]; };
  std::vector<double> d(n), e(n);
  for (size_t j = 0; j < n; ++j) d[j] = at(n - 1, j);
  for (size_t i = n - 1; i > 0; --i) {
    double scale = 0.0, h = 0.0;
    for (size_t k = 0; k < i; ++k) scale += std::fabs(d[k]);
    if (scale == 0.0) {
      e[i] = d[i - 1];
      for (size_t j = 0; j < i; ++j) {
        d[j] = at(i - 1, j);
        at(i, j) = 0.0;
        at(j, i) = 0.0;
      }
    } else {
      for (size_t k = 0; k < i; ++k) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      double f = d[i - 1], g = std::sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (size_t j = 0; j < i; ++j) e[j] = 0.0;
      for (size_t j = 0; j < i; ++j) {
        f = d[j];
        at(j, i) = f;
        g = e[j] + at(j, j) * f;
        for (size_t k = j + 1; k <= i - 1; ++k) {
          g += at(k, j) * d[k];
          e[k] += at(k, j) * f;
        }
        e[j] = g;
      }
      f = 0.0;
      for (size_t j = 0; j < i; ++j) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      double hh = f / (h + h);
      for (size_t j = 0; j < i; ++j) e[j] -= hh * d[j];
      for (size_t j = 0; j < i; ++j) {
        f = d[j];
        g = e[j];
        for (size_t k = j; k <= i - 1; ++k) at(k, j) -= (f * e[k] + g * d[k]);
        d[j] = at(i - 1, j);
        at(i, j) = 0.0;
      }
    }
    d[i] = h;
  }
  for (size_t i = 0; i + 1 < n; ++i) {
    at(n - 1, i) = at(i, i);
    at(i, i) = 1.0;
    double h = d[i + 1];
    if (h != 0.0) {
      for (size_t k = 0; k <= i; ++k) d[k] = at(k, i + 1) / h;
      for (size_t j = 0; j <= i; ++j) {
        double g = 0.0;
        for (size_t k = 0; k <= i; ++k) g += at(k, i + 1) * at(k, j);
        for (size_t k = 0; k <= i; ++k) at(k, j) -= g * d[k];
      }
    }
    for (size_t k = 0; k <= i; ++k) at(k, i + 1) = 0.0;
  }
  for (size_t j = 0; j < n; ++j) {
    d[j] = at(n - 1, j);
    at(n - 1, j) = 0.0;
  }
  at(n - 1, n - 1) = 1.0;
  e[0] = 0.0;
  // W = V^T: row j of W is column j of V (eigenvector j)
  std::vector<double> W(n * n);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) W[j * n + i] = V[i * n + j];
  V.clear();
  V.shrink_to_fit();
  // tql2
  for (size_t i = 1; i < n; ++i) e[i - 1] = e[i];
  e[n - 1] = 0.0;
  double f = 0.0, tst1 = 0.0;
  const double eps = std::ldexp(1.0, -52);
  for (size_t l = 0; l < n; ++l) {
    tst1 = std::max(tst1, std::fabs(d[l]) + std::fabs(e[l]));
    size_t m = l;
    while (m < n - 1 && !(std::fabs(e[m]) <= eps * tst1)) ++m;
    if (m > l) {
      int iter = 0;
      do {
        ANNVIL_CHECK(++iter <= 200, "symmetric eigensolver did not converge");
        double g = d[l];
        double p = (d[l + 1] - g) / (2.0 * e[l]);
        double r = std::hypot(p, 1.0);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        double dl1 = d[l + 1];
        double h = g - d[l];
        for (size_t i = l + 2; i < n; ++i) d[i] -= h;
        f += h;
        p = d[m];
        double c = 1.0, c2 = c, c3 = c, el1 = e[l + 1], s = 0.0, s2 = 0.0;
        for (size_t i = m; i-- > l;) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = std::hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          double* wi = &W[i * n];
          double* wi1 = &W[(i + 1) * n];
          for (size_t k = 0; k < n; ++k) {
            double hk = wi1[k];
            wi1[k] = s * wi[k] + c * hk;
            wi[k] = c * wi[k] - s * hk;
          }
        }
        p = -s * s2 * c3 * el1 * e[l] / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (std::fabs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0.0;
  }
  // increasing eigenvalues
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return d[x] < d[y]; });
  for (size_t j = 0; j < n; ++j) {
    w[j] = d[order[j]];
    std::memcpy(a + j * n, &W[order[j] * n], n * sizeof(double));
  }
}

namespace {
void random_orthonormal(int rows, int cols, int seed, std::vector<float>& A) {
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> a(size_t(rows) * cols), r(size_t(rows) * cols);
  for (auto& v : a) v = g(rng);
  polar_factor(rows, cols, a.data(), r.data());
  A.assign(r.begin(), r.end());
}

// Faiss's fvecs_maybe_subsample: at most nmax of the n vectors (the first
// nmax of rand_perm(n, seed)); returns x itself when n <= nmax.
const float* maybe_subsample(size_t d, idx_t* n, size_t nmax, const float* x, std::vector<float>& buf,
                             int64_t seed = 1234) {
  if (size_t(*n) <= nmax) return x;
  ANNVIL_CHECK(*n <= idx_t(INT32_MAX), "too many training vectors for subsampling (more than 2^31)");
  std::vector<int> perm(static_cast<size_t>(*n));
  rand_perm(perm.data(), perm.size(), seed);
  buf.resize(nmax * d);
  for (size_t i = 0; i < nmax; ++i) std::memcpy(&buf[i * d], x + size_t(perm[i]) * d, sizeof(float) * d);
  *n = idx_t(nmax);
  return buf.data();
}

// C (m x n, row-major) = A (m x k) B (k x n), float inputs, double output
// (through the inner-product kernels on B^T)
void matmul(size_t m, size_t k, size_t n, const float* A, const float* B, float* C) {
  std::vector<float> bt(n * k);
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < n; ++j) bt[j * k + i] = B[i * n + j];
  pairwise_distances(m, A, n, bt.data(), k, METRIC_INNER_PRODUCT, C);
}

// cov += (X - mean)^T (X - mean) for n rows of dimension d, blockwise (the
// centred copy of one block at a time: no n * d temporary)
void accumulate_xtx(size_t n, size_t d, const float* x, const std::vector<double>& mean, std::vector<double>& cov) {
  const size_t bs = 512;
  std::vector<float> xt(d * bs), prod(d * d);
  for (size_t i0 = 0; i0 < n; i0 += bs) {
    size_t nb = std::min(bs, n - i0);
    for (size_t i = 0; i < nb; ++i)
      for (size_t j = 0; j < d; ++j) xt[j * nb + i] = float(x[(i0 + i) * d + j] - mean[j]);
    pairwise_distances(d, xt.data(), d, xt.data(), nb, METRIC_INNER_PRODUCT, prod.data());
    for (size_t i = 0; i < d * d; ++i) cov[i] += prod[i];
  }
}

void renorm_rows(size_t n, size_t d, float* x) { normalize_rows(n, x, d); }
}  // namespace

// ---------------------------------------------------------------- random rotation
RandomRotationMatrix::RandomRotationMatrix(int d_in_, int d_out_) : LinearTransform(d_in_, d_out_, false) {}

void RandomRotationMatrix::init(int seed) {
  // Faiss: float_randn(d_out * d_in, seed), orthonormalised as d_out vectors
  // of d_in (rows of A); d_out > d_in: a d_out x d_out rotation cut to its
  // first d_in columns
  if (d_out <= d_in) {
    std::vector<float> q(size_t(d_out) * d_in);
    float_randn(q.data(), q.size(), seed);
    matrix_qr(d_in, d_out, q.data());
    A = std::move(q);
  } else {
    std::vector<float> q(size_t(d_out) * d_out);
    float_randn(q.data(), q.size(), seed);
    matrix_qr(d_out, d_out, q.data());
    A.assign(size_t(d_out) * d_in, 0.f);
    for (int i = 0; i < d_out; ++i)
      for (int j = 0; j < d_in; ++j) A[size_t(i) * d_in + j] = q[size_t(i) * d_out + j];
  }
  is_orthonormal = true;
  is_trained = true;
}

void RandomRotationMatrix::train(idx_t, const float*) { init(12345); }

// ---------------------------------------------------------------- PCA
PCAMatrix::PCAMatrix(int d_in_, int d_out_, float eigen_power_, bool random_rotation_)
    : LinearTransform(d_in_, d_out_, true), eigen_power(eigen_power_), random_rotation(random_rotation_) {
  is_trained = false;
}

void PCAMatrix::train(idx_t n_in, const float* x_in) {
  ANNVIL_CHECK(n_in > 0, "PCAMatrix needs at least one training vector");
  ANNVIL_CHECK(d_out <= d_in, "PCAMatrix cannot output more dimensions (", d_out, ") than it has inputs (", d_in, ")");
  const size_t din = size_t(d_in);
  std::vector<float> sub;
  idx_t n = n_in;
  const float* x = maybe_subsample(din, &n, max_points_per_d * din, x_in, sub);
  ANNVIL_CHECK(n >= d_out, "PCAMatrix needs at least d_out=", d_out, " training vectors to output ", d_out,
               " dimensions, got ", n);
  std::vector<double> meand(din, 0.0);
  if (have_bias)
    for (idx_t i = 0; i < n; ++i)
      for (size_t j = 0; j < din; ++j) meand[j] += x[size_t(i) * din + j];
  for (auto& m : meand) m /= double(n);
  if (find_non_finite(size_t(n) * din, x) >= 0) ANNVIL_THROW(value, "PCAMatrix training vectors contain NaN or inf");

  std::vector<float> pcamat, eig(din, 0.f);
  if (size_t(n) >= din) {
    std::vector<double> cov(din * din, 0.0), w(din);
    accumulate_xtx(size_t(n), din, x, meand, cov);
    symmetric_eigen(d_in, cov.data(), w.data());
    pcamat.resize(din * din);
    for (size_t i = 0; i < din; ++i) {  // decreasing order
      eig[i] = float(w[din - 1 - i]);
      const double* v = &cov[(din - 1 - i) * din];
      std::copy(v, v + din, pcamat.begin() + long(i * din));
    }
  } else {
    // fewer vectors than dimensions: eigenvectors of the n x n Gram matrix
    // G = Xc Xc^T; Xc^T v_i (normalised) are the principal directions
    const size_t nn = size_t(n);
    std::vector<float> xc(nn * din);  // small: n < d_in
    for (size_t i = 0; i < nn; ++i)
      for (size_t j = 0; j < din; ++j) xc[i * din + j] = float(x[i * din + j] - meand[j]);
    std::vector<float> gram(nn * nn);
    pairwise_distances(nn, xc.data(), nn, xc.data(), din, METRIC_INNER_PRODUCT, gram.data());
    std::vector<double> g(gram.begin(), gram.end()), w(nn);
    for (size_t i = 0; i < nn; ++i)  // symmetrise rounding
      for (size_t j = i + 1; j < nn; ++j) g[i * nn + j] = g[j * nn + i] = 0.5 * (g[i * nn + j] + g[j * nn + i]);
    symmetric_eigen(int(nn), g.data(), w.data());
    pcamat.assign(din * nn, 0.f);
    for (size_t i = 0; i < nn; ++i) {
      eig[i] = float(w[nn - 1 - i]);
      const double* v = &g[(nn - 1 - i) * nn];
      std::vector<double> acc(din, 0.0);
      for (size_t k = 0; k < nn; ++k)
        for (size_t j = 0; j < din; ++j) acc[j] += v[k] * xc[k * din + j];
      double nrm = 0;
      for (double a : acc) nrm += a * a;
      nrm = std::sqrt(nrm);
      for (size_t j = 0; j < din; ++j) pcamat[i * din + j] = nrm > 0 ? float(acc[j] / nrm) : 0.f;
    }
  }
  // a deterministic sign per eigenvector: its largest component positive
  const size_t nvec = pcamat.size() / din;
  for (size_t i = 0; i < nvec; ++i) {
    float* v = &pcamat[i * din];
    size_t arg = 0;
    for (size_t j = 1; j < din; ++j)
      if (std::fabs(v[j]) > std::fabs(v[arg])) arg = j;
    if (v[arg] < 0)
      for (size_t j = 0; j < din; ++j) v[j] = -v[j];
  }
  mean.assign(meand.begin(), meand.end());
  eigenvalues = std::move(eig);
  PCAMat = std::move(pcamat);
  prepare_Ab();
  is_trained = true;
}

void PCAMatrix::copy_from(const PCAMatrix& other) {
  ANNVIL_CHECK(other.is_trained, "copy_from: the source PCAMatrix is not trained");
  mean = other.mean;
  eigenvalues = other.eigenvalues;
  PCAMat = other.PCAMat;
  prepare_Ab();
  is_trained = true;
}

void PCAMatrix::prepare_Ab() {
  const size_t din = size_t(d_in), dout = size_t(d_out);
  ANNVIL_CHECK(dout * din <= PCAMat.size() && mean.size() == din && eigenvalues.size() >= dout,
               "PCAMatrix cannot output ", d_out, " dimensions from ", d_in, " (", PCAMat.size() / din,
               " eigenvectors: train it first, on at least d_out vectors)");
  std::vector<float> a(dout * din);
  if (!random_rotation) {
    std::copy(PCAMat.begin(), PCAMat.begin() + long(dout * din), a.begin());
    if (eigen_power != 0)
      for (size_t i = 0; i < dout; ++i) {
        float factor = std::pow(eigenvalues[i] + epsilon, eigen_power);
        for (size_t j = 0; j < din; ++j) a[i * din + j] *= factor;
      }
    if (balanced_bins != 0) {
      ANNVIL_CHECK(balanced_bins > 0 && d_out % balanced_bins == 0, "PCAMatrix: d_out=", d_out,
                   " must be a multiple of balanced_bins=", balanced_bins);
      const int dsub = d_out / balanced_bins;
      std::vector<float> ain;
      ain.swap(a);
      a.assign(dout * din, 0.f);
      std::vector<float> accu(size_t(balanced_bins), 0.f);
      std::vector<int> counter(size_t(balanced_bins), 0);
      for (size_t i = 0; i < dout; ++i) {  // greedy: the lightest bin with room
        int best = -1;
        float min_w = 1e30f;
        for (int j = 0; j < balanced_bins; ++j)
          if (counter[size_t(j)] < dsub && accu[size_t(j)] < min_w) {
            min_w = accu[size_t(j)];
            best = j;
          }
        if (best < 0) best = int(std::find_if(counter.begin(), counter.end(), [&](int c) { return c < dsub; }) -
                                 counter.begin());
        size_t row = size_t(best) * size_t(dsub) + size_t(counter[size_t(best)]);
        accu[size_t(best)] += eigenvalues[i];
        counter[size_t(best)]++;
        std::copy(&ain[i * din], &ain[i * din] + din, &a[row * din]);
      }
    }
  } else {
    ANNVIL_CHECK(balanced_bins == 0, "PCAMatrix: balanced_bins and random_rotation cannot be combined");
    RandomRotationMatrix rr(d_out, d_out);
    rr.init(5);
    // A = R diag(lambda^power) P[0:d_out]  (Faiss: no epsilon on this path)
    if (eigen_power != 0)
      for (size_t i = 0; i < dout; ++i) {
        float factor = std::pow(eigenvalues[i], eigen_power);
        for (size_t j = 0; j < dout; ++j) rr.A[j * dout + i] *= factor;
      }
    for (size_t r = 0; r < dout; ++r) {
      float* o = &a[r * din];
      for (size_t k = 0; k < dout; ++k) {
        float c = rr.A[r * dout + k];
        const float* p = &PCAMat[k * din];
        for (size_t j = 0; j < din; ++j) o[j] += c * p[j];
      }
    }
  }
  A = std::move(a);
  b.assign(dout, 0.f);
  for (size_t i = 0; i < dout; ++i) {
    float accu = 0;
    for (size_t j = 0; j < din; ++j) accu -= mean[j] * A[j + i * din];
    b[i] = accu;
  }
  have_bias = true;
  is_orthonormal = eigen_power == 0;
}

void PCAMatrix::write_payload(Writer& w) const {
  LinearTransform::write_payload(w);
  w.write<float>(eigen_power);
  w.write<float>(epsilon);
  w.write<uint8_t>(random_rotation);
  w.write<uint64_t>(max_points_per_d);
  w.write<int32_t>(balanced_bins);
  w.write_vector(mean);
  w.write_vector(eigenvalues);
  w.write_vector(PCAMat);
}

// ---------------------------------------------------------------- ITQ
ITQMatrix::ITQMatrix(int d) : LinearTransform(d, d, false) {}

void ITQMatrix::train(idx_t n, const float* x) {
  ANNVIL_CHECK(n > 0, "ITQMatrix needs at least one training vector");
  ANNVIL_CHECK(max_iter >= 0, "ITQMatrix: max_iter must be non-negative");
  const size_t d = size_t(d_in);
  // R (row-major d x d): rotated = X R
  std::vector<double> R(d * d);
  if (init_rotation.size() == d * d) {
    R = init_rotation;
  } else {
    ANNVIL_CHECK(init_rotation.empty(), "ITQMatrix: init_rotation must hold d*d=", d * d, " values, got ",
                 init_rotation.size());
    RandomRotationMatrix rrot(d_in, d_in);
    rrot.init(seed);
    R.assign(rrot.A.begin(), rrot.A.end());
  }
  const size_t nn = size_t(n);
  std::vector<float> xt(d * nn);  // X^T
  for (size_t i = 0; i < nn; ++i)
    for (size_t j = 0; j < d; ++j) xt[j * nn + i] = x[i * d + j];
  std::vector<float> rt(d * d), proj(nn * d), bt(d * nn), c(d * d);
  std::vector<double> cd(d * d), rnew(d * d);
  for (int it = 0; it < max_iter; ++it) {
    for (size_t i = 0; i < d; ++i)  // R^T, the rows the kernels take
      for (size_t j = 0; j < d; ++j) rt[j * d + i] = float(R[i * d + j]);
    pairwise_distances(nn, x, d, rt.data(), d, METRIC_INNER_PRODUCT, proj.data());  // X R
    for (size_t i = 0; i < nn; ++i)
      for (size_t j = 0; j < d; ++j) bt[j * nn + i] = proj[i * d + j] < 0 ? -1.f : 1.f;  // B^T
    pairwise_distances(d, xt.data(), d, bt.data(), nn, METRIC_INNER_PRODUCT, c.data());  // X^T B
    std::copy(c.begin(), c.end(), cd.begin());
    polar_factor(d_in, d_in, cd.data(), rnew.data());  // argmax_R tr(R^T X^T B)
    R.swap(rnew);
  }
  A.resize(d * d);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j < d; ++j) A[i * d + j] = float(R[j * d + i]);  // A = R^T
  is_orthonormal = true;
  is_trained = true;
}

void ITQMatrix::write_payload(Writer& w) const {
  LinearTransform::write_payload(w);
  w.write<int32_t>(max_iter);
  w.write<int32_t>(seed);
  w.write_vector(init_rotation);
}

ITQTransform::ITQTransform(int d_in_, int d_out_, bool do_pca_)
    : VectorTransform(d_in_, d_out_), do_pca(do_pca_), itq(d_out_), pca_then_itq(d_in_, d_out_, false) {
  ANNVIL_CHECK(do_pca_ || d_in_ == d_out_, "ITQTransform without PCA needs d_in == d_out, got ", d_in_, " and ", d_out_);
  ANNVIL_CHECK(d_out_ <= d_in_, "ITQTransform cannot output more dimensions (", d_out_, ") than its input (", d_in_,
               ")");
  is_trained = false;
}

void ITQTransform::train(idx_t n_in, const float* x_in) {
  ANNVIL_CHECK(!is_trained, "ITQTransform is already trained");
  ANNVIL_CHECK(n_in > 0, "ITQTransform needs at least one training vector");
  const size_t din = size_t(d_in);
  std::vector<float> sub;
  idx_t n = n_in;
  size_t nmax = std::max(din * size_t(std::max(max_train_per_dim, 0)), size_t(32768));
  const float* x = maybe_subsample(din, &n, nmax, x_in, sub);
  std::vector<double> m(din, 0.0);
  for (idx_t i = 0; i < n; ++i)
    for (size_t j = 0; j < din; ++j) m[j] += x[size_t(i) * din + j];
  for (auto& v : m) v /= double(n);
  std::vector<float> xn(size_t(n) * din);
  for (idx_t i = 0; i < n; ++i)
    for (size_t j = 0; j < din; ++j) xn[size_t(i) * din + j] = float(x[size_t(i) * din + j] - m[j]);
  renorm_rows(size_t(n), din, xn.data());
  std::vector<float> xp;
  PCAMatrix pca(d_in, d_out);
  if (do_pca) {
    pca.have_bias = false;  // the data is centred already (as Faiss)
    pca.train(n, xn.data());
    xp = pca.apply(n, xn.data());
  } else {
    xp = xn;
  }
  itq.train(n, xp.data());
  if (do_pca) {
    pca_then_itq.A.assign(size_t(d_out) * din, 0.f);
    matmul(size_t(d_out), size_t(d_out), din, itq.A.data(), pca.A.data(), pca_then_itq.A.data());
  } else {
    pca_then_itq.A = itq.A;
  }
  pca_then_itq.is_trained = true;
  mean.assign(m.begin(), m.end());
  is_trained = true;
}

void ITQTransform::apply_noalloc(idx_t n, const float* x, float* xt) const {
  check_trained();
  const size_t din = size_t(d_in);
  std::vector<float> xn(size_t(n) * din);
  for (idx_t i = 0; i < n; ++i)
    for (size_t j = 0; j < din; ++j) xn[size_t(i) * din + j] = x[size_t(i) * din + j] - mean[j];
  renorm_rows(size_t(n), din, xn.data());
  pca_then_itq.apply_noalloc(n, xn.data(), xt);
}

void ITQTransform::check_identical(const VectorTransform& other) const {
  VectorTransform::check_identical(other);
  auto* o = dynamic_cast<const ITQTransform*>(&other);
  ANNVIL_CHECK(o && o->mean == mean, "ITQTransform: the means differ");
  pca_then_itq.check_identical(o->pca_then_itq);
}

void ITQTransform::write_payload(Writer& w) const {
  w.write<int32_t>(d_in);
  w.write<int32_t>(d_out);
  w.write<uint8_t>(uint8_t(is_trained) | uint8_t(do_pca) << 1);
  w.write<int32_t>(max_train_per_dim);
  w.write_vector(mean);
  write_transform_record(itq, w);
  write_transform_record(pca_then_itq, w);
}

// ---------------------------------------------------------------- remap
RemapDimensionsTransform::RemapDimensionsTransform(int d_in_, int d_out_, bool uniform)
    : VectorTransform(d_in_, d_out_), map(size_t(d_out_), -1) {
  if (uniform) {
    if (d_in_ < d_out_) {
      for (int i = 0; i < d_in_; ++i) map[size_t(int64_t(i) * d_out_ / d_in_)] = i;
    } else {
      for (int i = 0; i < d_out_; ++i) map[size_t(i)] = int(int64_t(i) * d_in_ / d_out_);
    }
  } else {
    for (int i = 0; i < d_in_ && i < d_out_; ++i) map[size_t(i)] = i;
  }
}

RemapDimensionsTransform::RemapDimensionsTransform(int d_in_, int d_out_, const int* map_)
    : VectorTransform(d_in_, d_out_), map(map_, map_ + d_out_) {
  for (int v : map)
    ANNVIL_CHECK(v >= -1 && v < d_in_, "RemapDimensionsTransform: map entries must be -1 or in [0, d_in=", d_in_,
                 "), got ", v);
}

void RemapDimensionsTransform::apply_noalloc(idx_t n, const float* x, float* xt) const {
  for (idx_t i = 0; i < n; ++i) {
    const float* xi = x + size_t(i) * d_in;
    float* o = xt + size_t(i) * d_out;
    for (int j = 0; j < d_out; ++j) o[j] = map[size_t(j)] < 0 ? 0.f : xi[map[size_t(j)]];
  }
}

void RemapDimensionsTransform::reverse_transform(idx_t n, const float* xt, float* x) const {
  std::memset(x, 0, sizeof(float) * size_t(n) * d_in);
  for (idx_t i = 0; i < n; ++i) {
    float* o = x + size_t(i) * d_in;
    const float* yi = xt + size_t(i) * d_out;
    for (int j = 0; j < d_out; ++j)
      if (map[size_t(j)] >= 0) o[map[size_t(j)]] = yi[j];
  }
}

void RemapDimensionsTransform::check_identical(const VectorTransform& other) const {
  VectorTransform::check_identical(other);
  auto* o = dynamic_cast<const RemapDimensionsTransform*>(&other);
  ANNVIL_CHECK(o && o->map == map, "RemapDimensionsTransform: the maps differ");
}

void RemapDimensionsTransform::write_payload(Writer& w) const {
  w.write<int32_t>(d_in);
  w.write<int32_t>(d_out);
  w.write_vector(map);
}

// ---------------------------------------------------------------- centering
CenteringTransform::CenteringTransform(int d) : VectorTransform(d, d) { is_trained = false; }

void CenteringTransform::train(idx_t n, const float* x) {
  ANNVIL_CHECK(n > 0, "CenteringTransform needs at least one training vector");
  std::vector<double> m(size_t(d_in), 0.0);
  for (idx_t i = 0; i < n; ++i)
    for (int j = 0; j < d_in; ++j) m[size_t(j)] += x[size_t(i) * d_in + size_t(j)];
  mean.resize(size_t(d_in));
  for (int j = 0; j < d_in; ++j) mean[size_t(j)] = float(m[size_t(j)] / double(n));
  is_trained = true;
}

void CenteringTransform::apply_noalloc(idx_t n, const float* x, float* xt) const {
  check_trained();
  for (idx_t i = 0; i < n; ++i)
    for (int j = 0; j < d_in; ++j) xt[size_t(i) * d_in + j] = x[size_t(i) * d_in + j] - mean[size_t(j)];
}

void CenteringTransform::reverse_transform(idx_t n, const float* xt, float* x) const {
  check_trained();
  for (idx_t i = 0; i < n; ++i)
    for (int j = 0; j < d_in; ++j) x[size_t(i) * d_in + j] = xt[size_t(i) * d_in + j] + mean[size_t(j)];
}

void CenteringTransform::check_identical(const VectorTransform& other) const {
  VectorTransform::check_identical(other);
  auto* o = dynamic_cast<const CenteringTransform*>(&other);
  ANNVIL_CHECK(o && o->mean == mean, "CenteringTransform: the means differ");
}

void CenteringTransform::write_payload(Writer& w) const {
  w.write<int32_t>(d_in);
  w.write<int32_t>(d_out);
  w.write<uint8_t>(is_trained);
  w.write_vector(mean);
}

// ---------------------------------------------------------------- Hadamard
namespace {
int next_pow2(int n) {
  ANNVIL_CHECK(n > 0 && n <= (1 << 30), "HadamardRotation: d must be in [1, 2^30], got ", n);
  int p = 1;
  while (p < n) p *= 2;
  return p;
}
void fwht(float* buf, size_t n) {
  for (size_t step = 1; step < n; step *= 2)
    for (size_t i = 0; i < n; i += step * 2)
      for (size_t j = i; j < i + step; ++j) {
        float a = buf[j], c = buf[j + step];
        buf[j] = a + c;
        buf[j + step] = a - c;
      }
}
}  // namespace

HadamardRotation::HadamardRotation(int d, uint32_t seed_) : VectorTransform(d, next_pow2(d)) { init(seed_); }

void HadamardRotation::init(uint32_t seed_) {
  seed = seed_;
  uint64_t state = seed_;  // Faiss's SplitMix64RandomGenerator, rand_int(2) = next() % 2
  auto next = [&state]() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  for (auto* s : {&signs1, &signs2, &signs3}) {
    s->resize(size_t(d_out));
    for (auto& v : *s) v = (next() % 2 == 0) ? -1.f : 1.f;
  }
  is_trained = true;
}

void HadamardRotation::train(idx_t, const float*) { init(seed != 0 ? seed : 12345); }

void HadamardRotation::apply_noalloc(idx_t n, const float* x, float* xt) const {
  check_trained();
  const size_t d = size_t(d_in), p = size_t(d_out);
  const float scale = 1.0f / (float(p) * std::sqrt(float(p)));
  ParallelErrors perr;
#pragma omp parallel for if (n > 64) schedule(static)
  for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
    const float* xi = x + size_t(i) * d;
    float* o = xt + size_t(i) * p;
    for (size_t j = 0; j < d; ++j) o[j] = xi[j] * signs1[j];
    for (size_t j = d; j < p; ++j) o[j] = 0.f;
    fwht(o, p);
    for (size_t j = 0; j < p; ++j) o[j] *= signs2[j];
    fwht(o, p);
    for (size_t j = 0; j < p; ++j) o[j] *= signs3[j];
    fwht(o, p);
    for (size_t j = 0; j < p; ++j) o[j] *= scale;
  } ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void HadamardRotation::reverse_transform(idx_t n, const float* xt, float* x) const {
  // H H = p I, so the inverse of s H D3 H D2 H D1 is s D1 H D2 H D3 H (s = p^-3/2)
  check_trained();
  const size_t d = size_t(d_in), p = size_t(d_out);
  const float scale = 1.0f / (float(p) * std::sqrt(float(p)));
  std::vector<float> buf(p);
  for (idx_t i = 0; i < n; ++i) {
    std::copy(xt + size_t(i) * p, xt + size_t(i + 1) * p, buf.begin());
    fwht(buf.data(), p);
    for (size_t j = 0; j < p; ++j) buf[j] *= signs3[j];
    fwht(buf.data(), p);
    for (size_t j = 0; j < p; ++j) buf[j] *= signs2[j];
    fwht(buf.data(), p);
    float* o = x + size_t(i) * d;
    for (size_t j = 0; j < d; ++j) o[j] = buf[j] * signs1[j] * scale;
  }
}

void HadamardRotation::check_identical(const VectorTransform& other) const {
  VectorTransform::check_identical(other);
  auto* o = dynamic_cast<const HadamardRotation*>(&other);
  ANNVIL_CHECK(o && o->seed == seed, "HadamardRotation: the seeds differ");
}

void HadamardRotation::write_payload(Writer& w) const {
  w.write<int32_t>(d_in);
  w.write<int32_t>(d_out);
  w.write<uint32_t>(seed);
}

// ---------------------------------------------------------------- OPQ
OPQMatrix::OPQMatrix(int d, int M_, int d2) : LinearTransform(d, d2 < 0 ? d : d2, false), M(M_) {
  ANNVIL_CHECK(M_ > 0, "OPQMatrix: M must be positive, got ", M_);
  ANNVIL_CHECK(d_out % M_ == 0, "OPQMatrix: the output dimension d2=", d_out, " must be a multiple of M=", M_);
  is_orthonormal = true;
}

void OPQMatrix::train(idx_t n_in, const float* x_in) {
  ANNVIL_CHECK(niter >= 0 && niter_pq >= 0 && niter_pq_0 >= 0, "OPQMatrix: iteration counts must be non-negative");
  ANNVIL_CHECK(nbits >= 1 && nbits <= 16, "OPQMatrix: nbits must be between 1 and 16");
  const idx_t ksub = idx_t(1) << nbits;
  ANNVIL_CHECK(n_in >= ksub, "OPQMatrix needs at least ", ksub, " training vectors (2^nbits), got ", n_in);
  const size_t din = size_t(d_in), dout = size_t(d_out);

  // subsample
  std::vector<float> xs;
  const float* x = x_in;
  idx_t n = n_in;
  if (max_train_points > 0 && size_t(n_in) > max_train_points) {
    n = idx_t(max_train_points);
    std::mt19937_64 rng(uint64_t(seed) + 1);
    std::vector<idx_t> perm(static_cast<size_t>(n_in));
    std::iota(perm.begin(), perm.end(), 0);
    for (idx_t i = 0; i < n; ++i) std::swap(perm[size_t(i)], perm[size_t(std::uniform_int_distribution<idx_t>(i, n_in - 1)(rng))]);
    std::sort(perm.begin(), perm.begin() + n);
    xs.resize(size_t(n) * din);
    for (idx_t i = 0; i < n; ++i) std::memcpy(&xs[size_t(i) * din], x_in + size_t(perm[size_t(i)]) * din, 4 * din);
    x = xs.data();
  }
  // X^T (d_in x n), for the Y^T X products
  std::vector<float> xt(din * size_t(n));
  for (idx_t i = 0; i < n; ++i)
    for (size_t j = 0; j < din; ++j) xt[j * size_t(n) + size_t(i)] = x[size_t(i) * din + j];

  random_orthonormal(d_out, d_in, seed, A);
  is_trained = true;  // apply_noalloc needs it
  ProductQuantizer pq(dout, size_t(M), size_t(nbits));
  pq.cp.seed = seed;
  std::vector<float> xproj(size_t(n) * dout), yrec(size_t(n) * dout), yt(dout * size_t(n)), prod(dout * din);
  std::vector<uint8_t> codes(size_t(n) * pq.code_size);
  std::vector<double> md(dout * din), rd(dout * din);
  for (int it = 0; it < niter; ++it) {
    apply_noalloc(n, x, xproj.data());
    pq.train_hot(n, xproj.data(), it == 0 ? niter_pq_0 : niter_pq);
    pq.compute_codes(n, xproj.data(), codes.data());
    pq.decode(n, codes.data(), yrec.data());
    if (verbose) {
      double err = 0;
      for (size_t i = 0; i < yrec.size(); ++i) err += double(xproj[i] - yrec[i]) * double(xproj[i] - yrec[i]);
      std::fprintf(stderr, "OPQ iteration %d: PQ reconstruction MSE %g\n", it, err / double(n));
    }
    for (idx_t i = 0; i < n; ++i)
      for (size_t j = 0; j < dout; ++j) yt[j * size_t(n) + size_t(i)] = yrec[size_t(i) * dout + j];
    // Y^T X: row r of Y^T against row c of X^T
    pairwise_distances(dout, yt.data(), din, xt.data(), size_t(n), METRIC_INNER_PRODUCT, prod.data());
    std::copy(prod.begin(), prod.end(), md.begin());
    polar_factor(d_out, d_in, md.data(), rd.data());
    A.assign(rd.begin(), rd.end());
  }
}

void OPQMatrix::write_payload(Writer& w) const {
  LinearTransform::write_payload(w);
  w.write<int32_t>(M);
  w.write<int32_t>(niter);
  w.write<int32_t>(niter_pq);
  w.write<int32_t>(niter_pq_0);
  w.write<uint64_t>(max_train_points);
  w.write<int32_t>(nbits);
  w.write<int32_t>(seed);
}

// ---------------------------------------------------------------- normalization
NormalizationTransform::NormalizationTransform(int d, float norm_) : VectorTransform(d, d), norm(norm_) {
  ANNVIL_CHECK(norm_ == 2.f, "NormalizationTransform supports the L2 norm (norm=2) only, got ", norm_);
}

void NormalizationTransform::apply_noalloc(idx_t n, const float* x, float* xt) const {
  std::memcpy(xt, x, sizeof(float) * size_t(n) * d_in);
  normalize_rows(size_t(n), xt, size_t(d_in));
}

void NormalizationTransform::reverse_transform(idx_t n, const float* xt, float* x) const {
  std::memcpy(x, xt, sizeof(float) * size_t(n) * d_in);
}

void NormalizationTransform::check_identical(const VectorTransform& other) const {
  VectorTransform::check_identical(other);
  auto* o = dynamic_cast<const NormalizationTransform*>(&other);
  ANNVIL_CHECK(o && o->norm == norm, "NormalizationTransform: the norms differ");
}

void NormalizationTransform::write_payload(Writer& w) const {
  w.write<int32_t>(d_in);
  w.write<int32_t>(d_out);
  w.write<float>(norm);
}

// ---------------------------------------------------------------- records
void write_transform_record(const VectorTransform& vt, Writer& w) {
  w.write_string(vt.type_tag());
  vt.write_payload(w);
}

namespace {
thread_local int transform_record_depth = 0;
}

VectorTransformPtr read_transform_record(Reader& r) {
  // ITQTransform nests records: bound the depth so a crafted file cannot
  // exhaust the stack
  struct Depth {
    Depth() { ++transform_record_depth; }
    ~Depth() { --transform_record_depth; }
  } depth;
  if (transform_record_depth > 4) r.corrupt("vector transforms nested too deeply");
  std::string tag = r.read_string();
  int32_t din = r.read<int32_t>(), dout = r.read<int32_t>();
  if (din <= 0 || dout <= 0 || din > (1 << 20) || dout > (1 << 20)) r.corrupt("bad transform dimensions");
  if (tag == "L2Norm") {
    float norm = r.read<float>();
    if (din != dout || norm != 2.f) r.corrupt("bad normalization transform");
    return std::make_shared<NormalizationTransform>(din, norm);
  }
  if (tag == "LinearTransform") {
    auto t = std::make_shared<LinearTransform>(din, dout, false);
    t->read_payload(r);
    return t;
  }
  if (tag == "RandomRotationMatrix") {
    auto t = std::make_shared<RandomRotationMatrix>(din, dout);
    t->read_payload(r);
    return t;
  }
  if (tag == "OPQMatrix") {
    // M is stored after the matrix; build with M = 1 (always valid) and fix it
    auto t = std::make_shared<OPQMatrix>(din, 1, dout);
    t->read_payload(r);
    t->M = r.read<int32_t>();
    t->niter = r.read<int32_t>();
    t->niter_pq = r.read<int32_t>();
    t->niter_pq_0 = r.read<int32_t>();
    t->max_train_points = r.read<uint64_t>();
    t->nbits = r.read<int32_t>();
    t->seed = r.read<int32_t>();
    if (t->M <= 0 || dout % t->M != 0) r.corrupt("bad OPQMatrix M");
    return t;
  }
  if (tag == "PCAMatrix") {
    auto t = std::make_shared<PCAMatrix>(din, dout);
    t->read_payload(r);
    t->eigen_power = r.read<float>();
    t->epsilon = r.read<float>();
    t->random_rotation = r.read<uint8_t>() != 0;
    t->max_points_per_d = r.read<uint64_t>();
    t->balanced_bins = r.read<int32_t>();
    r.read_vector(t->mean);
    r.read_vector(t->eigenvalues);
    r.read_vector(t->PCAMat);
    if (dout > din) r.corrupt("PCAMatrix outputs more dimensions than it reads");
    if (t->is_trained && (t->mean.size() != size_t(din) || t->eigenvalues.size() != size_t(din) ||
                          t->PCAMat.size() % size_t(din) != 0 || t->PCAMat.size() < size_t(din) * dout ||
                          t->PCAMat.size() > size_t(din) * din || t->b.size() != size_t(dout)))
      r.corrupt("PCAMatrix arrays do not match its dimensions");
    return t;
  }
  if (tag == "ITQMatrix") {
    if (din != dout) r.corrupt("ITQMatrix must be square");
    auto t = std::make_shared<ITQMatrix>(din);
    t->read_payload(r);
    t->max_iter = r.read<int32_t>();
    t->seed = r.read<int32_t>();
    r.read_vector(t->init_rotation);
    if (!t->init_rotation.empty() && t->init_rotation.size() != size_t(din) * din)
      r.corrupt("ITQMatrix init_rotation size");
    return t;
  }
  if (tag == "ITQTransform") {
    uint8_t flags = r.read<uint8_t>();
    bool do_pca = (flags >> 1) & 1;
    if (dout > din || (!do_pca && din != dout)) r.corrupt("bad ITQTransform dimensions");
    auto t = std::make_shared<ITQTransform>(din, dout, do_pca);
    t->is_trained = flags & 1;
    t->max_train_per_dim = r.read<int32_t>();
    r.read_vector(t->mean);
    auto itq = std::dynamic_pointer_cast<ITQMatrix>(read_transform_record(r));
    auto lt = std::dynamic_pointer_cast<LinearTransform>(read_transform_record(r));
    if (!itq || !lt || itq->d_in != dout || lt->d_in != din || lt->d_out != dout ||
        lt->type_tag() != "LinearTransform")
      r.corrupt("bad ITQTransform parts");
    if (t->is_trained && (t->mean.size() != size_t(din) || !lt->is_trained)) r.corrupt("bad ITQTransform mean");
    t->itq = *itq;
    t->pca_then_itq = *lt;
    return t;
  }
  if (tag == "RemapDimensions") {
    std::vector<int> map;
    r.read_vector(map);
    if (map.size() != size_t(dout)) r.corrupt("RemapDimensionsTransform map size");
    for (int v : map)
      if (v < -1 || v >= din) r.corrupt("RemapDimensionsTransform map entry out of range");
    return std::make_shared<RemapDimensionsTransform>(din, dout, map.data());
  }
  if (tag == "Centering") {
    if (din != dout) r.corrupt("CenteringTransform must be square");
    auto t = std::make_shared<CenteringTransform>(din);
    t->is_trained = r.read<uint8_t>() != 0;
    r.read_vector(t->mean);
    if (t->is_trained && t->mean.size() != size_t(din)) r.corrupt("CenteringTransform mean size");
    return t;
  }
  if (tag == "HadamardRotation") {
    uint32_t seed = r.read<uint32_t>();
    auto t = std::make_shared<HadamardRotation>(din, seed);
    if (t->d_out != dout) r.corrupt("HadamardRotation output dimension");
    return t;
  }
  r.corrupt("unknown vector transform type '" + tag + "'");
}

// ---------------------------------------------------------------- IndexPreTransform
IndexPreTransform::IndexPreTransform(IndexPtr idx)
    : Index(idx ? idx->d : 1, idx ? idx->metric_type : METRIC_L2, /*extra_metrics=*/true), index(idx) {
  ANNVIL_CHECK(idx != nullptr, "IndexPreTransform needs an index");
  refresh();
}

IndexPreTransform::IndexPreTransform(VectorTransformPtr vt, IndexPtr idx) : IndexPreTransform(std::move(idx)) {
  prepend_transform(std::move(vt));
}

void IndexPreTransform::prepend_transform(VectorTransformPtr vt) {
  ANNVIL_CHECK(vt != nullptr, "transform is None");
  int next_d = chain.empty() ? index->d : chain.front()->d_in;
  ANNVIL_CHECK(vt->d_out == next_d, "the transform outputs d_out=", vt->d_out, " dimensions but ",
               chain.empty() ? "the index" : "the next transform", " expects ", next_d);
  chain.insert(chain.begin(), std::move(vt));
  refresh();
}

void IndexPreTransform::refresh() {
  d = chain.empty() ? index->d : chain.front()->d_in;
  metric_type = index->metric_type;
  ntotal = index->ntotal;
  is_trained = index->is_trained;
  for (auto& t : chain) is_trained = is_trained && t->is_trained;
}

std::vector<float> IndexPreTransform::apply_chain(idx_t n, const float* x) const {
  std::vector<float> cur(x, x + size_t(n) * d), next;
  for (auto& t : chain) {
    next.resize(size_t(n) * t->d_out);
    t->apply_noalloc(n, cur.data(), next.data());
    cur.swap(next);
  }
  return cur;
}

void IndexPreTransform::reverse_chain(idx_t n, const float* xt, float* x) const {
  std::vector<float> cur(xt, xt + size_t(n) * index->d), next;
  for (size_t i = chain.size(); i-- > 0;) {
    next.resize(size_t(n) * chain[i]->d_in);
    chain[i]->reverse_transform(n, cur.data(), next.data());
    cur.swap(next);
  }
  std::memcpy(x, cur.data(), sizeof(float) * cur.size());
}

void IndexPreTransform::train(idx_t n, const float* x) {
  std::vector<float> cur(x, x + size_t(n) * d), next;
  for (auto& t : chain) {
    if (!t->is_trained) t->train(n, cur.data());
    next.resize(size_t(n) * t->d_out);
    t->apply_noalloc(n, cur.data(), next.data());
    cur.swap(next);
  }
  index->train(n, cur.data());
  refresh();
}

void IndexPreTransform::add(idx_t n, const float* x) {
  check_trained();
  auto xt = apply_chain(n, x);
  index->add(n, xt.data());
  ntotal = index->ntotal;
}

void IndexPreTransform::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  check_trained();
  auto xt = apply_chain(n, x);
  index->add_with_ids(n, xt.data(), ids);
  ntotal = index->ntotal;
}

void IndexPreTransform::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                               const SearchParameters* params) const {
  check_trained();
  auto xt = apply_chain(n, x);
  index->search(n, xt.data(), k, D, I, params);
}

void IndexPreTransform::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                                     const SearchParameters* params) const {
  check_trained();
  auto xt = apply_chain(n, x);
  index->range_search(n, xt.data(), radius, result, params);
}

void IndexPreTransform::reconstruct(idx_t key, float* out) const {
  std::vector<float> r(size_t(index->d));
  index->reconstruct(key, r.data());
  reverse_chain(1, r.data(), out);
}

void IndexPreTransform::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  std::vector<float> r(size_t(ni) * index->d);
  index->reconstruct_n(i0, ni, r.data());
  reverse_chain(ni, r.data(), out);
}

void IndexPreTransform::sa_encode(idx_t n, const float* x, uint8_t* codes) const {
  check_trained();
  auto xt = apply_chain(n, x);
  index->sa_encode(n, xt.data(), codes);
}

void IndexPreTransform::sa_decode(idx_t n, const uint8_t* codes, float* x) const {
  check_trained();
  std::vector<float> xt(size_t(n) * size_t(index->d));
  index->sa_decode(n, codes, xt.data());
  reverse_chain(n, xt.data(), x);
}

void IndexPreTransform::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
  check_trained();
  index->add_sa_codes(n, codes, ids);
  ntotal = index->ntotal;
}

void IndexPreTransform::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  auto* o = dynamic_cast<const IndexPreTransform*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  ANNVIL_CHECK(o->chain.size() == chain.size(), "cannot merge IndexPreTransforms with different transform chains");
  for (size_t i = 0; i < chain.size(); ++i) {
    try {
      chain[i]->check_identical(*o->chain[i]);
    } catch (const Error& e) {
      ANNVIL_THROW(value, "cannot merge IndexPreTransforms: transform ", i, " (", chain[i]->type_tag(),
                   ") differs (train one index and clone it): ", e.what());
    }
  }
  index->check_compatible_for_merge(*o->index);
}

void IndexPreTransform::merge_from(Index& other, idx_t add_id) {
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexPreTransform&>(other);
  index->merge_from(*o.index, add_id);
  ntotal = index->ntotal;
  o.ntotal = o.index->ntotal;
}

void IndexPreTransform::search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                                               const SearchParameters* params) const {
  check_trained();
  auto xt = apply_chain(n, x);
  std::vector<float> rt(size_t(n) * size_t(k) * size_t(index->d));
  index->search_and_reconstruct(n, xt.data(), k, D, I, rt.data(), params);
  reverse_chain(n * k, rt.data(), recons);
}

size_t IndexPreTransform::remove_ids(const IDSelector& sel) {
  size_t r = index->remove_ids(sel);
  ntotal = index->ntotal;
  return r;
}

void IndexPreTransform::reset() {
  index->reset();
  ntotal = 0;
}

size_t IndexPreTransform::memory_usage() const { return sizeof(*this) + index->memory_usage(); }

void IndexPreTransform::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write<uint64_t>(uint64_t(chain.size()));
  for (auto& t : chain) write_transform_record(*t, w);
  write_index_record(*index, w);
}

namespace {
IndexPtr read_pretransform(Reader& r) {
  IndexHeader h = read_header_fields(r);
  size_t nchain = r.read_count(1024, "transform chain length");
  std::vector<VectorTransformPtr> chain;
  for (size_t i = 0; i < nchain; ++i) chain.push_back(read_transform_record(r));
  IndexPtr sub = read_index_record(r);
  auto idx = std::make_shared<IndexPreTransform>(sub);
  try {
    for (size_t i = chain.size(); i-- > 0;) idx->prepend_transform(chain[i]);
  } catch (const Error&) {
    r.corrupt("transform chain dimensions do not match");
  }
  if (idx->d != h.d || idx->ntotal != h.ntotal) r.corrupt("pre-transform index does not match its parts");
  return idx;
}
ANNVIL_REGISTER_INDEX("PreTransform", read_pretransform);
}  // namespace

}  // namespace annvil
