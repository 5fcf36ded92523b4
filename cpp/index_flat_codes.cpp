#include "index_flat_codes.h"

#include "core/code_rows.h"

namespace annvil {

IndexFlatCodes::IndexFlatCodes(int d_, MetricType metric, size_t code_size_, bool extra_metrics)
    : Index(d_, metric, extra_metrics), code_size(code_size_) {}

void IndexFlatCodes::add(idx_t n, const float* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n == 0) return;
  auto& v = codes.mut();
  const size_t n0 = v.size();
  v.resize(n0 + size_t(n) * code_size);
  try {
    encode_vectors(n, x, v.data() + n0);
  } catch (...) {
    v.resize(n0);
    throw;
  }
  ntotal += n;
}

void IndexFlatCodes::reset() {
  codes.clear();
  ntotal = 0;
}

void IndexFlatCodes::reconstruct(idx_t key, float* out) const {
  ANNVIL_CHECK(key >= 0 && key < ntotal, "id ", key, " out of range [0, ", ntotal, ")");
  decode_vectors(1, codes.data() + size_t(key) * code_size, out);
}

void IndexFlatCodes::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= ntotal, "range [", i0, ", ", i0 + ni, ") out of [0, ", ntotal, ")");
  if (ni) decode_vectors(ni, codes.data() + size_t(i0) * code_size, out);
}

size_t IndexFlatCodes::remove_ids(const IDSelector& sel) { return remove_code_rows(codes, ntotal, code_size, sel); }

void IndexFlatCodes::sa_encode(idx_t n, const float* x, uint8_t* out) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n) encode_vectors(n, x, out);
}

void IndexFlatCodes::sa_decode(idx_t n, const uint8_t* in, float* x) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n) decode_vectors(n, in, x);
}

void IndexFlatCodes::add_sa_codes(idx_t n, const uint8_t* c, const idx_t*) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  auto& v = codes.mut();
  v.insert(v.end(), c, c + size_t(n) * code_size);
  ntotal += n;
}

void IndexFlatCodes::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  if (!dynamic_cast<const IndexFlatCodes*>(&other))
    ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
}

void IndexFlatCodes::merge_from(Index& other, idx_t add_id) {
  ANNVIL_CHECK(add_id == 0, "merge_from: add_id must be 0 for ", type_tag(), " (its ids are positions)");
  check_compatible_for_merge(other);
  auto& o = static_cast<IndexFlatCodes&>(other);
  ANNVIL_CHECK(o.code_size == code_size, "cannot merge codes of ", o.code_size, " bytes into an index of ", code_size,
               "-byte codes");
  auto& v = codes.mut();
  v.insert(v.end(), o.codes.data(), o.codes.data() + o.codes.size());
  ntotal += o.ntotal;
  o.reset();
}

}  // namespace annvil
