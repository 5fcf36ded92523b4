// The run-time choice between the Hamming kernels (hamming_impl.h) and
// the search / counting functions built on the one-query-to-many kernel.
#include "distances/hamming.h"

#include <omp.h>

#include <algorithm>
#include <limits>

#include "core/topk.h"
#include "core/parallel.h"
#include "simd/dispatch.h"

namespace annvil {

const HammingKernels& hamming_kernels() {
  // no AVX-512 table: that level falls back to the AVX2 one (hamming_impl.h)
  static const KernelDispatch<HammingKernels> d(&hamming_kernels_scalar(), ANNVIL_ISA_TABLE(hamming_kernels_avx2),
                                                nullptr);
  return d.get();
}

namespace {

// codes scanned per kernel call: the distances of a block stay in L1
constexpr size_t kBlock = 256;

// Scan base codes [j0, j1) for one query into heap h.
void scan_knn(const HammingKernels& K, const uint8_t* q, const uint8_t* b, size_t j0, size_t j1, size_t cs,
              const IDSelector* sel, const idx_t* labels, TopK& h, int32_t* buf) {
  for (size_t b0 = j0; b0 < j1; b0 += kBlock) {
    const size_t m = std::min(kBlock, j1 - b0);
    K.to_many(q, b + b0 * cs, m, cs, buf);
    for (size_t j = 0; j < m; ++j) {
      const float dis = float(buf[j]);
      if (dis > h.threshold()) continue;
      const idx_t id = labels ? labels[b0 + j] : idx_t(b0 + j);
      if (sel && !sel->is_member(id)) continue;
      h.push(dis, id);
    }
  }
}

void write_results(TopKArray& heaps, int32_t* D, idx_t* I) {
  const size_t k = heaps.k;
  for (size_t q = 0; q < heaps.nq; ++q) {
    TopK& h = heaps[q];
    h.sort();
    for (size_t i = 0; i < k; ++i) {
      D[q * k + i] = i < h.size ? int32_t(h.keys[i]) : kHammingMissing;
      I[q * k + i] = i < h.size ? h.ids[i] : -1;
    }
  }
}

}  // namespace

void hamming_knn(size_t nq, const uint8_t* q, size_t nb, const uint8_t* b, size_t cs, size_t k, int32_t* D, idx_t* I,
                 const IDSelector* sel, const idx_t* labels) {
  ANNVIL_CHECK(k > 0, "k must be positive");
  if (nq == 0) return;
  const HammingKernels& K = hamming_kernels();
  const int nt = omp_get_max_threads();
  TopKArray heaps(nq, k);
  ParallelErrors errors;  // a selector may throw
  if (nq >= size_t(2 * nt) || nb < 4 * kBlock * size_t(nt)) {
#pragma omp parallel if (nq > 1 && nq * nb * cs > (size_t(1) << 16))
    {
      int32_t buf[kBlock];
#pragma omp for schedule(dynamic, 4)
      for (int64_t i = 0; i < int64_t(nq); ++i)
        errors.run([&] { scan_knn(K, q + size_t(i) * cs, b, 0, nb, cs, sel, labels, heaps[size_t(i)], buf); });
    }
  } else {
    // few queries, large base: each thread scans a slice of the base for
    // every query into its own heaps, merged afterwards
    std::vector<TopKArray> part;
    part.reserve(size_t(nt));
    for (int t = 0; t < nt; ++t) part.emplace_back(nq, k);
#pragma omp parallel num_threads(nt)
    {
      int32_t buf[kBlock];
      const size_t t = size_t(omp_get_thread_num()), T = size_t(omp_get_num_threads());
      const size_t j0 = nb * t / T, j1 = nb * (t + 1) / T;
      errors.run([&] {
        for (size_t i = 0; i < nq; ++i) scan_knn(K, q + i * cs, b, j0, j1, cs, sel, labels, part[t][i], buf);
      });
    }
    errors.rethrow();
    for (auto& p : part) heaps.merge_from(p);
  }
  errors.rethrow();
  write_results(heaps, D, I);
}

void fill_binary_range_result(BinaryHits& hits, BinaryRangeResult* result) {
  const size_t nq = hits.size();
  result->nq = nq;
  result->lims.assign(nq + 1, 0);
  for (size_t i = 0; i < nq; ++i) {
    std::sort(hits[i].begin(), hits[i].end());
    result->lims[i + 1] = result->lims[i] + hits[i].size();
  }
  result->distances.resize(result->lims[nq]);
  result->labels.resize(result->lims[nq]);
  for (size_t i = 0; i < nq; ++i) {
    size_t o = result->lims[i];
    for (auto& [dis, id] : hits[i]) {
      result->distances[o] = dis;
      result->labels[o++] = id;
    }
  }
}

void hamming_range(size_t nq, const uint8_t* q, size_t nb, const uint8_t* b, size_t cs, int radius,
                   BinaryRangeResult* result, const IDSelector* sel, const idx_t* labels) {
  const HammingKernels& K = hamming_kernels();
  BinaryHits hits(nq);
  ParallelErrors errors;  // allocation of hits, selectors
#pragma omp parallel if (nq > 1 && nq * nb * cs > (size_t(1) << 16))
  {
    int32_t buf[kBlock];
#pragma omp for schedule(dynamic, 4)
    for (int64_t i = 0; i < int64_t(nq); ++i)
      errors.run([&] {
        auto& out = hits[size_t(i)];
        for (size_t b0 = 0; b0 < nb; b0 += kBlock) {
          const size_t m = std::min(kBlock, nb - b0);
          K.to_many(q + size_t(i) * cs, b + b0 * cs, m, cs, buf);
          for (size_t j = 0; j < m; ++j) {
            if (buf[j] >= radius) continue;
            const idx_t id = labels ? labels[b0 + j] : idx_t(b0 + j);
            if (sel && !sel->is_member(id)) continue;
            out.emplace_back(buf[j], id);
          }
        }
      });
  }
  errors.rethrow();
  fill_binary_range_result(hits, result);
}

// ---- utilities ---------------------------------------------------------------------
void hammings(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, size_t cs, int32_t* dis) {
  const HammingKernels& K = hamming_kernels();
#pragma omp parallel for if (na * nb * cs > (size_t(1) << 16))
  for (int64_t i = 0; i < int64_t(na); ++i) K.to_many(a + size_t(i) * cs, b, nb, cs, dis + size_t(i) * nb);
}

namespace {
// sum over rows i of f(i, distances of a_i to b_j for j in [j0(i), nb))
template <class F>
void for_each_row(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, size_t cs, F&& f) {
  const HammingKernels& K = hamming_kernels();
  std::vector<int32_t> row(nb);
  for (size_t i = 0; i < na; ++i) {
    K.to_many(a + i * cs, b, nb, cs, row.data());
    f(i, row.data());
  }
}
}  // namespace

size_t hamming_count_thres(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, int ht, size_t cs) {
  size_t count = 0;
  for_each_row(a, b, na, nb, cs, [&](size_t, const int32_t* row) {
    for (size_t j = 0; j < nb; ++j) count += row[j] <= ht;
  });
  return count;
}

size_t crosshamming_count_thres(const uint8_t* codes, size_t n, int ht, size_t cs) {
  size_t count = 0;
  for_each_row(codes, codes, n, n, cs, [&](size_t i, const int32_t* row) {
    for (size_t j = i + 1; j < n; ++j) count += row[j] <= ht;
  });
  return count;
}

size_t match_hamming_thres(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, int ht, size_t cs, int64_t* idx,
                           int32_t* dis) {
  size_t count = 0;
  for_each_row(a, b, na, nb, cs, [&](size_t i, const int32_t* row) {
    for (size_t j = 0; j < nb; ++j) {
      if (row[j] > ht) continue;
      idx[2 * count] = int64_t(i);
      idx[2 * count + 1] = int64_t(j);
      dis[count++] = row[j];
    }
  });
  return count;
}

void generalized_hammings_knn(const uint8_t* a, const uint8_t* b, size_t na, size_t nb, size_t cs, size_t k, int32_t* D,
                              idx_t* I) {
  ANNVIL_CHECK(k > 0, "k must be positive");
  TopKArray heaps(na, k);
#pragma omp parallel for if (na * nb * cs > (size_t(1) << 16))
  for (int64_t i = 0; i < int64_t(na); ++i) {
    const uint8_t* x = a + size_t(i) * cs;
    for (size_t j = 0; j < nb; ++j) {
      const uint8_t* y = b + j * cs;
      int diff = 0;
      for (size_t c = 0; c < cs; ++c) diff += x[c] != y[c];
      heaps[size_t(i)].push(float(diff), idx_t(j));
    }
  }
  write_results(heaps, D, I);
}

// ---- conversions -------------------------------------------------------------------
void binary_to_real(size_t n, size_t d, const uint8_t* codes, float* x) {
  const size_t cs = d / 8;
#pragma omp parallel for if (n * d > (size_t(1) << 18))
  for (int64_t i = 0; i < int64_t(n); ++i)
    for (size_t j = 0; j < d; ++j) x[size_t(i) * d + j] = ((codes[size_t(i) * cs + j / 8] >> (j % 8)) & 1) ? 1.f : -1.f;
}

void real_to_binary(size_t n, size_t d, const float* x, uint8_t* codes) {
  const size_t cs = d / 8;
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < cs; ++c) {
      uint8_t v = 0;
      for (int j = 0; j < 8; ++j)
        if (x[i * d + 8 * c + size_t(j)] > 0) v |= uint8_t(1u << j);
      codes[i * cs + c] = v;
    }
}

void bitvec_shuffle(size_t n, size_t da, size_t db, const int32_t* order, const uint8_t* a, uint8_t* b) {
  ANNVIL_CHECK(da % 8 == 0 && db % 8 == 0, "bitvec_shuffle: bit counts must be multiples of 8, got ", da, " and ", db);
  for (size_t j = 0; j < db; ++j)
    ANNVIL_CHECK(order[j] >= 0 && size_t(order[j]) < da, "bitvec_shuffle: order[", j, "] = ", order[j],
                 " is out of range [0, ", da, ")");
  const size_t ca = da / 8, cb = db / 8;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* x = a + i * ca;
    uint8_t* y = b + i * cb;
    std::memset(y, 0, cb);
    for (size_t j = 0; j < db; ++j) {
      const size_t s = size_t(order[j]);
      if ((x[s >> 3] >> (s & 7)) & 1) y[j >> 3] |= uint8_t(1u << (j & 7));
    }
  }
}

}  // namespace annvil
