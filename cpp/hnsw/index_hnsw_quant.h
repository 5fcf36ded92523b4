// HNSW graphs over compressed vectors (Faiss's IndexHNSWSQ and IndexHNSWPQ).
//
// The graph, deletes, planner and file layout are IndexHNSW's; the vectors
// are kept only as codes (code_size bytes each) and every distance, while
// building and while searching, is computed from the codes (hnsw_codes.h:
// SQ code-domain kernels, PQ per-query lookup tables).  The codec must be
// trained (train(x)) before add(), except for QT_fp16.
#pragma once
#include <vector>

#include "hnsw/hnsw_codes.h"
#include "hnsw/index_hnsw.h"
#include "quant/pq.h"
#include "quant/sq.h"

namespace annvil {

struct IndexHNSWCodes : IndexHNSW {
  Storage<uint8_t> codes;  // ntotal * code_size
  size_t code_size = 0;

  IndexHNSWCodes(int d, int M, MetricType metric);

  void add_slots(idx_t n, const float* x, idx_t* ids) override;
  // add_slots for vectors given as codes (n * code_size)
  void add_code_slots(idx_t n, const uint8_t* c, idx_t* ids);
  void row_f32(idx_t i, float* out) const override;
  // standalone codes: the storage codes themselves
  size_t sa_code_size() const override { return code_size; }
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  void slot_code(idx_t i, uint8_t* code) const override;
  bool stores_floats() const override { return false; }
  void reset() override;
  size_t memory_usage() const override;
  void write_payload(Writer& w) const override;

  // n vectors (x: n * d) to codes (n * code_size)
  virtual void encode(idx_t n, const float* x, uint8_t* out) const = 0;
  // decode n codes (n * code_size) to out (n * d)
  virtual void decode(idx_t n, const uint8_t* c, float* out) const = 0;
  // link nodes (codes already stored) into the graph
  virtual void insert_nodes(const std::vector<int32_t>& nodes) = 0;
  virtual void write_codec(Writer& w) const = 0;

 protected:
  void compact_storage(const std::vector<idx_t>& keep) override;
};

struct IndexHNSWSQ : IndexHNSWCodes {
  ScalarQuantizer sq;

  // qtype: ScalarQuantizer::QT_8bit, QT_8bit_uniform or QT_fp16
  IndexHNSWSQ(int d, int qtype, int M = 32, MetricType metric = METRIC_L2);

  void train(idx_t n, const float* x) override;
  void encode(idx_t n, const float* x, uint8_t* out) const override;
  void decode(idx_t n, const uint8_t* c, float* out) const override;
  void insert_nodes(const std::vector<int32_t>& nodes) override;
  void search_graph(idx_t n, const float* x, idx_t k, int ef, bool filtered, const HnswAdmitFn& admit, float* D,
                    idx_t* I, HnswRangeCollect* rc = nullptr) const override;
  void write_codec(Writer& w) const override;
  void rescore_with_space(idx_t n, const float* x, idx_t k, float* D, idx_t* I) const override;
  SQSpace code_space() const { return SQSpace(sq, codes.data(), metric_type); }
  std::string type_tag() const override { return "HNSWSQ"; }

 protected:
  void relink_without(const std::vector<int32_t>& newid) override;
  void check_same_codec(const IndexHNSW& other) const override;
};

struct IndexHNSWPQ : IndexHNSWCodes {
  ProductQuantizer pq;

  IndexHNSWPQ(int d, int pq_m, int M = 32, int pq_nbits = 8, MetricType metric = METRIC_L2);

  void train(idx_t n, const float* x) override;
  void encode(idx_t n, const float* x, uint8_t* out) const override;
  void decode(idx_t n, const uint8_t* c, float* out) const override;
  void insert_nodes(const std::vector<int32_t>& nodes) override;
  void search_graph(idx_t n, const float* x, idx_t k, int ef, bool filtered, const HnswAdmitFn& admit, float* D,
                    idx_t* I, HnswRangeCollect* rc = nullptr) const override;
  void write_codec(Writer& w) const override;
  void rescore_with_space(idx_t n, const float* x, idx_t k, float* D, idx_t* I) const override;
  PQSpace code_space() const { return PQSpace(pq, codes.data(), metric_type); }
  std::string type_tag() const override { return "HNSWPQ"; }

 protected:
  void relink_without(const std::vector<int32_t>& newid) override;
  void check_same_codec(const IndexHNSW& other) const override;
};

}  // namespace annvil
