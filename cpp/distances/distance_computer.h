// Faiss's DistanceComputer: distances from one query (set_query) to stored
// vectors given by id, computed the way the index's own search computes them
// (exact rows for IndexFlat, code-domain distances for IndexScalarQuantizer,
// per-query lookup tables for IndexPQ; other indexes decode with reconstruct).
// Values are distances for L2 (squared) and similarities for inner product,
// as search() returns them.
#pragma once
#include <memory>
#include <vector>

#include "core/index.h"

namespace annvil {

struct DistanceComputer {
  virtual ~DistanceComputer() = default;
  // x: d floats
  virtual void set_query(const float* x) = 0;
  // the query's distance to stored vector i (0 <= i < ntotal)
  virtual float operator()(idx_t i) = 0;
  // distance between stored vectors i and j
  virtual float symmetric_dis(idx_t i, idx_t j) = 0;
  bool has_query = false;
};

// For any index with stored vectors; throws for metrics other than L2 / IP
// on indexes without an exact-row path.
std::unique_ptr<DistanceComputer> make_distance_computer(const Index& index);

}  // namespace annvil
