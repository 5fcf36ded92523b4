// IndexQG: a graph index over quantized neighbour blocks (the idea of NGT-QG
// and SymphonyQG: Gou et al., "SymphonyQG: Towards Symphonious Integration of
// Quantization and Graph for Approximate Nearest Neighbor Search", SIGMOD 2025).
//
// The graph is annvil's HNSW (hnsw.h) with M = R / 2, so level 0 has out-degree
// R; the upper levels only serve as the entry (a greedy descent with exact
// distances).  What differs from IndexHNSW is the level-0 walk:
//
//   * every vertex v owns one contiguous block holding its neighbours' ids and
//     their 4-bit PQ codes in the fast-scan layout (pq_fastscan.h), so the
//     estimates of all R neighbours come from ceil(R / 32) fast-scan blocks
//     scored with one byte-shuffle kernel and one uint8 LUT per query, and
//     one hop touches one block (plus v's own vector) instead of R scattered
//     vectors;
//   * the candidate list (size efSearch) is ordered by those estimates; a
//     candidate is re-scored exactly (from the fp16 or fp32 vector, as
//     IndexHNSW stores them) when it is expanded, and the k best exact
//     distances of expanded vertices are the result.
//
// Codes are plain PQ on the (zero-padded) vectors, pq_M sub-quantizers of 4
// bits over dpad = pq_M * ceil(d / pq_M) dimensions (zero padding makes any d
// work), so the estimate of a neighbour does not depend on which block it came
// from: a single LUT T[m][c] = |q_m - c_m|^2 (L2) or -<q_m, c_m> (IP) serves
// the whole search, and quantized sums compare across blocks.
//
// Block layout (block_stride bytes per vertex, a multiple of 64):
//   bytes [0, 4 R)                 R int32 neighbour ids (HNSW level-0 order,
//                                  -1 after the last one)
//   bytes [4 R, 4 R + G * B)       G = ceil(R / 32) fast-scan blocks of
//                                  B = pq4_block_bytes(pq_M) bytes; neighbour
//                                  j is vector j of that 32-vector block array
//                                  (padding neighbours have code 0)
// Per vector the index holds d * 2 (fp16) or d * 4 bytes of vectors, the
// HNSW graph (4 R bytes of level-0 links and a few upper links), ceil(pq_M/2)
// bytes of its own code and block_stride bytes of block.
//
// Deletes, the filtered-search planner and remove_ids are IndexHNSW's (the
// blocks are rebuilt after the graph changes); files store the blocks, so a
// memory-mapped index searches them in place.
#pragma once
#include <cstdint>
#include <vector>

#include "hnsw/index_hnsw.h"
#include "quant/pq.h"
#include "quant/pq_fastscan.h"

namespace annvil {

// efSearch (the candidate-list size) per call; same field as HNSW's
struct SearchParametersQG : SearchParametersHNSW {};

struct IndexQG : IndexHNSW {
  int R = 32;       // level-0 out-degree (= 2 * hnsw.M)
  size_t pq_M = 0;  // 4-bit sub-quantizers
  size_t dpad = 0;  // PQ dimension: d rounded up to a multiple of pq_M
  ProductQuantizer pq;
  Storage<uint8_t> codes;   // ntotal * pq.code_size: each vector's own code
  Storage<uint8_t> blocks;  // ntotal * block_stride (layout above)
  size_t block_stride = 0;

  // R: even, >= 4; pq_M: 0 picks ceil(d / 4) (4 dimensions per sub-quantizer), d when d <= 16
  IndexQG(int d, int R = 32, int pq_M = 0, MetricType metric = METRIC_L2);

  size_t ngroups() const { return (size_t(R) + kPQ4BlockSize - 1) / kPQ4BlockSize; }
  size_t ids_bytes() const { return size_t(R) * sizeof(int32_t); }
  const uint8_t* block(int32_t v) const { return blocks.data() + size_t(v) * block_stride; }

  void train(idx_t n, const float* x) override;
  void add_slots(idx_t n, const float* x, idx_t* ids) override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;
  // k-NN walks the quantized blocks; a range search (rc) runs HNSW's exact
  // level-0 walk over the same graph and vectors
  void search_graph(idx_t n, const float* x, idx_t k, int ef, bool filtered, const HnswAdmitFn& admit, float* D,
                    idx_t* I, HnswRangeCollect* rc = nullptr) const override;
  std::string type_tag() const override { return "QG"; }
  void write_payload(Writer& w) const override;

  // x: n * d floats -> n * dpad floats, zero-padded
  void pad(idx_t n, const float* x, float* out) const;
  // the float LUT of a query (pq_M * 16, smaller is better) and its uint8 form
  void query_lut(const float* x, float* lut, QuantizedLUT& qlut) const;
  // Rebuild the blocks of nodes [0, ntotal) whose level-0 list differs from
  // the ids in their block (all of them when `all`), or that are >= first_new.
  void rebuild_blocks(bool all, idx_t first_new);
  // Scalar reference of one block: the uint16 fast-scan sums of v's
  // neighbours (R entries) computed from the codes array, for tests.
  void reference_block_sums(int32_t v, const uint8_t* lut_q, uint16_t* out) const;

 protected:
  void compact_storage(const std::vector<idx_t>& keep) override;
};

namespace detail {
// Fast-scan sums of one vertex block (ngroups 32-vector blocks, M2 =
// pq4_M2(M)) with the threshold test; the dispatch is hoisted out of the walk.
// One table per instruction set, all compiled from quant/pq_fastscan_impl.h
// (fastscan::accumulate_blocks: each LUT register is loaded once for a tile
// of groups); sums are bit-identical to pq4_accumulate.
using QGScanFn = void (*)(const uint8_t* blocks, size_t nblocks, size_t M2, const uint8_t* lut_q, uint16_t* out,
                          uint16_t tmax, uint32_t* masks);
struct QGKernels {
  QGScanFn scan;
};
const QGKernels& qg_kernels();  // for the active simd_level()
const QGKernels& qg_kernels_scalar();
const QGKernels& qg_kernels_avx2();
const QGKernels& qg_kernels_avx512();
inline QGScanFn qg_scan_fn() { return qg_kernels().scan; }
}  // namespace detail

}  // namespace annvil
