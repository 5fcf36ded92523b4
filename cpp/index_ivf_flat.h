// IndexIVFFlat: IVF with the raw float32 vectors as codes (code_size = 4 d),
// so the panel kernels of distances.h read the lists in place.
#pragma once
#include "index_ivf.h"

namespace annvil {

struct IndexIVFFlat : IndexIVF {
  // Lists probed by at least this many queries of a batch are scanned with
  // the panel kernel; others query by query (0: automatic).  Not serialized.
  int panel_min_queries = 0;

  IndexIVFFlat(IndexPtr quantizer, int d, size_t nlist, MetricType metric = METRIC_L2);

  void encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const override;
  void decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const override;
  std::unique_ptr<InvertedListScanner> get_scanner() const override;
  void search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* keys, const float* coarse_dis, float* D,
                          idx_t* I, size_t nprobe, size_t max_codes, const IDSelector* sel) const override;

  std::string type_tag() const override { return "IVFFlat"; }
  void write_payload(Writer& w) const override;
};

}  // namespace annvil
