#include "distances/distance_computer.h"

#include <cstring>

#include "distances/distances.h"
#include "core/error.h"
#include "index_flat.h"
#include "index_pq.h"
#include "index_sq.h"
#include "distances/knn.h"
#include "quant/sq.h"

namespace annvil {

namespace {

void check_id(const Index& index, idx_t i) {
  ANNVIL_CHECK(i >= 0 && i < index.ntotal, "id ", i, " out of range [0, ", index.ntotal, ")");
}

// Decodes with reconstruct(): exact for IndexFlat and every index whose
// search compares the query with the decoded vector.
struct ReconstructDC : DistanceComputer {
  const Index& index;
  std::vector<float> q, a, b;
  explicit ReconstructDC(const Index& idx) : index(idx), q(size_t(idx.d)), a(size_t(idx.d)), b(size_t(idx.d)) {
    ANNVIL_CHECK(idx.metric_type == METRIC_L2 || idx.metric_type == METRIC_INNER_PRODUCT,
                 "get_distance_computer supports METRIC_L2 and METRIC_INNER_PRODUCT on this index");
  }
  float dis(const float* x, const float* y) const {
    return index.metric_type == METRIC_L2 ? l2sqr(x, y, size_t(index.d)) : inner_product(x, y, size_t(index.d));
  }
  void set_query(const float* x) override {
    std::memcpy(q.data(), x, sizeof(float) * q.size());
    has_query = true;
  }
  float operator()(idx_t i) override {
    check_id(index, i);
    index.reconstruct(i, a.data());
    return dis(q.data(), a.data());
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    check_id(index, i);
    check_id(index, j);
    index.reconstruct(i, a.data());
    index.reconstruct(j, b.data());
    return dis(a.data(), b.data());
  }
};

// Exact rows, any metric of the flat index (through pairwise_distances).
struct FlatDC : DistanceComputer {
  const IndexFlat& index;
  std::vector<float> q;
  explicit FlatDC(const IndexFlat& idx) : index(idx), q(size_t(idx.d)) {}
  float dis(const float* x, const float* y) const {
    float out;
    pairwise_distances(1, x, 1, y, size_t(index.d), index.metric_type, &out, index.metric_arg);
    return out;
  }
  void set_query(const float* x) override {
    std::memcpy(q.data(), x, sizeof(float) * q.size());
    has_query = true;
  }
  float operator()(idx_t i) override {
    check_id(index, i);
    return dis(q.data(), index.get_xb() + size_t(i) * index.d);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    check_id(index, i);
    check_id(index, j);
    return dis(index.get_xb() + size_t(i) * index.d, index.get_xb() + size_t(j) * index.d);
  }
};

// Code-domain distances of the scalar quantizer (those of IndexScalarQuantizer::search).
struct SQDC : DistanceComputer {
  const IndexScalarQuantizer& index;
  SQDistanceComputer dc;
  std::vector<float> tmp;
  explicit SQDC(const IndexScalarQuantizer& idx) : index(idx), dc(idx.sq, idx.metric_type), tmp(size_t(idx.d)) {}
  float value(float key) const { return index.metric_type == METRIC_L2 ? key : -key; }
  void set_query(const float* x) override {
    dc.set_query(x);
    has_query = true;
  }
  float operator()(idx_t i) override {
    check_id(index, i);
    return value(dc.key(index.codes.data() + size_t(i) * index.sq.code_size));
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    check_id(index, i);
    check_id(index, j);
    // decode one side, then the code-domain distance to the other
    SQDistanceComputer d2(index.sq, index.metric_type);
    index.sq.decode(index.codes.data() + size_t(i) * index.sq.code_size, tmp.data(), 1);
    d2.set_query(tmp.data());
    return value(d2.key(index.codes.data() + size_t(j) * index.sq.code_size));
  }
};

// Asymmetric PQ distances from a per-query table (those of IndexPQ::search).
struct PQDC : DistanceComputer {
  const IndexPQ& index;
  std::vector<float> table, tmp;
  explicit PQDC(const IndexPQ& idx) : index(idx), table(idx.pq.M * idx.pq.ksub), tmp(size_t(idx.d)) {
    ANNVIL_CHECK(idx.metric_type == METRIC_L2 || idx.metric_type == METRIC_INNER_PRODUCT,
                 "get_distance_computer on IndexPQ supports METRIC_L2 and METRIC_INNER_PRODUCT");
  }
  void tables_for(const float* x) {
    if (index.metric_type == METRIC_L2)
      index.pq.compute_distance_table(x, table.data());
    else
      index.pq.compute_inner_prod_table(x, table.data());
  }
  float sum(idx_t i) const {
    const auto& pq = index.pq;
    const uint8_t* c = index.codes.data() + size_t(i) * pq.code_size;
    float s = 0;
    if (pq.nbits == 8)
      for (size_t m = 0; m < pq.M; ++m) s += table[m * 256 + c[m]];
    else
      for (size_t m = 0; m < pq.M; ++m) s += table[m * pq.ksub + ProductQuantizer::read_index(c, m, pq.nbits)];
    return s;
  }
  void set_query(const float* x) override {
    tables_for(x);
    has_query = true;
  }
  float operator()(idx_t i) override {
    check_id(index, i);
    return sum(i);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    check_id(index, i);
    check_id(index, j);
    std::vector<float> saved = table;
    index.pq.decode(1, index.codes.data() + size_t(i) * index.pq.code_size, tmp.data());
    tables_for(tmp.data());
    float v = sum(j);
    table.swap(saved);
    return v;
  }
};

}  // namespace

std::unique_ptr<DistanceComputer> make_distance_computer(const Index& index) {
  if (auto f = dynamic_cast<const IndexFlat*>(&index)) return std::make_unique<FlatDC>(*f);
  if (auto s = dynamic_cast<const IndexScalarQuantizer*>(&index)) return std::make_unique<SQDC>(*s);
  if (auto p = dynamic_cast<const IndexPQ*>(&index)) return std::make_unique<PQDC>(*p);
  return std::make_unique<ReconstructDC>(index);
}

}  // namespace annvil
