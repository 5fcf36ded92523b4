// Scalar-quantized indexes: IndexScalarQuantizer (flat scan over SQ codes) and
// IndexIVFScalarQuantizer (IVF whose lists hold SQ codes of the residuals
// x - centroid, or of x itself when by_residual is false).
#pragma once
#include "core/index.h"
#include "ivf/index_ivf.h"
#include "quant/sq.h"
#include "core/storage.h"

namespace annvil {

struct IndexScalarQuantizer : Index {
  ScalarQuantizer sq;
  Storage<uint8_t> codes;  // ntotal * sq.code_size

  IndexScalarQuantizer(int d, int qtype = ScalarQuantizer::QT_8bit, MetricType metric = METRIC_L2);

  void train(idx_t n, const float* x) override;
  void add(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* D, idx_t* I,
              const SearchParameters* params = nullptr) const override;
  void range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                    const SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  void reconstruct_n(idx_t i0, idx_t ni, float* out) const override;
  size_t remove_ids(const IDSelector& sel) override;
  void reset() override;
  size_t memory_usage() const override;
  // standalone codes: sa_code_size() bytes per vector (see index.h)
  size_t sa_code_size() const override;
  void sa_encode(idx_t n, const float* x, uint8_t* codes) const override;
  void sa_decode(idx_t n, const uint8_t* codes, float* x) const override;
  void add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) override;
  // same type, d, metric and trained codec; add_id must be 0 (ids are positions)
  void check_compatible_for_merge(const Index& other) const override;
  void merge_from(Index& other, idx_t add_id = 0) override;

  std::string type_tag() const override { return "SQ"; }
  void write_payload(Writer& w) const override;

 private:
  void search_panels(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const IDSelector* sel) const;
};

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
