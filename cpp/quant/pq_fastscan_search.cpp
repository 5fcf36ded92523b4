// IndexPQFastScan's reference searches (Faiss's implem 1..4): the codes are
// read back from the blocks into the plain PQ layout and scanned without the
// SIMD kernels.
//   implem 1, 2: float LUT, exactly IndexPQ's search (same tables, same sums).
//   implem 3, 4: the uint8 LUT of the SIMD scan (pq4_quantize_lut) summed in
//                scalar integers; ranking by (sum, id) and dequantisation as
//                in the SIMD scan, so both give identical results.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/topk.h"
#include "index_pq_fastscan.h"
#include "core/parallel.h"
#include "quant/pq_fastscan.h"

namespace annvil {

void IndexPQFastScan::search_reference(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
                                       const IDSelector* sel) const {
  const size_t N = size_t(ntotal), M = pq.M, cs = pq.code_size;
  std::vector<uint8_t> plain(N * cs);
  if (N) pq4_unpack_codes(codes.data(), M, 0, N, plain.data());
  if (implem <= 2) {
    IndexPQ flat(d, M, 4, metric_type);
    flat.pq = pq;
    flat.is_trained = true;
    flat.codes.mut().swap(plain);
    flat.ntotal = ntotal;
    SearchParameters p;
    p.sel = sel;
    flat.search(n, x, k, D, I, &p);
    return;
  }
  const bool l2 = metric_type == METRIC_L2;
  const float pad = missing_result_distance(metric_type);
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    std::vector<float> lut(M * pq.ksub);
    QuantizedLUT Q;
    std::vector<uint64_t> keys;  // sum << 48 | position, ranked like PQ4Reservoir
    keys.reserve(N);
#pragma omp for schedule(dynamic, 1)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        compute_float_lut(x + size_t(q) * d, lut.data());
        pq4_quantize_lut(lut.data(), M, Q);
        keys.clear();
        for (size_t i = 0; i < N; ++i) {
          if (sel && !sel->is_member(idx_t(i))) continue;
          const uint8_t* c = plain.data() + i * cs;
          uint32_t acc = 0;
          for (size_t m = 0; m < M; ++m) acc += Q.q[m * 16 + ((c[m >> 1] >> ((m & 1) * 4)) & 15)];
          keys.push_back((uint64_t(acc) << 48) | uint64_t(i));
        }
        const size_t got = std::min(keys.size(), size_t(k));
        std::partial_sort(keys.begin(), keys.begin() + got, keys.end());
        float* Dq = D + size_t(q) * k;
        idx_t* Iq = I + size_t(q) * k;
        for (size_t j = 0; j < got; ++j) {
          const float v = Q.to_float(uint32_t(keys[j] >> 48));
          Dq[j] = l2 ? v : -v;
          Iq[j] = idx_t(keys[j] & ((uint64_t(1) << 48) - 1));
        }
        for (size_t j = got; j < size_t(k); ++j) {
          Dq[j] = pad;
          Iq[j] = -1;
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

}  // namespace annvil
