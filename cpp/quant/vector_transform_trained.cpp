// The trained vector transforms (vector_transform.h): PCAMatrix, ITQMatrix,
// ITQTransform and OPQMatrix, with the training helpers they share.
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
        if (best < 0)
          best = int(std::find_if(counter.begin(), counter.end(), [&](int c) { return c < dsub; }) - counter.begin());
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
  ANNVIL_CHECK(do_pca_ || d_in_ == d_out_, "ITQTransform without PCA needs d_in == d_out, got ", d_in_, " and ",
               d_out_);
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
    for (idx_t i = 0; i < n; ++i)
      std::swap(perm[size_t(i)], perm[size_t(std::uniform_int_distribution<idx_t>(i, n_in - 1)(rng))]);
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

}  // namespace annvil
