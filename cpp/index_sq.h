// IndexScalarQuantizer: a flat scan over SQ codes (codes: ntotal *
// sq.code_size bytes, see IndexFlatCodes).  The IVF variant is in
// ivf/index_ivf_sq.h.
#pragma once
#include "index_flat_codes.h"
#include "quant/sq.h"

namespace annvil {

struct IndexScalarQuantizer : IndexFlatCodes {
  ScalarQuantizer sq;

  IndexScalarQuantizer(int d, int qtype = ScalarQuantizer::QT_8bit, MetricType metric = METRIC_L2);

  void train(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  size_t memory_usage() const override;
  // same type, d, metric and trained codec (see IndexFlatCodes)
  void check_compatible_for_merge(const Index& other) const override;

  std::string type_tag() const override { return "SQ"; }
  void write_payload(Writer& w) const override;

 protected:
  void encode_vectors(idx_t n, const float* x, uint8_t* out) const override;
  void decode_vectors(idx_t n, const uint8_t* in, float* x) const override;

 private:
  void search_panels(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const IDSelector* sel) const;
};

}  // namespace annvil
