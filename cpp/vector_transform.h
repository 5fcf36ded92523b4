// Vector transforms applied before indexing (Faiss's VectorTransform family):
// LinearTransform (y = A x + b), OPQMatrix (a trained rotation that makes the
// sub-spaces of a product quantizer fit the data better),
// NormalizationTransform (rows scaled to unit L2 norm), and IndexPreTransform,
// which chains transforms in front of any index.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "index.h"

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
  void reverse_transform(idx_t n, const float* xt, float* x) const override;
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
  int nbits = 8;        // bits of the PQ used for training
  int seed = 1234;
  bool verbose = false;

  OPQMatrix(int d, int M, int d2 = -1);
  void train(idx_t n, const float* x) override;
  std::string type_tag() const override { return "OPQMatrix"; }
  void write_payload(Writer& w) const override;
};

// A random orthonormal matrix (d_out x d_in), fixed by a seed.
struct RandomRotationMatrix : LinearTransform {
  RandomRotationMatrix(int d_in, int d_out);
  void init(int seed);
  void train(idx_t n, const float* x) override;
  std::string type_tag() const override { return "RandomRotationMatrix"; }
};

// Rows scaled to unit L2 norm (zero rows stay zero); reverse is the identity.
struct NormalizationTransform : VectorTransform {
  float norm = 2.f;
  explicit NormalizationTransform(int d, float norm = 2.f);
  void apply_noalloc(idx_t n, const float* x, float* xt) const override;
  void reverse_transform(idx_t n, const float* xt, float* x) const override;
  std::string type_tag() const override { return "L2Norm"; }
  void write_payload(Writer& w) const override;
};

// Polar factor of a (rows x cols) row-major matrix: the closest matrix with
// orthonormal rows or columns, U V^T from a one-sided Jacobi SVD.
void polar_factor(int rows, int cols, const double* a, double* out);

struct IndexPreTransform : Index {
  std::vector<VectorTransformPtr> chain;
  IndexPtr index;

  explicit IndexPreTransform(IndexPtr index);
  IndexPreTransform(VectorTransformPtr vt, IndexPtr index);
  void prepend_transform(VectorTransformPtr vt);

  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  bool remove_ids_shifts() const override { return index->remove_ids_shifts(); }
  void reset() override;
  size_t memory_usage() const override;

  // codes of the wrapped index for the transformed vectors (as Faiss)
  size_t sa_code_size() const override { return index->sa_code_size(); }
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // identical transform chains (same types and parameters), compatible indexes
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;
  void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                              const SearchParameters* params = nullptr) const override;

  // n * d -> n * index->d through the whole chain
  std::vector<float> apply_chain(idx_t n, const float* x) const;
  // n * index->d -> n * d
  void reverse_chain(idx_t n, const float* xt, float* x) const;

  std::string type_tag() const override { return "PreTransform"; }
  void write_payload(Writer& w) const override;

 private:
  void refresh();
};

}  // namespace annvil
