#include "quant/pq.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "distances/distances.h"
#include "core/io.h"
#include "distances/knn.h"

namespace annvil {

ProductQuantizer::ProductQuantizer(size_t d_, size_t M_, size_t nbits_) : d(d_), M(M_), nbits(nbits_) {
  ANNVIL_CHECK(d_ > 0, "dimension d must be positive, got ", d_);
  ANNVIL_CHECK(M_ > 0, "number of sub-quantizers M must be positive, got ", M_);
  ANNVIL_CHECK(d_ % M_ == 0, "the dimension d=", d_, " must be a multiple of the number of sub-quantizers M=", M_,
               " (pick M among the divisors of d, or use OPQMatrix with d2 a multiple of M)");
  ANNVIL_CHECK(nbits_ >= 1 && nbits_ <= 16, "nbits must be between 1 and 16, got ", nbits_);
  dsub = d / M;
  ksub = size_t(1) << nbits;
  code_size = (M * nbits + 7) / 8;
  centroids.assign(M * ksub * dsub, 0.f);
}

void ProductQuantizer::check_trained() const {
  if (!is_trained) ANNVIL_THROW(not_trained, "ProductQuantizer is not trained: call train() first");
}

namespace {
// rows [0, n) of sub-space m, gathered contiguous: out n * dsub
void extract_subspace(idx_t n, const float* x, size_t d, size_t dsub, size_t m, float* out) {
  for (idx_t i = 0; i < n; ++i) std::memcpy(out + size_t(i) * dsub, x + size_t(i) * d + m * dsub, sizeof(float) * dsub);
}
}  // namespace

void ProductQuantizer::train(idx_t n, const float* x) { train_hot(n, x, -1); }

void ProductQuantizer::train_hot(idx_t n, const float* x, int niter) {
  ANNVIL_CHECK(n >= idx_t(ksub), "ProductQuantizer with nbits=", nbits, " needs at least ksub=", ksub,
               " training vectors, got ", n, " (provide more training data or lower nbits)");
  const bool hot = niter >= 0 && is_trained;
  std::vector<float> newc(centroids.size());
  // Sub-spaces are independent: with several of them, threads take whole
  // sub-spaces (each k-means then runs single-threaded: nested regions are
  // off), which beats splitting each small k-means across threads.
  const size_t work = size_t(n) * ksub * dsub;
  const int nt = (M > 1 && work > (size_t(1) << 20)) ? std::min<int>(omp_get_max_threads(), int(M)) : 1;
  std::exception_ptr error;
  ParallelErrors perr;
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> xs(size_t(n) * dsub);
#pragma omp for schedule(dynamic, 1)
    for (int64_t mi = 0; mi < int64_t(M); ++mi) ANNVIL_OMP_TRY(perr) {
        const size_t m = size_t(mi);
        try {
          extract_subspace(n, x, d, dsub, m, xs.data());
          ClusteringParameters p = cp;
          if (niter >= 0) p.niter = niter;
          p.verbose = verbose && cp.verbose;
          Clustering clus(int(dsub), int(ksub), p);
          if (hot) clus.centroids.assign(get_centroids(m, 0), get_centroids(m, 0) + ksub * dsub);
          clus.train(n, xs.data());
          std::memcpy(newc.data() + m * ksub * dsub, clus.centroids.data(), sizeof(float) * ksub * dsub);
        } catch (...) {
#pragma omp critical
          if (!error) error = std::current_exception();
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  if (error) std::rethrow_exception(error);
  centroids.swap(newc);
  is_trained = true;
}

void ProductQuantizer::write_index(uint8_t* code, size_t m, size_t nbits, uint32_t v) {
  size_t bit = m * nbits;
  size_t left = nbits;
  while (left > 0) {
    size_t byte = bit >> 3, off = bit & 7;
    size_t take = std::min(left, 8 - off);
    uint32_t mask = (1u << take) - 1;
    code[byte] = uint8_t((code[byte] & ~(mask << off)) | ((v & mask) << off));
    v >>= take;
    bit += take;
    left -= take;
  }
}

uint32_t ProductQuantizer::read_index(const uint8_t* code, size_t m, size_t nbits) {
  size_t bit = m * nbits;
  size_t left = nbits, got = 0;
  uint32_t v = 0;
  while (left > 0) {
    size_t byte = bit >> 3, off = bit & 7;
    size_t take = std::min(left, 8 - off);
    uint32_t part = (uint32_t(code[byte]) >> off) & ((1u << take) - 1);
    v |= part << got;
    got += take;
    bit += take;
    left -= take;
  }
  return v;
}

void ProductQuantizer::compute_code_indices(idx_t n, const float* x, uint16_t* idx) const {
  check_trained();
  if (ksub <= 32) {
    // small codebooks: direct distances per sub-vector beat the panel
    // machinery, whose per-block setup dominates at this size
    const Kernels& K = kernels();
    ParallelErrors perr;
#pragma omp parallel for if (n > 1000) schedule(static)
    for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
        float dis[32];
        for (size_t m = 0; m < M; ++m) {
          K.l2sqr_ny(x + size_t(i) * d + m * dsub, get_centroids(m, 0), dsub, ksub, dis);
          size_t best = 0;
          for (size_t j = 1; j < ksub; ++j)
            if (dis[j] < dis[best]) best = j;
          idx[size_t(i) * M + m] = uint16_t(best);
        }
      }
    ANNVIL_OMP_CATCH(perr)
    perr.rethrow();
    return;
  }
  // nearest centroid per sub-space through the exact-search kernels (they
  // parallelise internally), in row chunks to bound the scratch memory
  const idx_t chunk = 65536;
  std::vector<float> xs, dis;
  std::vector<idx_t> lab;
  for (idx_t i0 = 0; i0 < n; i0 += chunk) {
    idx_t nc = std::min(chunk, n - i0);
    xs.resize(size_t(nc) * dsub);
    dis.resize(size_t(nc));
    lab.resize(size_t(nc));
    for (size_t m = 0; m < M; ++m) {
      extract_subspace(nc, x + size_t(i0) * d, d, dsub, m, xs.data());
      knn_exact(size_t(nc), xs.data(), ksub, get_centroids(m, 0), dsub, 1, METRIC_L2, dis.data(), lab.data());
      for (idx_t i = 0; i < nc; ++i) idx[size_t(i0 + i) * M + m] = uint16_t(lab[size_t(i)] < 0 ? 0 : lab[size_t(i)]);
    }
  }
}

void ProductQuantizer::compute_codes(idx_t n, const float* x, uint8_t* codes) const {
  std::vector<uint16_t> idx(size_t(n) * M);
  compute_code_indices(n, x, idx.data());
  std::memset(codes, 0, size_t(n) * code_size);
  for (idx_t i = 0; i < n; ++i) {
    uint8_t* c = codes + size_t(i) * code_size;
    const uint16_t* s = idx.data() + size_t(i) * M;
    if (nbits == 8) {
      for (size_t m = 0; m < M; ++m) c[m] = uint8_t(s[m]);
    } else {
      for (size_t m = 0; m < M; ++m) write_index(c, m, nbits, s[m]);
    }
  }
}

void ProductQuantizer::decode(idx_t n, const uint8_t* codes, float* x) const {
  check_trained();
  ParallelErrors perr;
#pragma omp parallel for if (n > 1000) schedule(static)
  for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
      const uint8_t* c = codes + size_t(i) * code_size;
      float* xi = x + size_t(i) * d;
      for (size_t m = 0; m < M; ++m) {
        uint32_t j = nbits == 8 ? c[m] : read_index(c, m, nbits);
        std::memcpy(xi + m * dsub, get_centroids(m, j), sizeof(float) * dsub);
      }
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void ProductQuantizer::compute_distance_table(const float* x, float* table) const {
  const Kernels& K = kernels();
  for (size_t m = 0; m < M; ++m) K.l2sqr_ny(x + m * dsub, get_centroids(m, 0), dsub, ksub, table + m * ksub);
}

void ProductQuantizer::compute_inner_prod_table(const float* x, float* table) const {
  const Kernels& K = kernels();
  for (size_t m = 0; m < M; ++m) K.inner_product_ny(x + m * dsub, get_centroids(m, 0), dsub, ksub, table + m * ksub);
}

void ProductQuantizer::compute_tables(idx_t n, const float* x, MetricType metric, float* tables) const {
  check_trained();
  ParallelErrors perr;
#pragma omp parallel for if (n > 16) schedule(static)
  for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
      if (metric == METRIC_L2)
        compute_distance_table(x + size_t(i) * d, tables + size_t(i) * M * ksub);
      else
        compute_inner_prod_table(x + size_t(i) * d, tables + size_t(i) * M * ksub);
    }
  ANNVIL_OMP_CATCH(perr)
  perr.rethrow();
}

void ProductQuantizer::write(Writer& w) const {
  w.write<uint64_t>(d);
  w.write<uint64_t>(M);
  w.write<uint64_t>(nbits);
  w.write<uint8_t>(is_trained ? 1 : 0);
  w.write_vector(centroids);
}

ProductQuantizer ProductQuantizer::read(Reader& r) {
  uint64_t d = r.read<uint64_t>(), M = r.read<uint64_t>(), nbits = r.read<uint64_t>();
  if (d == 0 || d > (1u << 20) || M == 0 || d % M != 0 || nbits < 1 || nbits > 16)
    r.corrupt("bad ProductQuantizer shape");
  ProductQuantizer pq(d, M, nbits);
  pq.is_trained = r.read<uint8_t>() != 0;
  r.read_vector(pq.centroids);
  if (pq.centroids.size() != pq.M * pq.ksub * pq.dsub)
    r.corrupt("ProductQuantizer centroid count does not match its shape");
  return pq;
}

// ---------------------------------------------------------------- Faiss's extra tables
void ProductQuantizer::compute_sdc_table() {
  check_trained();
  const Kernels& K = kernels();
  sdc_table.assign(M * ksub * ksub, 0.f);
  for (size_t m = 0; m < M; ++m)
    for (size_t i = 0; i < ksub; ++i)
      K.l2sqr_ny(get_centroids(m, i), get_centroids(m, 0), dsub, ksub, &sdc_table[(m * ksub + i) * ksub]);
}

void ProductQuantizer::sync_transposed_centroids() {
  check_trained();
  transposed_centroids.assign(dsub * M * ksub, 0.f);
  centroids_sq_lengths.assign(M * ksub, 0.f);
  for (size_t m = 0; m < M; ++m)
    for (size_t i = 0; i < ksub; ++i) {
      const float* c = get_centroids(m, i);
      float sq = 0;
      for (size_t j = 0; j < dsub; ++j) {
        transposed_centroids[(j * M + m) * ksub + i] = c[j];
        sq += c[j] * c[j];
      }
      centroids_sq_lengths[m * ksub + i] = sq;
    }
}

void ProductQuantizer::clear_transposed_centroids() {
  transposed_centroids.clear();
  transposed_centroids.shrink_to_fit();
  centroids_sq_lengths.clear();
  centroids_sq_lengths.shrink_to_fit();
}

void ProductQuantizer::pack_codes(idx_t n, const int64_t* idx, uint8_t* codes) const {
  for (idx_t i = 0; i < n; ++i) {
    uint8_t* c = codes + size_t(i) * code_size;
    std::fill(c, c + code_size, uint8_t(0));
    for (size_t m = 0; m < M; ++m) {
      int64_t v = idx[size_t(i) * M + m];
      ANNVIL_CHECK(v >= 0 && uint64_t(v) < ksub, "sub-quantizer index ", v, " out of range [0, ", ksub, ")");
      write_index(c, m, nbits, uint32_t(v));
    }
  }
}

}  // namespace annvil
