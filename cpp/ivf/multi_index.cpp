// MultiIndexQuantizer (see multi_index.h).
#include "ivf/multi_index.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>
#include <tuple>

#include "core/topk.h"
#include "core/io.h"
#include "core/parallel.h"

namespace annvil {

MultiIndexQuantizer::MultiIndexQuantizer(int d_, size_t M, size_t nbits)
    : Index(d_, METRIC_L2), pq(size_t(d_), M, nbits) {
  ANNVIL_CHECK(M >= 1 && double(M) * double(nbits) <= 62,
               "MultiIndexQuantizer needs M * nbits <= 62 (labels are int64)");
  is_trained = false;
}

void MultiIndexQuantizer::train(idx_t n, const float* x) {
  pq.train(n, x);
  is_trained = true;
  ntotal = idx_t(1) << (pq.M * pq.nbits);
}

void MultiIndexQuantizer::add(idx_t, const float*) {
  ANNVIL_THROW(value, "MultiIndexQuantizer holds virtual centroids (ksub^M): add() is not supported, train() it");
}

void MultiIndexQuantizer::reset() {
  ANNVIL_THROW(value, "MultiIndexQuantizer holds virtual centroids (ksub^M): reset() is not supported");
}

void MultiIndexQuantizer::reconstruct(idx_t key, float* out) const {
  check_trained();
  ANNVIL_CHECK(key >= 0 && key < ntotal, "key ", key, " out of range [0, ", ntotal, ")");
  idx_t jj = key;
  for (size_t m = 0; m < pq.M; ++m) {
    const size_t c = size_t(jj % idx_t(pq.ksub));
    jj /= idx_t(pq.ksub);
    std::copy(pq.get_centroids(m, c), pq.get_centroids(m, c) + pq.dsub, out + m * pq.dsub);
  }
}

namespace {

// The kk smallest sums a[i] + b[j] (a: na sorted ascending with labels la,
// b: nb sorted ascending with labels lb), as (sum, la[i] + lb[j] * mul), ascending.
void best_pair_sums(const std::vector<std::pair<float, idx_t>>& a, const std::vector<std::pair<float, idx_t>>& b,
                    idx_t mul, size_t kk, std::vector<std::pair<float, idx_t>>& out) {
  out.clear();
  using E = std::tuple<float, uint32_t, uint32_t>;
  auto cmp = [](const E& x, const E& y) { return std::get<0>(x) > std::get<0>(y); };
  std::priority_queue<E, std::vector<E>, decltype(cmp)> heap(cmp);
  // seed the first row of every column lazily: (i, 0) for i = 0 only, then
  // (i + 1, 0) when (i, 0) is popped; (i, j + 1) when (i, j) is popped
  if (a.empty() || b.empty()) return;
  heap.emplace(a[0].first + b[0].first, 0u, 0u);
  while (!heap.empty() && out.size() < kk) {
    auto [s, i, j] = heap.top();
    heap.pop();
    out.emplace_back(s, a[i].second + b[j].second * mul);
    if (j == 0 && i + 1 < a.size()) heap.emplace(a[i + 1].first + b[0].first, i + 1, 0u);
    if (j + 1 < b.size()) heap.emplace(a[i].first + b[j + 1].first, i, j + 1);
  }
}

}  // namespace

void MultiIndexQuantizer::combine(std::vector<std::vector<std::pair<float, idx_t>>>& cand, size_t kk, idx_t k,
                                  float* Dq, idx_t* Iq) const {
  std::vector<std::pair<float, idx_t>> acc, next;
  idx_t mul = 1;
  for (size_t m = 0; m < cand.size(); ++m) {
    auto& sub = cand[m];
    // only the kk best of each list can take part in the kk best sums
    const size_t keep = std::min(sub.size(), kk);
    std::partial_sort(sub.begin(), sub.begin() + keep, sub.end());
    sub.resize(keep);
    if (m == 0) {
      acc = sub;
    } else {
      best_pair_sums(acc, sub, mul, kk, next);
      acc.swap(next);
    }
    mul *= idx_t(pq.ksub);
  }
  const float pad = missing_result_distance(METRIC_L2);
  for (size_t j = 0; j < size_t(k); ++j) {
    if (j < acc.size()) {
      Dq[j] = acc[j].first;
      Iq[j] = acc[j].second;
    } else {
      Dq[j] = pad;
      Iq[j] = -1;
    }
  }
}

void MultiIndexQuantizer::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                 const SearchParameters* params) const {
  check_k(k);
  check_trained();
  ANNVIL_CHECK(params == nullptr || params->sel == nullptr, "MultiIndexQuantizer does not take a selector");
  if (n <= 0) return;
  const size_t M = pq.M, ksub = pq.ksub;
  const size_t kk = size_t(std::min<idx_t>(k, ntotal));
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    std::vector<float> table(M * ksub);
    std::vector<std::vector<std::pair<float, idx_t>>> cand(M);
#pragma omp for schedule(dynamic, 8)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        pq.compute_distance_table(x + size_t(q) * size_t(d), table.data());
        for (size_t m = 0; m < M; ++m) {
          cand[m].resize(ksub);
          for (size_t c = 0; c < ksub; ++c) cand[m][c] = {table[m * ksub + c], idx_t(c)};
        }
        combine(cand, kk, k, D + size_t(q) * size_t(k), I + size_t(q) * size_t(k));
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

// ---- MultiIndexQuantizer2 ----------------------------------------------------------------
MultiIndexQuantizer2::MultiIndexQuantizer2(int d_, size_t nbits, std::vector<IndexPtr> ai)
    : MultiIndexQuantizer(d_, ai.size(), nbits), assign_indexes(std::move(ai)) {
  for (auto& a : assign_indexes) {
    ANNVIL_CHECK(a != nullptr, "assign indexes must be indexes, got None");
    ANNVIL_CHECK(size_t(a->d) == pq.dsub, "assign index has d=", a->d, ", the sub-space d / M=", pq.dsub);
    ANNVIL_CHECK(a->metric_type == METRIC_L2, "assign indexes must use METRIC_L2");
  }
}

void MultiIndexQuantizer2::train(idx_t n, const float* x) {
  MultiIndexQuantizer::train(n, x);
  for (size_t m = 0; m < pq.M; ++m) {
    auto lock = assign_indexes[m]->lock.write();
    assign_indexes[m]->reset();
    assign_indexes[m]->add(idx_t(pq.ksub), pq.get_centroids(m, 0));
  }
}

void MultiIndexQuantizer2::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                  const SearchParameters* params) const {
  check_k(k);
  check_trained();
  ANNVIL_CHECK(params == nullptr || params->sel == nullptr, "MultiIndexQuantizer2 does not take a selector");
  if (n <= 0) return;
  const size_t M = pq.M, dsub = pq.dsub;
  const size_t kk = size_t(std::min<idx_t>(k, ntotal));
  const idx_t k2 = idx_t(std::min<size_t>(pq.ksub, kk));
  // the k2 nearest sub-centroids of every query, one assign index at a time
  std::vector<float> subD(M * size_t(n) * size_t(k2));
  std::vector<idx_t> subI(M * size_t(n) * size_t(k2));
  std::vector<float> xs(size_t(n) * dsub);
  for (size_t m = 0; m < M; ++m) {
    ANNVIL_CHECK(assign_indexes[m]->ntotal == idx_t(pq.ksub), "assign index ", m, " holds ", assign_indexes[m]->ntotal,
                 " centroids, expected ksub=", pq.ksub);
    for (idx_t q = 0; q < n; ++q)
      std::copy(x + size_t(q) * size_t(d) + m * dsub, x + size_t(q) * size_t(d) + (m + 1) * dsub,
                xs.data() + size_t(q) * dsub);
    auto lock = assign_indexes[m]->lock.read();
    assign_indexes[m]->search(n, xs.data(), k2, subD.data() + m * size_t(n) * size_t(k2),
                              subI.data() + m * size_t(n) * size_t(k2));
  }
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    std::vector<std::vector<std::pair<float, idx_t>>> cand(M);
#pragma omp for schedule(dynamic, 8)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        for (size_t m = 0; m < M; ++m) {
          cand[m].clear();
          const size_t off = (m * size_t(n) + size_t(q)) * size_t(k2);
          for (idx_t j = 0; j < k2; ++j)
            if (subI[off + size_t(j)] >= 0) cand[m].emplace_back(subD[off + size_t(j)], subI[off + size_t(j)]);
        }
        combine(cand, kk, k, D + size_t(q) * size_t(k), I + size_t(q) * size_t(k));
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

void MultiIndexQuantizer2::write_payload(Writer& w) const {
  MultiIndexQuantizer::write_payload(w);
  w.write<uint64_t>(assign_indexes.size());
  for (auto& a : assign_indexes) write_index_record(*a, w);
}

void MultiIndexQuantizer::write_payload(Writer& w) const {
  write_index_header(w, *this);
  pq.write(w);
}

namespace {
IndexPtr read_multi_index(Reader& r) {
  IndexHeader h = read_header_fields(r);
  ProductQuantizer pq = ProductQuantizer::read(r);
  if (pq.d != size_t(h.d) || pq.M * pq.nbits > 62) r.corrupt("MultiIndexQuantizer quantizer does not match");
  auto idx = std::make_shared<MultiIndexQuantizer>(h.d, pq.M, pq.nbits);
  idx->pq = std::move(pq);
  idx->is_trained = h.is_trained && idx->pq.is_trained;
  idx->ntotal = idx->is_trained ? (idx_t(1) << (idx->pq.M * idx->pq.nbits)) : 0;
  if (h.ntotal != idx->ntotal) r.corrupt("MultiIndexQuantizer size does not match");
  return idx;
}
}  // namespace
ANNVIL_REGISTER_INDEX("MultiIndexQuantizer", read_multi_index);

static IndexPtr read_multi_index2(Reader& r) {
  IndexPtr base = read_multi_index(r);
  auto& b = static_cast<MultiIndexQuantizer&>(*base);
  uint64_t m = r.read<uint64_t>();
  if (m != b.pq.M) r.corrupt("MultiIndexQuantizer2 needs one assign index per sub-quantizer");
  std::vector<IndexPtr> ai;
  for (uint64_t i = 0; i < m; ++i) {
    ai.push_back(read_index_record(r));
    if (size_t(ai.back()->d) != b.pq.dsub || ai.back()->metric_type != METRIC_L2)
      r.corrupt("MultiIndexQuantizer2 assign index does not match");
  }
  auto idx = std::make_shared<MultiIndexQuantizer2>(b.d, b.pq.nbits, std::move(ai));
  idx->pq = b.pq;
  idx->is_trained = b.is_trained;
  idx->ntotal = b.ntotal;
  return idx;
}
ANNVIL_REGISTER_INDEX("MultiIndexQuantizer2", read_multi_index2);

}  // namespace annvil
