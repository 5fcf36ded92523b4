// Meta indexes over member indexes held in process (Faiss's IndexShards,
// IndexReplicas and IndexShardsIVF).
//
//   * IndexShards: the database is split over the shards; add() cuts the
//     batch into contiguous blocks, one per shard; a search asks every shard
//     for its k best and merges them (merge_knn_results).  With successive_ids
//     the ids of shard s are shifted by the sizes of shards 0 .. s-1, so the
//     shards behave as one index whose ids are positions.
//   * IndexReplicas: every replica holds the whole database; add() goes to
//     all of them and a search splits the queries into one contiguous block
//     per replica.
//   * IndexShardsIVF: shards that are IndexIVF with the same nlist, sharing
//     one coarse quantizer: the coarse search and the coarse assignment of
//     add() run once, then each shard scans its own lists
//     (IndexIVF::search_preassigned / add_core).
//
// threaded=true runs the members on the threads of the OpenMP pool, one
// member per thread (their own parallel loops then run on that one thread:
// nested parallelism stays off, so the pool is never oversubscribed);
// threaded=false runs them one after the other, each with the whole pool.
// The members remain user-visible objects, so each call takes the member's
// own lock (shared to search, exclusive to add / train / reset) besides the
// lock of the meta index that the bindings take.
#pragma once
#include <functional>
#include <vector>

#include "core/index.h"

namespace annvil {

struct IndexIVF;

struct IndexShards : Index {
  std::vector<IndexPtr> shards;
  bool threaded = false;
  bool successive_ids = true;

  // d = 0: taken from the first shard added
  IndexShards(int d, bool threaded = false, bool successive_ids = true);

  virtual void add_shard(IndexPtr shard);
  void remove_shard(const Index* shard);
  // ntotal / is_trained / metric from the shards (after they were modified directly)
  void sync_with_shards();

  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  // with successive_ids: the shard holding position `key`
  void reconstruct(idx_t key, float* out) const override;
  void reset() override;
  size_t memory_usage() const override;

  std::string type_tag() const override { return "Shards"; }
  void write_payload(Writer& w) const override;

  // first id of each shard's block (all 0 unless successive_ids)
  std::vector<idx_t> id_offsets() const;

 protected:
  void check_nonempty() const;
  // f(s) for every shard s, in parallel when threaded; the first exception is re-thrown
  void for_each_shard(const std::function<void(size_t)>& f) const;
  // the shards' per-query results (nshard * n * k) merged into D, I
  void merge_results(idx_t n, idx_t k, std::vector<float>& Dall, std::vector<idx_t>& Iall, float* D, idx_t* I) const;
};

struct IndexReplicas : Index {
  std::vector<IndexPtr> replicas;
  bool threaded = true;

  IndexReplicas(int d, bool threaded = true);

  void add_replica(IndexPtr replica);
  void remove_replica(const Index* replica);
  void sync_with_replicas();

  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  void reset() override;

  std::string type_tag() const override { return "Replicas"; }
  void write_payload(Writer& w) const override;

 private:
  void check_nonempty() const;
  void for_each_replica(const std::function<void(size_t)>& f) const;
};

struct IndexShardsIVF : IndexShards {
  IndexPtr quantizer;
  size_t nlist = 0;

  IndexShardsIVF(IndexPtr quantizer, size_t nlist, bool threaded = false, bool successive_ids = true);

  void add_shard(IndexPtr shard) override;  // an IndexIVF with the same nlist
  // trains the common quantizer (unless it holds nlist centroids already),
  // copies the centroids into each shard's quantizer and trains the shards' codecs
  void train(idx_t n, const float* x) override;
  void add_with_ids(idx_t n, const float* x, const idx_t* ids) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;

  std::string type_tag() const override { return "ShardsIVF"; }
  void write_payload(Writer& w) const override;

 private:
  IndexIVF& ivf(size_t s) const;
};

}  // namespace annvil
