// IndexIVF: the inverted-file base class (Faiss semantics).
//
// A coarse quantizer (any Index, usually IndexFlat) partitions the space into
// nlist cells; each vector is stored, encoded, in the inverted list of its
// nearest centroid; a search visits the nprobe lists nearest to the query.
//
// A subclass supplies only the encoding:
//   * encode_vectors(n, x, list_nos, codes): code_size bytes per vector (the
//     subclass forms residuals x - centroid itself when by_residual);
//   * decode_vectors(n, codes, list_nos, x): the inverse (for reconstruct);
//   * get_scanner(): an InvertedListScanner that, after set_query/set_list,
//     gives the key of a code (smaller is better: L2 distance or -<q, x>);
//   * optionally train_encoder(), and list_vectors() when the codes decode
//     cheaply to floats (then lists probed by many queries of a batch are
//     scanned with the panel kernels of distances.h).
// Everything else (training the coarse quantizer, assignment, the lists,
// removal, merging, the direct map, range search, serialization of the
// common part) lives here.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/topk.h"
#include "core/index.h"
#include "ivf/invlists.h"
#include "ivf/ivf_stats.h"
#include "quant/kmeans.h"

namespace annvil {

// Multiply-adds below which IVF searches stay on one thread (about 1 ms).
constexpr size_t kMinParallelWork = size_t(1) << 22;

struct SearchParametersIVF : SearchParameters {
  size_t nprobe = 0;     // 0: the index's nprobe
  size_t max_codes = 0;  // stop visiting lists once this many codes were scanned (0: no limit)
  // Faiss's early-stop knobs, honoured by IndexIVFPQFastScan (implem 0 / 10 / 11):
  size_t max_lists_num = 0;             // k-NN: visit at most this many non-empty lists (0: nprobe)
  bool ensure_topk_full = false;        // k-NN: raise max_codes / max_lists_num to at least k
  size_t max_empty_result_buckets = 0;  // range: stop after this many probed lists without a hit (0: never)
  // parameters of the coarse quantizer's search (e.g. SearchParametersHNSW
  // for an HNSW quantizer); null: the quantizer's own settings
  std::shared_ptr<const SearchParameters> quantizer_params;
};

// the quantizer_params of params when it is a SearchParametersIVF, else null
const SearchParameters* quantizer_params_of(const SearchParameters* params);

// Scans the codes of one inverted list for one query.  Keys are "smaller is
// better": the L2 distance, or the negated inner product.
struct InvertedListScanner {
  const IDSelector* sel = nullptr;
  idx_t list_no = -1;

  virtual ~InvertedListScanner() = default;
  // q: d floats; valid until the next set_query
  virtual void set_query(const float* q) = 0;
  // coarse_dis: the quantizer's distance from the query to the list's centroid
  virtual void set_list(idx_t list_no, float coarse_dis) = 0;
  virtual float distance_to_code(const uint8_t* code) const = 0;
  // n codes (code_size bytes each) with their ids: push those that beat the
  // heap; returns the number of codes scanned.
  virtual size_t scan_codes(size_t n, const uint8_t* codes, size_t code_size, const idx_t* ids, TopK& heap) const;
  // entries whose key is below key_radius go to out as (key, id)
  virtual void scan_codes_range(size_t n, const uint8_t* codes, size_t code_size, const idx_t* ids, float key_radius,
                                std::vector<std::pair<float, idx_t>>& out) const;
};

// Faiss's DirectMap types: id -> (list, offset) for reconstruct.
enum DirectMapType : int { DIRECT_MAP_NONE = 0, DIRECT_MAP_ARRAY = 1, DIRECT_MAP_HASHTABLE = 2 };

struct IndexIVF : Index {
  IndexPtr quantizer;
  size_t nlist = 0;
  size_t nprobe = 1;
  size_t max_codes = 0;
  size_t code_size = 0;
  bool by_residual = false;
  std::shared_ptr<InvertedLists> invlists;
  ClusteringParameters cp;  // coarse k-means (niter 10, as Faiss)

  // A batch's lists probed by at least this many queries go through the panel
  // kernel (when list_vectors is available); 0: automatic.  Not serialized.
  int panel_min_queries = 0;

  int direct_map_type = DIRECT_MAP_NONE;
  std::vector<int64_t> direct_map_array;               // id -> list << 32 | offset (-1: removed)
  std::unordered_map<idx_t, int64_t> direct_map_hash;  // id -> list << 32 | offset

  // extra_metrics: the codec handles the metrics beyond L2 / IP (IVFFlat only)
  IndexIVF(IndexPtr quantizer, int d, size_t nlist, size_t code_size, MetricType metric, bool extra_metrics = false);

  // ---- what a subclass provides ----
  // codes: n * code_size; list_nos[i] < 0 means "not added" (codes left zero)
  virtual void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const = 0;
  // x: n * d
  virtual void decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const = 0;
  virtual std::unique_ptr<InvertedListScanner> get_scanner() const = 0;
  // Train the codec on n vectors (residuals when by_residual) assigned to
  // lists `assign`.  Default: nothing to train.
  virtual void train_encoder(idx_t n, const float* x, const idx_t* assign);
  virtual bool encoder_needs_training() const { return false; }
  // Float vectors of list l (list_size(l) * d floats), a pointer into the
  // list or decoded into buf; nullptr (the default) when the codec has no cheap
  // decoder, and every list is then scanned with the scanner.
  virtual const float* list_vectors(size_t l, std::vector<float>& buf) const;
  // Whether batches are searched list by list (search_grouped, the default).
  // The grouped order calls the scanner's set_query once per (query, list)
  // pair; a codec whose set_query is costly (PQ distance tables) and that has
  // no list_vectors may return false to get the query-by-query order, where
  // set_query runs once per query.
  virtual bool use_grouped_search() const { return true; }
  // Raise if `other` cannot be merged into this (beyond the common checks).
  virtual void check_compatible_for_merge(const IndexIVF& other) const;
  void check_compatible_for_merge(const Index& other) const override;  // other must be an IndexIVF

  // Add one search's counts to indexIVF_stats: n queries with their np probed
  // lists (keys), max_codes mc (0: none), selector sel (may be null).
  void count_search(idx_t n, const idx_t* keys, size_t np, size_t mc, const IDSelector* sel) const;

  // ---- Index ----
  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  bool remove_ids_shifts() const override { return false; }
  void reset() override;
  size_t memory_usage() const override;

  // ---- standalone codes: the list number (coarse_code_size() bytes, little
  // endian, as Faiss) followed by the code_size bytes of encode_vectors ----
  size_t coarse_code_size() const;
  void encode_listno(idx_t list_no, uint8_t* code) const;
  idx_t decode_listno(const uint8_t* code) const;  // checked against nlist
  size_t sa_code_size() const override { return coarse_code_size() + code_size; }
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // the label of each result resolved to its stored code and decoded
  void search_and_reconstruct(idx_t n, const float* x, idx_t k, float* D, idx_t* I, float* recons,
                              const SearchParameters* params = nullptr) const override;

  // ---- IVF-specific ----
  // keys / coarse_dis: n * nprobe, the lists to visit for each query (-1: none)
  // Without max_codes the (query, list) pairs are grouped by list and each
  // probed list is scanned once for all its queries; with max_codes, query by
  // query in probe order.
  virtual void search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis,
                                  float* D, idx_t* I, size_t nprobe, size_t max_codes, const IDSelector* sel) const;
  void range_search_preassigned(idx_t n, const float* x, float radius, const idx_t* keys, const float* coarse_dis,
                                RangeSearchResult* result, size_t nprobe, size_t max_codes,
                                const IDSelector* sel) const;
  // Append pre-encoded entries: list_nos, ids: n; codes: n * code_size.
  void add_preassigned(idx_t n, const idx_t* list_nos, const idx_t* ids, const uint8_t* codes);
  void reconstruct_from_offset(idx_t list_no, idx_t offset, float* out) const;
  // x - centroid(list_no): d floats
  void compute_residual(const float* x, float* residual, idx_t list_no) const;
  // Move other's entries into this index (ids shifted by add_id); other ends empty.
  void merge_from(IndexIVF& other, idx_t add_id = 0);
  void merge_from(Index& other, idx_t add_id = 0) override;  // other must be an IndexIVF
  void make_direct_map(bool on = true);
  void set_direct_map_type(int type);
  size_t get_list_size(size_t l) const;
  // effective (nprobe, max_codes, sel) of a call
  void resolve_params(const SearchParameters* params, size_t* np, size_t* mc, const IDSelector** sel) const;

  // ---- ivflib-level operations (ivf_extra.cpp) ----
  // Add n vectors whose lists are given (list_nos: n, from this index's
  // quantizer; -1: skip); ids: n, or null for ntotal, ntotal + 1, ... (Faiss's add_core)
  void add_core(idx_t n, const float* x, const idx_t* ids, const idx_t* list_nos);
  // Copy to `other` (same type, nlist and code size) the entries selected by
  // Faiss's subset_type: 0 ids in [a1, a2); 1 id % a1 == a2; 2 the share
  // [a1, a2) of the entries (positions over ntotal, list by list); 3 the
  // part a2 of a1 equal parts of each list; 4 the lists [a1, a2).
  // Returns the number of entries copied.
  size_t copy_subset_to(IndexIVF& other, int subset_type, idx_t a1, idx_t a2) const;
  // Replace the vectors of ids (n) by x (n * d), re-assigned to their new
  // lists; needs a direct map (Faiss's update_vectors)
  void update_vectors(idx_t n, const idx_t* ids, const float* x);
  // search(), plus the stored code of every result: codes: n * k * (code_size
  // + coarse_code_size() if include_listnos) bytes, the list number first as
  // in sa_encode; all bytes 0xff where the label is -1
  void search_and_return_codes(idx_t n, const float* x, idx_t k, float* D, idx_t* I, uint8_t* codes,
                               bool include_listnos, const SearchParameters* params = nullptr) const;
  // (list, offset) of each label of I (n * k), found in the query's probed
  // lists (or through the direct map); -1 where the label is -1
  void locate_results(idx_t n, const float* x, idx_t k, const idx_t* I, const SearchParameters* params, idx_t* lists,
                      idx_t* offsets) const;
  // the lists reordered: new list i = old list perm[i] (the direct map follows)
  void permute_invlists(const idx_t* perm);
  // lists [i0, i1) copied out as lists 0 .. i1-i0-1 of a new InvertedLists
  std::shared_ptr<InvertedLists> get_invlist_range(size_t i0, size_t i1) const;
  // lists [i0, i1) replaced by the lists of src (i1 - i0 lists, same code size)
  void set_invlist_range(size_t i0, size_t i1, const InvertedLists& src);
  // a new coarse quantizer with the same d (Faiss's `index.quantizer = q`)
  void replace_quantizer(IndexPtr q);

  // ---- serialization helpers for subclasses ----
  // quantizer record, nlist, nprobe, max_codes, code_size, by_residual,
  // direct map type, then the lists
  void write_ivf(Writer& w) const;
  struct Common {
    IndexPtr quantizer;
    size_t nlist, nprobe, max_codes, code_size;
    bool by_residual;
    int direct_map_type;
  };
  static Common read_ivf_common(Reader& r, int d);
  // reads the lists into idx (built from Common) and restores the rest
  static void read_ivf_lists(Reader& r, IndexIVF& idx, const Common& c, idx_t ntotal, bool is_trained);

 protected:
  void search_grouped(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D, idx_t* I,
                      size_t nprobe, const IDSelector* sel) const;
  void search_per_query(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D,
                        idx_t* I, size_t nprobe, size_t max_codes, const IDSelector* sel) const;
  void coarse_assign(idx_t n, const float* x, idx_t* assign) const;
  void check_quantizer() const;
  void rebuild_direct_map();
  void check_direct_map_for_add(idx_t n, const idx_t* ids) const;
};

}  // namespace annvil
