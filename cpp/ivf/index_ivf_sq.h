// IndexIVFScalarQuantizer: an IVF whose lists hold SQ codes of the residuals
// x - centroid, or of x itself when by_residual is false.
#pragma once
#include <memory>
#include <vector>

#include "ivf/index_ivf.h"
#include "quant/sq.h"

namespace annvil {

struct IndexIVFScalarQuantizer : IndexIVF {
  ScalarQuantizer sq;

  IndexIVFScalarQuantizer(IndexPtr quantizer, int d, size_t nlist, int qtype = ScalarQuantizer::QT_8bit,
                          MetricType metric = METRIC_L2, bool by_residual = true);

  void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
  void decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const override;
  std::unique_ptr<InvertedListScanner> get_scanner() const override;
  void train_encoder(idx_t n, const float* x, const idx_t* assign) override;
  bool encoder_needs_training() const override { return sq.needs_training(); }
  using IndexIVF::check_compatible_for_merge;
  void check_compatible_for_merge(const IndexIVF& other) const override;
  // decodes the list (plus its centroid when by_residual) for the panel kernel
  const float* list_vectors(size_t l, std::vector<float>& buf) const override;

  std::string type_tag() const override { return "IVFSQ"; }
  void write_payload(Writer& w) const override;
};

}  // namespace annvil
