// IndexBinaryIVF (Faiss semantics): a binary coarse quantizer (usually
// IndexBinaryFlat, or IndexBinaryHNSW for many lists) partitions the codes
// into nlist inverted lists; a search visits the nprobe lists nearest to the
// query and scans their codes by Hamming distance.
//
// Training, as Faiss: the training codes are expanded to +-1 floats
// (binary_to_real), clustered by float k-means (cp, 10 iterations by
// default) and the centroids are binarised back (bit set where the centroid
// coordinate is > 0) to become the quantizer's codes.
#pragma once
#include <memory>
#include <unordered_map>
#include <vector>

#include "binary/index_binary.h"
#include "ivf/index_ivf.h"
#include "ivf/invlists.h"
#include "quant/kmeans.h"

namespace annvil {

struct IndexBinaryIVF : IndexBinary {
  IndexBinaryPtr quantizer;
  size_t nlist = 0;
  size_t nprobe = 1;
  size_t max_codes = 0;
  std::shared_ptr<InvertedLists> invlists;
  ClusteringParameters cp;
  // Faiss's choices among its search loops (heap / counting, per query /
  // per list); annvil has one loop and returns the same results for all of them
  bool use_heap = true;
  bool per_invlist_search = false;

  int direct_map_type = DIRECT_MAP_NONE;
  std::vector<int64_t> direct_map_array;               // id -> list << 32 | offset (-1: none)
  std::unordered_map<idx_t, int64_t> direct_map_hash;  // id -> list << 32 | offset

  IndexBinaryIVF(IndexBinaryPtr quantizer, int d, size_t nlist);

  void train(idx_t n, const uint8_t* x) override;
  void add(idx_t n, const uint8_t* x) override;
  void add_with_ids(idx_t n, const uint8_t* x, const idx_t* ids) override;
  void search(idx_t n, const uint8_t* x, idx_t k, int32_t* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const uint8_t* x, int radius, BinaryRangeResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, uint8_t* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, uint8_t* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  bool remove_ids_shifts() const override { return false; }
  void reset() override;
  size_t memory_usage() const override;

  // keys: n * np lists per query (-1: none), probed in order; at most mc
  // codes per query are scanned (0: no limit)
  void search_preassigned(idx_t n, const uint8_t* x, idx_t k, const idx_t* keys, size_t np, size_t mc,
                          const IDSelector* sel, int32_t* D, idx_t* I) const;
  void range_search_preassigned(idx_t n, const uint8_t* x, int radius, const idx_t* keys, size_t np, size_t mc,
                                const IDSelector* sel, BinaryRangeResult* result) const;
  // list_nos, ids: n entries; codes: n * code_size
  void add_preassigned(idx_t n, const uint8_t* x, const idx_t* list_nos, const idx_t* ids);
  void merge_from(IndexBinaryIVF& other, idx_t add_id = 0);
  void make_direct_map(bool on = true);
  void set_direct_map_type(int type);
  size_t get_list_size(size_t l) const;
  // effective (nprobe, max_codes, quantizer params) of a call
  void resolve_params(const SearchParameters* params, size_t* np, size_t* mc) const;

  std::string type_tag() const override { return "BinaryIVF"; }
  void write_payload(Writer& w) const override;

 private:
  void coarse_search(idx_t n, const uint8_t* x, size_t np, const SearchParameters* params,
                     std::vector<idx_t>& keys) const;
  void rebuild_direct_map();
  void check_quantizer() const;
};

}  // namespace annvil
