// Kernels for HNSW's lossless half-precision vector storage, shared by the
// per-ISA translation units (hnsw_f16_avx2.cpp, hnsw_f16_avx512.cpp), each of
// which defines `struct H` (width W, load of W floats / W halves as floats,
// fmadd, sub, reduce, and exact float->half round trip of W values) before
// including this file inside an anonymous namespace.

inline float ip_fh(const float* x, const uint16_t* y, size_t d) {
  typename H::reg a0 = H::zero(), a1 = H::zero();
  size_t p = 0;
  for (; p + 2 * H::W <= d; p += 2 * H::W) {
    a0 = H::fmadd(H::loadf(x + p), H::loadh(y + p), a0);
    a1 = H::fmadd(H::loadf(x + p + H::W), H::loadh(y + p + H::W), a1);
  }
  for (; p + H::W <= d; p += H::W) a0 = H::fmadd(H::loadf(x + p), H::loadh(y + p), a0);
  float s = H::reduce(H::add(a0, a1));
  for (; p < d; ++p) s += x[p] * H::half_to_float(y[p]);
  return s;
}

inline float l2_fh(const float* x, const uint16_t* y, size_t d) {
  typename H::reg a0 = H::zero(), a1 = H::zero();
  size_t p = 0;
  for (; p + 2 * H::W <= d; p += 2 * H::W) {
    auto t0 = H::sub(H::loadf(x + p), H::loadh(y + p));
    auto t1 = H::sub(H::loadf(x + p + H::W), H::loadh(y + p + H::W));
    a0 = H::fmadd(t0, t0, a0);
    a1 = H::fmadd(t1, t1, a1);
  }
  for (; p + H::W <= d; p += H::W) {
    auto t = H::sub(H::loadf(x + p), H::loadh(y + p));
    a0 = H::fmadd(t, t, a0);
  }
  float s = H::reduce(H::add(a0, a1));
  for (; p < d; ++p) {
    float t = x[p] - H::half_to_float(y[p]);
    s += t * t;
  }
  return s;
}

inline float ip_hh(const uint16_t* x, const uint16_t* y, size_t d) {
  typename H::reg a0 = H::zero();
  size_t p = 0;
  for (; p + H::W <= d; p += H::W) a0 = H::fmadd(H::loadh(x + p), H::loadh(y + p), a0);
  float s = H::reduce(a0);
  for (; p < d; ++p) s += H::half_to_float(x[p]) * H::half_to_float(y[p]);
  return s;
}

inline float l2_hh(const uint16_t* x, const uint16_t* y, size_t d) {
  typename H::reg a0 = H::zero();
  size_t p = 0;
  for (; p + H::W <= d; p += H::W) {
    auto t = H::sub(H::loadh(x + p), H::loadh(y + p));
    a0 = H::fmadd(t, t, a0);
  }
  float s = H::reduce(a0);
  for (; p < d; ++p) {
    float t = H::half_to_float(x[p]) - H::half_to_float(y[p]);
    s += t * t;
  }
  return s;
}

// Encode n floats as halves; false as soon as one is not exactly
// representable (out is then partially written).
inline bool encode_exact(const float* x, size_t n, uint16_t* out) {
  size_t i = 0;
  for (; i + H::W <= n; i += H::W)
    if (!H::encode_block(x + i, out + i)) return false;
  for (; i < n; ++i) {
    uint16_t h = H::float_to_half(x[i]);
    if (H::half_to_float(h) != x[i]) return false;
    out[i] = h;
  }
  return true;
}

inline void decode(const uint16_t* x, size_t n, float* out) {
  size_t i = 0;
  for (; i + H::W <= n; i += H::W) H::storef(out + i, H::loadh(x + i));
  for (; i < n; ++i) out[i] = H::half_to_float(x[i]);
}

inline HnswF16Kernels make_kernels() { return HnswF16Kernels{ip_fh, l2_fh, ip_hh, l2_hh, encode_exact, decode}; }
