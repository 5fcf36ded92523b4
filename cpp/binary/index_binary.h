// Binary indexes (Faiss's IndexBinary family): vectors of d bits (d a
// multiple of 8) stored as code_size = d / 8 bytes, compared by Hamming
// distance (hamming.h).  Distances are int32, missing results are
// (INT32_MAX, -1), range searches return the codes at distance < radius.
//
// This file: the IndexBinary base, exact search (IndexBinaryFlat), user ids
// (IndexBinaryIDMap / IndexBinaryIDMap2), a binary front for a float index
// (IndexBinaryFromFloat), and the binary index records of the annvil file
// format (a registry of their own beside io.h's, same framing).  IVF, HNSW
// and hash indexes live in index_binary_ivf.h, index_binary_hnsw.h,
// index_binary_hash.h.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "distances/hamming.h"
#include "core/index.h"
#include "core/storage.h"

namespace annvil {

class Writer;
class Reader;

struct IndexBinary {
  int d = 0;          // bits
  int code_size = 0;  // bytes, d / 8
  idx_t ntotal = 0;
  bool is_trained = true;
  bool verbose = false;
  MetricType metric_type = METRIC_L2;  // Faiss reports L2 for Hamming indexes

  explicit IndexBinary(int d);
  virtual ~IndexBinary() = default;

  // x: n * code_size bytes everywhere
  virtual void train(idx_t n, const uint8_t* x);
  virtual void add(idx_t n, const uint8_t* x) = 0;
  virtual void add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids);
  // D, I: n * k, sorted by distance
  virtual void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
                      const SearchParameters* params = nullptr) const = 0;
  virtual void range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                            const SearchParameters* params = nullptr) const;
  virtual void reconstruct(idx_t key, uint8_t* out) const;
  virtual void reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const;
  virtual size_t remove_ids(const IDSelector& sel);
  // as Index::remove_ids_shifts: true when remaining vectors are renumbered
  virtual bool remove_ids_shifts() const { return true; }
  virtual void reset() = 0;
  virtual size_t memory_usage() const { return 0; }

  virtual std::string type_tag() const = 0;
  virtual void write_payload(Writer& w) const = 0;

  void check_trained() const;
  void check_k(idx_t k) const;
};

using IndexBinaryPtr = std::shared_ptr<IndexBinary>;

// ---- exact search -----------------------------------------------------------------
struct IndexBinaryFlat : IndexBinary {
  Storage<uint8_t> xb;  // ntotal * code_size
  // Faiss's knobs of its two search strategies; annvil has one (blocked
  // scan into heaps), so they are kept for compatibility only
  bool use_heap = true;
  int query_batch_size = 32;

  explicit IndexBinaryFlat(int d);

  void add(idx_t n, const uint8_t* x) override;
  void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, uint8_t* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;

  std::string type_tag() const override { return "BinaryFlat"; }
  void write_payload(Writer& w) const override;
};

// ---- user ids ---------------------------------------------------------------------
struct IndexBinaryIDMap : IndexBinary {
  IndexBinaryPtr index;
  std::vector<idx_t> id_map;

  explicit IndexBinaryIDMap(IndexBinaryPtr sub);

  void train(idx_t n, const uint8_t* x) override;
  void add(idx_t n, const uint8_t* x) override;
  void add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) override;
  void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                    const SearchParameters* params = nullptr) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;

  std::string type_tag() const override { return "BinaryIDMap"; }
  void write_payload(Writer& w) const override;
};

struct IndexBinaryIDMap2 : IndexBinaryIDMap {
  std::unordered_map<idx_t, idx_t> rev_map;

  explicit IndexBinaryIDMap2(IndexBinaryPtr sub);
  void add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  void reconstruct(idx_t key, uint8_t* out) const override;
  void construct_rev_map();

  std::string type_tag() const override { return "BinaryIDMap2"; }
};

// ---- a float index behind a binary front -------------------------------------------
// Codes are expanded to +-1 floats (binary_to_real), so the float index's
// squared L2 distance is 4 x the Hamming distance; results are reported as
// int32(D / 4), as Faiss.
struct IndexBinaryFromFloat : IndexBinary {
  IndexPtr index;

  explicit IndexBinaryFromFloat(IndexPtr index);

  void train(idx_t n, const uint8_t* x) override;
  void add(idx_t n, const uint8_t* x) override;
  void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void reset() override;
  size_t memory_usage() const override;

  std::string type_tag() const override { return "BinaryFromFloat"; }
  void write_payload(Writer& w) const override;
};

// ---- index files ---------------------------------------------------------------------
using IndexBinaryReaderFn = std::function<IndexBinaryPtr(Reader&)>;
void register_index_binary_type(const std::string& tag, IndexBinaryReaderFn fn);
void write_index_binary_record(const IndexBinary& index, Writer& w);
IndexBinaryPtr read_index_binary_record(Reader& r);

struct IndexBinaryTypeRegistration {
  IndexBinaryTypeRegistration(const std::string& tag, IndexBinaryReaderFn fn) {
    register_index_binary_type(tag, std::move(fn));
  }
};
#define ANNVIL_REGISTER_INDEX_BINARY(tag, fn) \
  static ::annvil::IndexBinaryTypeRegistration ANNVIL_CONCAT(annvil_binary_reg_, __LINE__)(tag, fn)

// d, ntotal, is_trained
void write_binary_header(Writer& w, const IndexBinary& idx);
struct BinaryHeader {
  int d;
  idx_t ntotal;
  bool is_trained;
};
BinaryHeader read_binary_header(Reader& r);

std::vector<uint8_t> serialize_index_binary(const IndexBinary& index);
IndexBinaryPtr deserialize_index_binary(const uint8_t* data, size_t n);
void write_index_binary_file(const IndexBinary& index, const std::string& path);
IndexBinaryPtr read_index_binary_file(const std::string& path, bool mmap = false, bool verify = true);

}  // namespace annvil
