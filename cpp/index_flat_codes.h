// IndexFlatCodes (Faiss's IndexFlatCodes): the base of the indexes that store
// one code of code_size bytes per vector in one flat array, the id of a
// vector being its position (IndexFlat: the float32 rows; IndexPQ,
// IndexScalarQuantizer: their codes; IndexPQFastScan: the same PQ codes
// repacked in blocks of 32, see index_pq_fastscan.h).  It owns the codes, and
// writes add, remove_ids, reset, reconstruct and merging once, over two hooks
// that a family implements: encode_vectors and decode_vectors.
//
// Layout of `codes` (the default, which every method here assumes):
//   codes[i * code_size .. (i + 1) * code_size) is the code of vector i,
//   ntotal * code_size bytes in all, 16-byte aligned when owned and 64-byte
//   aligned when it views a memory-mapped annvil file (io.h), so IndexFlat
//   reads its floats in place.
// A family with another layout overrides every method that reads `codes`.
#pragma once
#include <cstdint>

#include "core/index.h"
#include "core/storage.h"

namespace annvil {

struct IndexFlatCodes : Index {
  size_t code_size = 0;    // bytes per vector; what sa_code_size() returns
  Storage<uint8_t> codes;  // ntotal * code_size bytes (see the file header)

  // code_size may be set later, in the derived constructor, once the codec exists
  IndexFlatCodes(int d, MetricType metric, size_t code_size, bool extra_metrics = false);

  // encodes at the end of `codes` (rolled back if the encoder throws)
  void add(idx_t n, const float* x) override;
  void reset() override;
  void reconstruct(idx_t key, float* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
  // removed rows go, the later ones shift down (ids are positions, as in Faiss)
  size_t remove_ids(const IDSelector& sel) override;

  // ---- standalone codec: the stored codes themselves ----
  size_t sa_code_size() const override { return code_size; }
  // check n and is_trained, then call the hooks below
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;

  // ---- merging ----
  // same type, d, metric and code size; families add their codec's parameters
  void check_compatible_for_merge(const Index& other) const override;
  // appends other's codes; add_id must be 0 (ids are positions)
  void merge_from(Index& other, idx_t add_id = 0) override;

 protected:
  // The codec.  x: n * d floats; out / in: n * code_size bytes (add passes
  // `out` zeroed).  Arguments are already checked (n >= 0, trained).
  virtual void encode_vectors(idx_t n, const float* x, uint8_t* out) const = 0;
  virtual void decode_vectors(idx_t n, const uint8_t* in, float* x) const = 0;
};

}  // namespace annvil
