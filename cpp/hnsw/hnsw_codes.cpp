// Compressed HNSW storages (see hnsw_codes.h): query preparation, decoding
// and the stored-to-stored distances used while building the graph.
#include "hnsw/hnsw_codes.h"

#include <algorithm>

namespace annvil {

namespace {
// two d-float buffers per thread for between(): no allocation once warm
float* pair_buffer(size_t d) {
  static thread_local std::vector<float> buf;
  if (buf.size() < 2 * d) buf.resize(2 * d);
  return buf.data();
}
int lines_of(size_t bytes) { return int(std::min<size_t>(8, (bytes + 63) / 64)); }
}  // namespace

// ---- SQSpace ------------------------------------------------------------------
SQSpace::SQSpace(const ScalarQuantizer& sq_, const uint8_t* codes_, MetricType metric)
    : codes(codes_),
      sq(&sq_),
      d(sq_.d),
      code_size(sq_.code_size),
      ip(metric == METRIC_INNER_PRODUCT),
      fp16(sq_.kind() == ScalarQuantizer::Kind::f16),
      packed(sq_.kind() == ScalarQuantizer::Kind::u4 || sq_.kind() == ScalarQuantizer::Kind::u6),
      bf16(sq_.kind() == ScalarQuantizer::Kind::bf16) {
  if (!fp16 && !bf16 && sq_.is_trained()) {
    dec.resize(2 * d);
    sq_.affine(dec.data(), dec.data() + d);
    dec_a = dec.data();
    dec_b = dec.data() + d;
  }
  const SQKernels& K = sq_kernels();
  u8_dot = K.u8_dot;
  u8_l2 = K.u8_l2;
  f16_dot = K.f16_dot;
  f16_l2 = K.f16_l2;
  prefetch_lines = lines_of(code_size);
}

float SQSpace::bf16_key(const float* q, const uint8_t* c) const {
  static thread_local std::vector<float> buf;
  if (buf.size() < d) buf.resize(d);
  sq->decode(c, buf.data(), 1);
  return ip ? -inner_product(q, buf.data(), d) : l2sqr(q, buf.data(), d);
}

const uint8_t* SQSpace::unpacked(const uint8_t* c) const {
  static thread_local std::vector<uint8_t> buf;
  if (buf.size() < d) buf.resize(d);
  sq->unpack(c, buf.data());
  return buf.data();
}

const float* SQSpace::prepare(const float* x, std::vector<float>& buf) const {
  if (fp16 || bf16) return x;
  buf.resize(d + 1);
  float* a = buf.data();
  a[d] = sq_query_tables(d, dec_a, dec_b, !ip, x, a);
  return a;
}

void SQSpace::decode(int32_t id, float* out) const {
  const uint8_t* c = codes + size_t(id) * code_size;
  if (fp16)
    sq_kernels().f16_decode(nullptr, reinterpret_cast<const uint16_t*>(c), d, out);
  else if (bf16)
    sq->decode(c, out, 1);
  else
    sq_kernels().u8_decode(dec_a, dec_b, packed ? unpacked(c) : c, d, out);
}

const float* SQSpace::query_of(int32_t id, std::vector<float>& buf) const {
  // [prepared query (d + 1) | decoded vector (d)]
  buf.resize(2 * d + 1);
  float* x = buf.data() + d + 1;
  decode(id, x);
  if (fp16 || bf16) return x;
  float* a = buf.data();
  a[d] = sq_query_tables(d, dec_a, dec_b, !ip, x, a);
  return a;
}

float SQSpace::between(int32_t a, int32_t b) const {
  float* t = pair_buffer(d);
  decode(a, t);
  decode(b, t + d);
  return ip ? -inner_product(t, t + d, d) : l2sqr(t, t + d, d);
}

// ---- PQSpace ------------------------------------------------------------------
PQSpace::PQSpace(const ProductQuantizer& pq_, const uint8_t* codes_, MetricType metric)
    : codes(codes_),
      pq(&pq_),
      d(pq_.d),
      M(pq_.M),
      ksub(pq_.ksub),
      nbits(pq_.nbits),
      code_size(pq_.code_size),
      ip(metric == METRIC_INNER_PRODUCT) {
  prefetch_lines = lines_of(code_size);
}

const float* PQSpace::prepare(const float* x, std::vector<float>& buf) const {
  buf.resize(M * ksub);
  if (ip)
    pq->compute_inner_prod_table(x, buf.data());
  else
    pq->compute_distance_table(x, buf.data());
  return buf.data();
}

void PQSpace::decode(int32_t id, float* out) const {
  const uint8_t* c = codes + size_t(id) * code_size;
  for (size_t m = 0; m < M; ++m) {
    const uint32_t j = nbits == 8 ? c[m] : ProductQuantizer::read_index(c, m, nbits);
    std::copy_n(pq->get_centroids(m, j), pq->dsub, out + m * pq->dsub);
  }
}

const float* PQSpace::query_of(int32_t id, std::vector<float>& buf) const {
  // [table (M * ksub) | decoded vector (d)]
  buf.resize(M * ksub + d);
  float* x = buf.data() + M * ksub;
  decode(id, x);
  if (ip)
    pq->compute_inner_prod_table(x, buf.data());
  else
    pq->compute_distance_table(x, buf.data());
  return buf.data();
}

float PQSpace::between(int32_t a, int32_t b) const {
  // sub-space by sub-space on the centroids themselves (no decoding):
  //   |x_a - x_b|^2 = sum_m |c_{m,a_m} - c_{m,b_m}|^2,  <x_a, x_b> = sum_m <c_{m,a_m}, c_{m,b_m}>
  const uint8_t* ca = codes + size_t(a) * code_size;
  const uint8_t* cb = codes + size_t(b) * code_size;
  const size_t dsub = pq->dsub;
  // eight independent lanes (sub-vectors of a multiple of 8 dimensions):
  // the compiler vectorises them without reassociating a single sum
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  float s = 0;
  for (size_t m = 0; m < M; ++m) {
    const uint32_t ja = nbits == 8 ? ca[m] : ProductQuantizer::read_index(ca, m, nbits);
    const uint32_t jb = nbits == 8 ? cb[m] : ProductQuantizer::read_index(cb, m, nbits);
    const float* x = pq->get_centroids(m, ja);
    const float* y = pq->get_centroids(m, jb);
    size_t i = 0;
    if (ip) {
      for (; i + 8 <= dsub; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += x[i + l] * y[i + l];
      for (; i < dsub; ++i) s += x[i] * y[i];
    } else {
      for (; i + 8 <= dsub; i += 8)
        for (int l = 0; l < 8; ++l) {
          const float u = x[i + l] - y[i + l];
          acc[l] += u * u;
        }
      for (; i < dsub; ++i) {
        const float u = x[i] - y[i];
        s += u * u;
      }
    }
  }
  s += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  return ip ? -s : s;
}

}  // namespace annvil
