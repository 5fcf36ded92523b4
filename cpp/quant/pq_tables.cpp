// PQ tables, encoding and code sums (see pq_tables.h).  The SIMD kernels
// behind them (ip_table, assign) are chosen through detail::ivfpq_kernels().
#include "quant/pq_tables.h"

#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "ivf/index_ivf_pq_kernels.h"

namespace annvil {

// ---- codebooks in kernel layout ------------------------------------------------------------
uint64_t pq_fingerprint(const ProductQuantizer& pq) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    h ^= v;
    h *= 1099511628211ull;
  };
  mix(pq.M);
  mix(pq.nbits);
  mix(pq.is_trained);
  const size_t n = pq.centroids.size();
  mix(n);
  const size_t step = std::max<size_t>(1, n / 509);
  for (size_t i = 0; i < n; i += step) {
    uint32_t b;
    std::memcpy(&b, &pq.centroids[i], 4);
    mix(b);
  }
  if (n) {
    uint32_t b;
    std::memcpy(&b, &pq.centroids[n - 1], 4);
    mix(b);
  }
  return h;
}

void PQCodebooks::build(const ProductQuantizer& pq) {
  const size_t M = pq.M, ksub = pq.ksub, dsub = pq.dsub;
  ct.resize(M * dsub * ksub);
  norms.resize(M * ksub);
  for (size_t m = 0; m < M; ++m)
    for (size_t j = 0; j < ksub; ++j) {
      const float* c = pq.get_centroids(m, j);
      float s = 0;
      for (size_t p = 0; p < dsub; ++p) {
        ct[(m * dsub + p) * ksub + j] = c[p];
        s += c[p] * c[p];
      }
      norms[m * ksub + j] = s;
    }
  fingerprint = pq_fingerprint(pq);
}

std::shared_ptr<const PQCodebooks> PQCodebookCache::get(const ProductQuantizer& pq) const {
  const uint64_t fp = pq_fingerprint(pq);
  std::lock_guard<std::mutex> lock(mu_);
  if (!cb_ || cb_->fingerprint != fp) {
    auto cb = std::make_shared<PQCodebooks>();
    cb->build(pq);
    cb_ = std::move(cb);
  }
  return cb_;
}

void pq_ip_table(const ProductQuantizer& pq, const PQCodebooks& cb, const float* x, float* out) {
  detail::ivfpq_kernels().ip_table(x, cb.ct.data(), pq.M, pq.dsub, pq.ksub, out);
}

void pq_l2_table(const ProductQuantizer& pq, const PQCodebooks& cb, const float* x, float* out) {
  // |x_m - c|^2 = |x_m|^2 + |c|^2 - 2 <x_m, c>
  pq_ip_table(pq, cb, x, out);
  const size_t ksub = pq.ksub, dsub = pq.dsub;
  for (size_t m = 0; m < pq.M; ++m) {
    float xn = 0;
    for (size_t p = 0; p < dsub; ++p) xn += x[m * dsub + p] * x[m * dsub + p];
    float* o = out + m * ksub;
    const float* cn = cb.norms.data() + m * ksub;
    for (size_t j = 0; j < ksub; ++j) o[j] = std::max(0.f, xn + cn[j] - 2.f * o[j]);
  }
}

void pq_encode(const ProductQuantizer& pq, const PQCodebooks& cb, idx_t n, const float* x, uint8_t* codes) {
  const size_t M = pq.M, ksub = pq.ksub, dsub = pq.dsub, d = pq.d, cs = pq.code_size;
  const auto& K = detail::ivfpq_kernels();
  const idx_t bs = 256;
  const idx_t nb = (n + bs - 1) / bs;
  ParallelErrors perr;
#pragma omp parallel if (n > 4 * bs)
  {
    std::vector<int32_t> lab(size_t(bs) * M);
    std::vector<float> dis(static_cast<size_t>(bs));
#pragma omp for schedule(static)
    for (idx_t b = 0; b < nb; ++b) ANNVIL_OMP_TRY(perr) {
        const idx_t i0 = b * bs, m_ = std::min(bs, n - i0);
        for (size_t m = 0; m < M; ++m)
          K.assign(size_t(m_), x + size_t(i0) * d + m * dsub, d, cb.ct.data() + m * dsub * ksub,
                   cb.norms.data() + m * ksub, dsub, ksub, lab.data() + m * size_t(bs), dis.data());
        for (idx_t i = 0; i < m_; ++i) {
          uint8_t* c = codes + size_t(i0 + i) * cs;
          if (pq.nbits == 8) {
            for (size_t m = 0; m < M; ++m) c[m] = uint8_t(lab[m * size_t(bs) + size_t(i)]);
          } else {
            std::memset(c, 0, cs);
            for (size_t m = 0; m < M; ++m)
              ProductQuantizer::write_index(c, m, pq.nbits, uint32_t(lab[m * size_t(bs) + size_t(i)]));
          }
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

// The hot loop of IVF-PQ search.  Each code is M bytes; its key is the sum of
// M table entries, one per 256-float row.  Four codes are summed at once so
// the table reads of independent codes overlap; code bytes are read eight at
// a time (one 64-bit load, then shifts: the load ports serve the table), and
// the codes a few iterations ahead are prefetched (lists are short, the
// hardware prefetcher alone stalls at the start of each).  NW = M / 8 words
// per code when known at compile time (0: generic M).
namespace {
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

template <int NW, class T, class A>
void pq8_sums_words(const uint8_t* codes, size_t n, size_t M_rt, const T* lut, A* out) {
  const size_t M = NW > 0 ? size_t(NW) * 8 : M_rt;
  const size_t nw = M / 8;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint8_t* c0 = codes + i * M;
    __builtin_prefetch(c0 + 8 * M);
    __builtin_prefetch(c0 + 8 * M + 64);
    __builtin_prefetch(c0 + 8 * M + 128);
    A a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    const T* t = lut;
    for (size_t w = 0; w < nw; ++w, t += 8 * 256) {
      uint64_t w0 = load64(c0 + 8 * w), w1 = load64(c0 + M + 8 * w), w2 = load64(c0 + 2 * M + 8 * w),
               w3 = load64(c0 + 3 * M + 8 * w);
      for (int b = 0; b < 8; b += 2) {
        a0 += t[b * 256 + (w0 & 255)];
        a1 += t[b * 256 + (w1 & 255)];
        a2 += t[b * 256 + (w2 & 255)];
        a3 += t[b * 256 + (w3 & 255)];
        b0 += t[(b + 1) * 256 + ((w0 >> 8) & 255)];
        b1 += t[(b + 1) * 256 + ((w1 >> 8) & 255)];
        b2 += t[(b + 1) * 256 + ((w2 >> 8) & 255)];
        b3 += t[(b + 1) * 256 + ((w3 >> 8) & 255)];
        w0 >>= 16;
        w1 >>= 16;
        w2 >>= 16;
        w3 >>= 16;
      }
    }
    for (size_t m = nw * 8; m < M; ++m) {
      a0 += lut[m * 256 + c0[m]];
      a1 += lut[m * 256 + c0[M + m]];
      a2 += lut[m * 256 + c0[2 * M + m]];
      a3 += lut[m * 256 + c0[3 * M + m]];
    }
    out[i] = a0 + b0;
    out[i + 1] = a1 + b1;
    out[i + 2] = a2 + b2;
    out[i + 3] = a3 + b3;
  }
  for (; i < n; ++i) {
    const uint8_t* c = codes + i * M;
    A a = 0, b = 0;
    size_t m = 0;
    for (; m + 2 <= M; m += 2) {
      a += lut[m * 256 + c[m]];
      b += lut[(m + 1) * 256 + c[m + 1]];
    }
    if (m < M) a += lut[m * 256 + c[m]];
    out[i] = a + b;
  }
}

template <class T, class A>
void pq8_sums_dispatch(const uint8_t* codes, size_t n, size_t M, const T* lut, A* out) {
  switch (M) {
    case 8:
      pq8_sums_words<1>(codes, n, M, lut, out);
      return;
    case 16:
      pq8_sums_words<2>(codes, n, M, lut, out);
      return;
    case 24:
      pq8_sums_words<3>(codes, n, M, lut, out);
      return;
    case 32:
      pq8_sums_words<4>(codes, n, M, lut, out);
      return;
    case 48:
      pq8_sums_words<6>(codes, n, M, lut, out);
      return;
    case 64:
      pq8_sums_words<8>(codes, n, M, lut, out);
      return;
    case 96:
      pq8_sums_words<12>(codes, n, M, lut, out);
      return;
    default:
      pq8_sums_words<0>(codes, n, M, lut, out);
      return;
  }
}
}  // namespace

void pq8_code_sums(const uint8_t* codes, size_t n, size_t M, const float* lut, float* out) {
  pq8_sums_dispatch(codes, n, M, lut, out);
}

void pq8_code_sums_u16(const uint8_t* codes, size_t n, size_t M, const uint16_t* lut, uint32_t* out) {
  pq8_sums_dispatch(codes, n, M, lut, out);
}

void pq_code_sums_generic(const ProductQuantizer& pq, const uint8_t* codes, size_t n, const float* lut, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * pq.code_size;
    float s = 0;
    for (size_t m = 0; m < pq.M; ++m) s += lut[m * pq.ksub + ProductQuantizer::read_index(c, m, pq.nbits)];
    out[i] = s;
  }
}

}  // namespace annvil
