// MultiIndexQuantizer (Faiss's inverted multi-index coarse quantizer, "IMI"):
// a product quantizer with M sub-quantizers of ksub = 2^nbits centroids
// each, seen as an index of ksub^M "virtual" centroids, the concatenations
// (c_0[i_0], ..., c_{M-1}[i_{M-1}]).  The label of a centroid is
// sum_m i_m * ksub^m (sub-quantizer 0 least significant, as Faiss).
//
// Search: the L2 distance to a concatenation is the sum of the sub-space
// distances, so the k nearest virtual centroids are the k smallest sums
// sum_m t_m[i_m] over the M distance tables.  The tables are sorted and
// combined two at a time: the k best sums of (partial result, next sorted
// table) are enumerated with a heap from (0, 0), expanding (i, j) to (i+1, j)
// and (i, j+1) (the multi-sequence algorithm); only the k best partial sums
// can lead to the k best totals, so keeping k after each step is exact.
#pragma once
#include "core/index.h"
#include "quant/pq.h"

namespace annvil {

struct MultiIndexQuantizer : Index {
  ProductQuantizer pq;

  MultiIndexQuantizer(int d, size_t M, size_t nbits);

  void train(idx_t n, const float* x) override;  // trains pq; ntotal becomes ksub^M
  void add(idx_t n, const float* x) override;    // refused: the centroids are virtual
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  void reset() override;  // refused, as Faiss

  std::string type_tag() const override { return "MultiIndexQuantizer"; }
  void write_payload(Writer& w) const override;

 protected:
  // the kk best sums for one query from per-sub-space candidate lists
  // (cand[m]: (distance, centroid number), any order), written to Dq / Iq (k)
  void combine(std::vector<std::vector<std::pair<float, idx_t>>>& cand, size_t kk, idx_t k, float* Dq, idx_t* Iq) const;
};

// Faiss's MultiIndexQuantizer2: the same virtual centroids, but the nearest
// centroids of each sub-space are found by a given index over that
// sub-space's centroids (assign_indexes[m], e.g. an HNSW), which train()
// fills with the trained sub-centroids.
struct MultiIndexQuantizer2 : MultiIndexQuantizer {
  std::vector<IndexPtr> assign_indexes;

  MultiIndexQuantizer2(int d, size_t nbits, std::vector<IndexPtr> assign_indexes);
  void train(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  std::string type_tag() const override { return "MultiIndexQuantizer2"; }
  void write_payload(Writer& w) const override;
};

}  // namespace annvil
