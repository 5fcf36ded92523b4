// Hash indexes over binary codes (Faiss's IndexBinaryHash and
// IndexBinaryMultiHash): a code's key is b of its bits, the codes with the
// same key share a bucket, and a search looks up the query's key and every
// key within nflip bit flips of it, then ranks the codes found there by their
// full Hamming distance.  Distances are exact for the codes it reaches, and
// every code within distance nflip of the query is reached (its key differs
// in at most nflip bits); beyond that it is a filter: a larger nflip visits
// more buckets and finds more of the true neighbours.
//
//   IndexBinaryHash(d, b):               key = bits [0, b); buckets hold ids and codes
//   IndexBinaryMultiHash(d, nhash, b):   nhash keys, key h = bits [h b, (h + 1) b);
//                                        the codes live once in a flat storage
//                                        and the tables hold ids only.
// Bits are numbered as everywhere (bit j = bit j % 8 of byte j / 8).
#pragma once
#include <atomic>
#include <memory>
#include <unordered_map>
#include <vector>

#include "binary/index_binary.h"

namespace annvil {

// Faiss's IndexBinaryHashStats (faiss.cvar.indexBinaryHash_stats): queries,
// hash-table lookups, non-empty buckets visited and distances computed.
struct IndexBinaryHashStats {
  std::atomic<uint64_t> nq{0}, n0{0}, nlist{0}, ndis{0};
  void reset() {
    nq = 0;
    n0 = 0;
    nlist = 0;
    ndis = 0;
  }
  void add(uint64_t q, uint64_t lookups, uint64_t lists, uint64_t dis) {
    nq.fetch_add(q, std::memory_order_relaxed);
    n0.fetch_add(lookups, std::memory_order_relaxed);
    nlist.fetch_add(lists, std::memory_order_relaxed);
    ndis.fetch_add(dis, std::memory_order_relaxed);
  }
};
extern IndexBinaryHashStats indexBinaryHash_stats;

// b bits of code starting at bit `first` (b <= 63), bit j of the key being bit first + j
uint64_t binary_hash_key(const uint8_t* code, size_t first, int b);

struct IndexBinaryHash : IndexBinary {
  struct Bucket {
    std::vector<idx_t> ids;
    std::vector<uint8_t> codes;  // ids.size() * code_size
  };
  std::unordered_map<uint64_t, Bucket> invlists;
  int b = 0;
  int nflip = 0;

  IndexBinaryHash(int d, int b);

  void add(idx_t n, const uint8_t* x) override;
  void add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) override;
  void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reset() override;
  size_t memory_usage() const override;
  size_t hashtable_size() const { return invlists.size(); }

  std::string type_tag() const override { return "BinaryHash"; }
  void write_payload(Writer& w) const override;
};

struct IndexBinaryMultiHash : IndexBinary {
  std::shared_ptr<IndexBinaryFlat> storage;
  int nhash = 0, b = 0;
  int nflip = 0;
  std::vector<std::unordered_map<uint64_t, std::vector<idx_t>>> maps;  // nhash tables: key -> ids

  IndexBinaryMultiHash(int d, int nhash, int b);

  void add(idx_t n, const uint8_t* x) override;
  void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reset() override;
  size_t memory_usage() const override;
  size_t hashtable_size() const;

  std::string type_tag() const override { return "BinaryMultiHash"; }
  void write_payload(Writer& w) const override;

 private:
  // the distinct ids in the buckets reached from query q
  void candidates(const uint8_t* q, std::vector<idx_t>& out, uint64_t* lookups, uint64_t* lists) const;
};

}  // namespace annvil
