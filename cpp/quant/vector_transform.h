// Vector transforms applied before indexing (Faiss's VectorTransform family):
// LinearTransform (y = A x + b), RandomRotationMatrix, PCAMatrix (with
// whitening and a random rotation after the projection), ITQMatrix /
// ITQTransform (a rotation that makes sign binarisation lose less), OPQMatrix
// (a trained rotation that makes the sub-spaces of a product quantizer fit
// the data better), NormalizationTransform (rows scaled to unit L2 norm),
// CenteringTransform, RemapDimensionsTransform (select / pad dimensions),
// HadamardRotation.  IndexPreTransform, which chains transforms in front of
// any index, is in index_pretransform.h.
//
// The dense linear algebra they need (Householder QR, a symmetric
// eigensolver, the polar factor) is in linalg.h: annvil links no LAPACK.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/index.h"
#include "quant/linalg.h"

namespace annvil {

struct VectorTransform {
  int d_in = 0, d_out = 0;
  bool is_trained = true;

  VectorTransform(int d_in, int d_out);
  virtual ~VectorTransform() = default;

  // x: n * d_in training vectors
  virtual void train(idx_t n, const float* x);
  // xt: n * d_out
  virtual void apply_noalloc(idx_t n, const float* x, float* xt) const = 0;
  std::vector<float> apply(idx_t n, const float* x) const;
  // x: n * d_in from xt: n * d_out (exact inverse when the transform is invertible)
  virtual void reverse_transform(idx_t n, const float* xt, float* x) const;

  // raise unless `other` is the same transform (type, dimensions,
  // parameters), so that indexes behind them can be merged
  virtual void check_identical(const VectorTransform& other) const;

  virtual std::string type_tag() const = 0;
  virtual void write_payload(Writer& w) const = 0;
  void check_trained() const;
};

using VectorTransformPtr = std::shared_ptr<VectorTransform>;

// A tagged record, like write_index_record for indexes.
void write_transform_record(const VectorTransform& vt, Writer& w);
VectorTransformPtr read_transform_record(Reader& r);

struct LinearTransform : VectorTransform {
  bool have_bias = false;
  bool is_orthonormal = false;  // rows (d_out <= d_in) or columns orthonormal: reverse is A^T
  std::vector<float> A;         // d_out * d_in, row-major
  std::vector<float> b;         // d_out

  LinearTransform(int d_in, int d_out, bool have_bias = false);

  void apply_noalloc(idx_t n, const float* x, float* xt) const override;
  // x = A^T (y - b): y n * d_out, x n * d_in (the reverse when A has orthonormal rows)
  void transform_transpose(idx_t n, const float* y, float* x) const;
  void reverse_transform(idx_t n, const float* xt, float* x) const override;
  // is_orthonormal = (A A^T == I within 4e-5), as Faiss; false when d_out > d_in
  void set_is_orthonormal();
  void check_identical(const VectorTransform& other) const override;
  std::string type_tag() const override { return "LinearTransform"; }
  void write_payload(Writer& w) const override;
  void read_payload(Reader& r);
};

// Optimized product quantization (Ge et al.): alternately train a PQ on the
// rotated data and solve the orthogonal Procrustes problem
//   R = argmin_{R R^T = I} || X R^T - Y ||_F  =  U V^T   where  Y^T X = U S V^T
// (Y: the PQ reconstructions of the rotated data), starting from a random
// rotation.  A = R is d_out x d_in.
struct OPQMatrix : LinearTransform {
  int M;
  int niter = 50;       // alternations
  int niter_pq = 4;     // k-means iterations per alternation (hot started)
  int niter_pq_0 = 40;  // k-means iterations of the first alternation
  size_t max_train_points = 256 * 256;
  int nbits = 8;  // bits of the PQ used for training
  int seed = 1234;
  bool verbose = false;

  OPQMatrix(int d, int M, int d2 = -1);
  void train(idx_t n, const float* x) override;
  std::string type_tag() const override { return "OPQMatrix"; }
  void write_payload(Writer& w) const override;
};

// A random orthonormal matrix (d_out x d_in), fixed by a seed, the same as
// Faiss's for the same seed (up to float rounding): Faiss's float_randn
// values, orthonormalised by Householder QR with LAPACK's sign conventions.
// d_out > d_in: the first d_in columns of a d_out x d_out rotation (a tight
// frame: A^T A = I).
struct RandomRotationMatrix : LinearTransform {
  RandomRotationMatrix(int d_in, int d_out);
  void init(int seed);
  void train(idx_t n, const float* x) override;  // init(12345) (as Faiss: retraining re-draws the same matrix)
  std::string type_tag() const override { return "RandomRotationMatrix"; }
};

// Principal component analysis (Faiss's PCAMatrix):
//   y = A (x - mean),  A = diag((lambda_i + epsilon)^eigen_power) P[0:d_out]
// P: the eigenvectors of the covariance of the training set, largest
// eigenvalue lambda first (rows of PCAMat, d_in * d_in; d_in * n when fewer
// training vectors n than dimensions: then computed from the n x n Gram
// matrix and the last eigenvalues are 0).  eigen_power = -0.5 whitens.
// random_rotation: A = R diag(lambda_i^eigen_power) P[0:d_out] with R
// Faiss's RandomRotationMatrix(d_out, d_out).init(5), which spreads the
// variance evenly over the output dimensions.  balanced_bins > 0 reorders
// the output dimensions so that each of the bins (d_out / bins consecutive
// dimensions) gets about the same variance (greedy, as Faiss).
// Eigenvectors are defined up to sign; annvil picks the sign that makes the
// largest component of each positive (LAPACK's choice is arbitrary).
// Training uses at most max_points_per_d * d_in vectors (a random subset).
struct PCAMatrix : LinearTransform {
  float eigen_power = 0.f;
  float epsilon = 0.f;
  bool random_rotation = false;
  size_t max_points_per_d = 1000;
  int balanced_bins = 0;
  std::vector<float> mean;         // d_in
  std::vector<float> eigenvalues;  // d_in, decreasing
  std::vector<float> PCAMat;       // d_in * d_in (or d_in * n): one eigenvector per row

  PCAMatrix(int d_in, int d_out, float eigen_power = 0.f, bool random_rotation = false);
  void train(idx_t n, const float* x) override;
  // A and b from mean, eigenvalues and PCAMat (after changing eigen_power, epsilon...)
  void prepare_Ab();
  void copy_from(const PCAMatrix& other);
  std::string type_tag() const override { return "PCAMatrix"; }
  void write_payload(Writer& w) const override;
};

// Iterative quantization (Gong & Lazebnik): a rotation R (d x d) that
// minimises the binarisation loss || sign(X R) - X R ||_F by alternating
//   B = sign(X R);   R = polar(X^T B)  (orthogonal Procrustes)
// for max_iter iterations from RandomRotationMatrix(d, d).init(seed) (or
// init_rotation, d * d doubles, row-major R).  A = R^T.
// Faiss builds the update from the raw LAPACK factors (U V instead of
// U V^T), which depends on LAPACK's sign choices; annvil uses the
// Procrustes solution itself (docs/faiss-differences.md).
struct ITQMatrix : LinearTransform {
  int max_iter = 50;
  int seed = 123;
  std::vector<double> init_rotation;

  explicit ITQMatrix(int d);
  void train(idx_t n, const float* x) override;
  std::string type_tag() const override { return "ITQMatrix"; }
  void write_payload(Writer& w) const override;
};

// Faiss's ITQTransform: x -> normalise(x - mean), then (do_pca) a PCA to
// d_out dimensions, then an ITQ rotation; the PCA and the rotation are
// merged into pca_then_itq.  Trains on at most max(d_in *
// max_train_per_dim, 32768) vectors.
struct ITQTransform : VectorTransform {
  std::vector<float> mean;  // d_in
  bool do_pca = false;
  ITQMatrix itq;
  int max_train_per_dim = 10;
  LinearTransform pca_then_itq;  // d_out x d_in

  ITQTransform(int d_in, int d_out, bool do_pca);
  void train(idx_t n, const float* x) override;
  void apply_noalloc(idx_t n, const float* x, float* xt) const override;
  void check_identical(const VectorTransform& other) const override;
  std::string type_tag() const override { return "ITQTransform"; }
  void write_payload(Writer& w) const override;
};

// Output dimension j is input dimension map[j], or 0 where map[j] = -1.
// uniform: the input dimensions spread evenly over the output (d_in < d_out)
// or every (d_in / d_out)-th one kept; otherwise the first min(d_in, d_out).
// reverse_transform is exact when the map is a permutation.
struct RemapDimensionsTransform : VectorTransform {
  std::vector<int> map;  // d_out

  RemapDimensionsTransform(int d_in, int d_out, bool uniform = true);
  RemapDimensionsTransform(int d_in, int d_out, const int* map);
  void apply_noalloc(idx_t n, const float* x, float* xt) const override;
  void reverse_transform(idx_t n, const float* xt, float* x) const override;
  void check_identical(const VectorTransform& other) const override;
  std::string type_tag() const override { return "RemapDimensions"; }
  void write_payload(Writer& w) const override;
};

// Subtracts the mean of the training set (reverse: adds it).
struct CenteringTransform : VectorTransform {
  std::vector<float> mean;  // d
  explicit CenteringTransform(int d);
  void train(idx_t n, const float* x) override;
  void apply_noalloc(idx_t n, const float* x, float* xt) const override;
  void reverse_transform(idx_t n, const float* xt, float* x) const override;
  void check_identical(const VectorTransform& other) const override;
  std::string type_tag() const override { return "Centering"; }
  void write_payload(Writer& w) const override;
};

// Faiss's HadamardRotation: x zero-padded to p = the next power of 2 >= d,
// then three rounds of (sign flips, fast Walsh-Hadamard transform), scaled
// by p^-3/2 so that the whole is orthonormal.  Signs from SplitMix64(seed),
// as Faiss.
struct HadamardRotation : VectorTransform {
  uint32_t seed = 12345;
  std::vector<float> signs1, signs2, signs3;  // p each
  explicit HadamardRotation(int d, uint32_t seed = 12345);
  void init(uint32_t seed);
  void train(idx_t n, const float* x) override;
  void apply_noalloc(idx_t n, const float* x, float* xt) const override;
  void reverse_transform(idx_t n, const float* xt, float* x) const override;
  void check_identical(const VectorTransform& other) const override;
  std::string type_tag() const override { return "HadamardRotation"; }
  void write_payload(Writer& w) const override;
};

// Rows scaled to unit L2 norm (zero rows stay zero); reverse is the identity.
struct NormalizationTransform : VectorTransform {
  float norm = 2.f;
  explicit NormalizationTransform(int d, float norm = 2.f);
  void apply_noalloc(idx_t n, const float* x, float* xt) const override;
  void reverse_transform(idx_t n, const float* xt, float* x) const override;
  void check_identical(const VectorTransform& other) const override;
  std::string type_tag() const override { return "L2Norm"; }
  void write_payload(Writer& w) const override;
};

}  // namespace annvil
