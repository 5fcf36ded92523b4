// IndexIVFPQFastScan: IVF with 4-bit PQ codes scanned 32 at a time with
// quantised look-up tables and byte shuffles (pq_fastscan.h), Faiss semantics.
//
// Storage.  Each inverted list keeps IndexIVF's contract (list_size * code_size
// bytes, code_size = ceil(M / 2)), but its first npacked[l] entries (a
// multiple of 32) are stored as pq4 blocks: 32 entries of ceil(M / 2) bytes
// take exactly one block of pq4_block_bytes(M) = 16 * M2 bytes, so the byte
// count is unchanged.  The remaining (< 32 after add / remove) entries are
// plain PQ codes.  Adding appends plain codes and packs every completed block;
// removal unpacks, lets the base class compact, and packs again.  A search
// handles both regions, so it never depends on how much is packed.
//
// Search, per query: a float LUT (M x 16) per probed list (or one shared by all
// lists when it does not depend on the list: no residual, or inner product),
// quantised to uint8 (pq4_quantize_lut); accumulation in uint16 with the SIMD
// kernels; candidates below the heap's threshold (converted to the uint16
// domain of the list) are dequantised, the list's coarse term added, and kept
// in a float heap.  Returned distances are these dequantised estimates (as
// Faiss); wrap the index in IndexRefineFlat for exact distances.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ivf/index_ivf.h"
#include "ivf/index_ivf_pq.h"
#include "quant/pq.h"
#include "quant/pq_tables.h"

namespace annvil {

// Faiss's SearchParametersIVF early-stop knobs as this index applies them
// (implem 10 / 11, query by query in probe order, whole lists): stop before
// the next list once max_codes codes passing the selector were scanned or
// max_lists_num non-empty lists were visited (0: no limit); ensure_topk_full
// raises both limits to at least k.
struct FastScanKnobs {
  size_t max_codes = 0, max_lists_num = 0;
  bool ensure_topk_full = false;
  bool any() const { return max_codes || max_lists_num || ensure_topk_full; }
};

struct IndexIVFPQFastScan : IndexIVF {
  ProductQuantizer pq;  // nbits = 4
  size_t bbs = 32;      // Faiss's block size (a multiple of 32); the lists' layout is the same for all
  // Faiss's implem (serialized): 0 auto; 1 float LUT (exactly IndexIVFPQ's
  // search); 2 uint8 LUT with a scalar scan (the reference of the SIMD
  // scans); 10 / 11 SIMD, query by query (heap / reservoir; the early-stop
  // knobs need them); 12..15 SIMD, batches grouped by list where the LUT does
  // not depend on the list; 100 + i: i without slicing over threads.
  int implem = 0;
  int qbs = 0;                    // Faiss's query-block schedule: accepted, unused
  int use_precomputed_table = 0;  // as IndexIVFPQ (L2 + by_residual only)
  std::vector<float> precomputed_table;
  PQCodebookCache codebooks;
  std::vector<size_t> npacked;  // per list: entries stored in pq4 blocks (multiple of 32)
  // Packed copy of each list's plain tail (< 32 entries, one zero-padded
  // block) so that a search scans whole lists with the SIMD kernel; valid
  // when tail_size[l] == list_size(l) (rebuilt by pack_lists, not serialized).
  std::vector<std::vector<uint8_t>> tail_blocks;
  std::vector<size_t> tail_size;

  // by_residual defaults to false, as Faiss's IndexIVFPQFastScan ("fs"; "fsr"
  // in the factory turns it on).
  IndexIVFPQFastScan(IndexPtr quantizer, int d, size_t nlist, size_t M, size_t nbits = 4, MetricType metric = METRIC_L2,
                     size_t bbs = 32);
  // Same quantizers and vectors as an IndexIVFPQ with nbits = 4 (codes repacked).
  explicit IndexIVFPQFastScan(const IndexIVFPQ& orig, size_t bbs = 32);

  void train(idx_t n, const float* x) override;
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  // checks the knobs against implem, the coarse search, then search_fs
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  // float scanner (exact sums of the float LUT); max_empty_result_buckets
  // stops a query after that many probed lists without a hit
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;

  void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
  void decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const override;
  std::unique_ptr<InvertedListScanner> get_scanner() const override;
  bool encoder_needs_training() const override { return !skip_encoder_training_; }
  using IndexIVF::check_compatible_for_merge;
  void check_compatible_for_merge(const IndexIVF& other) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  void search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D,
                          idx_t* I, size_t nprobe, size_t max_codes, const IDSelector* sel) const override;

  // The implem actually run for a k-NN search (0 resolved, 100 + i -> i);
  // raises for unknown values and for knobs the implem does not honour.
  int resolve_implem(idx_t k, bool knobs) const;
  // search_preassigned with an implem and knobs; updates indexIVF_stats
  void search_fs(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D, idx_t* I,
                 size_t nprobe, int impl, const FastScanKnobs& knobs, const IDSelector* sel) const;

  // merge_from for packed lists (IndexIVF::merge_from would append packed
  // bytes after plain ones): unpacks both, merges, packs again.
  void merge_from_fs(IndexIVF& other, idx_t add_id = 0);
  void merge_from(Index& other, idx_t add_id = 0) override;

  void precompute_table();
  bool uses_precomputed_table() const {
    return use_precomputed_table == 1 && by_residual && metric_type == METRIC_L2 && !precomputed_table.empty();
  }

  // The plain PQ code (code_size bytes) of entry i of list l, whichever region it is in.
  void get_list_code(size_t l, size_t i, uint8_t* code) const;
  // Pack every complete block / turn every list back into plain codes.
  void pack_lists();
  void unpack_lists();

  size_t memory_usage() const override;

  std::string type_tag() const override { return "IVFPQFastScan"; }
  void write_payload(Writer& w) const override;

 private:
  void search_grouped_fs(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D,
                         idx_t* I, size_t nprobe, const IDSelector* sel) const;
  // query by query; reference: scalar sums of the uint8 LUT (implem 2)
  void search_per_query_fs(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D,
                           idx_t* I, size_t nprobe, const FastScanKnobs& knobs, const IDSelector* sel, bool reference,
                           size_t* nlist_visited, size_t* ndis) const;
  // implem 1: IndexIVFPQ's own search on the unpacked lists
  void search_float_fs(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D, idx_t* I,
                       size_t nprobe, const IDSelector* sel) const;
  bool skip_encoder_training_ = false;
};

}  // namespace annvil
