// Dense linear algebra for the transforms (linalg.h): annvil links no LAPACK.
#include "quant/linalg.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace annvil {

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

}  // namespace annvil
