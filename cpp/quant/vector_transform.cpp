// Vector transforms (vector_transform.h): the base class, LinearTransform,
// RandomRotationMatrix, RemapDimensionsTransform, CenteringTransform,
// HadamardRotation, NormalizationTransform and the transform records.  The
// trained rotations (PCA, ITQ, OPQ) are in vector_transform_trained.cpp, the
// dense linear algebra in linalg.cpp.
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
    }
  ANNVIL_OMP_CATCH(perr)
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
    }
  ANNVIL_OMP_CATCH(perr)
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
    }
  ANNVIL_OMP_CATCH(perr)
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
    if (t->is_trained &&
        (t->mean.size() != size_t(din) || t->eigenvalues.size() != size_t(din) || t->PCAMat.size() % size_t(din) != 0 ||
         t->PCAMat.size() < size_t(din) * dout || t->PCAMat.size() > size_t(din) * din || t->b.size() != size_t(dout)))
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
    if (!itq || !lt || itq->d_in != dout || lt->d_in != din || lt->d_out != dout || lt->type_tag() != "LinearTransform")
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

}  // namespace annvil
