// IndexIVFFlat: IVF with the raw float32 vectors as codes (code_size = 4 d),
// so the panel kernels of distances.h read the lists in place.
#pragma once
#include "ivf/index_ivf.h"

namespace annvil {

struct IndexIVFFlat : IndexIVF {
  IndexIVFFlat(IndexPtr quantizer, int d, size_t nlist, MetricType metric = METRIC_L2);

  void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
  void decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const override;
  std::unique_ptr<InvertedListScanner> get_scanner() const override;
  const float* list_vectors(size_t l, std::vector<float>& buf) const override;

  std::string type_tag() const override { return "IVFFlat"; }
  void write_payload(Writer& w) const override;
};

}  // namespace annvil
