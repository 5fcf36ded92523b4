// IndexBinaryHNSW (Faiss semantics): binary codes linked by an HNSW graph
// (hnsw.h), searched by Hamming distance.  The graph code is the one of the
// float HNSW indexes, instantiated for HammingSpace (hnsw_codes.h), so with
// the same M, efConstruction and insertion order it builds the same graph as
// IndexHNSWFlat over the +-1 expansion of the codes (whose L2 distances are
// 4 x the Hamming distances).  Ids are positions; no removal.
#pragma once
#include "hnsw/hnsw.h"
#include "hnsw/hnsw_codes.h"
#include "binary/index_binary.h"
#include "hnsw/index_hnsw.h"
#include "core/storage.h"

namespace annvil {

struct IndexBinaryHNSW : IndexBinary {
  HNSW hnsw;
  Storage<uint8_t> codes;  // ntotal * code_size

  explicit IndexBinaryHNSW(int d, int M = 32);

  void add(idx_t n, const uint8_t* x) override;
  // params: SearchParametersHNSW for efSearch; a selector filters the
  // results (the graph is still walked through every node)
  void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  // approximate: the efSearch candidates of a graph search within the radius
  void range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, uint8_t* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const override;
  void reset() override;
  size_t memory_usage() const override;

  HammingSpace space() const { return HammingSpace(codes.data(), size_t(code_size)); }

  std::string type_tag() const override { return "BinaryHNSW"; }
  void write_payload(Writer& w) const override;
};

}  // namespace annvil
