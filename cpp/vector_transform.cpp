#include "vector_transform.h"
#include "parallel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

#include "distances.h"
#include "io.h"
#include "knn.h"
#include "pq.h"

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

// ---------------------------------------------------------------- linear
LinearTransform::LinearTransform(int d_in_, int d_out_, bool bias)
    : VectorTransform(d_in_, d_out_), have_bias(bias), A(size_t(d_in_) * d_out_, 0.f), b(bias ? d_out_ : 0, 0.f) {
  is_trained = false;
}

void LinearTransform::apply_noalloc(idx_t n, const float* x, float* xt) const {
  check_trained();
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

void LinearTransform::reverse_transform(idx_t n, const float* xt, float* x) const {
  check_trained();
  ANNVIL_CHECK(is_orthonormal, type_tag(), " is not orthonormal: reverse_transform is not available");
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

namespace {
void random_orthonormal(int rows, int cols, int seed, std::vector<float>& A) {
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> a(size_t(rows) * cols), r(size_t(rows) * cols);
  for (auto& v : a) v = g(rng);
  polar_factor(rows, cols, a.data(), r.data());
  A.assign(r.begin(), r.end());
}
}  // namespace

// ---------------------------------------------------------------- random rotation
RandomRotationMatrix::RandomRotationMatrix(int d_in_, int d_out_) : LinearTransform(d_in_, d_out_, false) {}

void RandomRotationMatrix::init(int seed) {
  random_orthonormal(d_out, d_in, seed, A);
  is_orthonormal = true;
  is_trained = true;
}

void RandomRotationMatrix::train(idx_t, const float*) {
  if (!is_trained) init(12345);
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

VectorTransformPtr read_transform_record(Reader& r) {
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
    const VectorTransform &a = *chain[i], &b = *o->chain[i];
    bool same = a.type_tag() == b.type_tag() && a.d_in == b.d_in && a.d_out == b.d_out;
    auto *la = dynamic_cast<const LinearTransform*>(&a), *lb = dynamic_cast<const LinearTransform*>(&b);
    if (same && la && lb) same = la->A == lb->A && la->b == lb->b && la->have_bias == lb->have_bias;
    if (same) {
      auto *na = dynamic_cast<const NormalizationTransform*>(&a), *nb = dynamic_cast<const NormalizationTransform*>(&b);
      if (na && nb) same = na->norm == nb->norm;
    }
    ANNVIL_CHECK(same, "cannot merge IndexPreTransforms: transform ", i, " (", a.type_tag(),
                 ") differs (train one index and clone it)");
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
