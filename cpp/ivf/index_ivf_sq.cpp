// IndexIVFScalarQuantizer: the IVF codec (SQ codes of residuals or of the
// vectors), its list scanner and its file record.
#include "ivf/index_ivf_sq.h"

#include <cstring>
#include <memory>

#include "core/io.h"
#include "core/parallel.h"
#include "distances/distances.h"
#include "quant/sq_common.h"

namespace annvil {

// ---- IndexIVFScalarQuantizer -------------------------------------------------------------------
IndexIVFScalarQuantizer::IndexIVFScalarQuantizer(IndexPtr q, int d_, size_t nlist_, int qtype, MetricType metric,
                                                 bool by_res)
    : IndexIVF(std::move(q), d_, nlist_, ScalarQuantizer(size_t(d_ > 0 ? d_ : 1), qtype).code_size, metric),
      sq(size_t(d_), qtype) {
  by_residual = by_res;
  is_trained = is_trained && sq.is_trained();
}

void IndexIVFScalarQuantizer::train_encoder(idx_t n, const float* x, const idx_t*) { sq.train(size_t(n), x); }

void IndexIVFScalarQuantizer::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
  const size_t cs = code_size;
  ParallelErrors perr;
#pragma omp parallel if (n > 1000)
  {
    std::vector<float> res(d);
#pragma omp for schedule(static)
    for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
        uint8_t* c = codes + size_t(i) * cs;
        if (list_nos[i] < 0) {
          std::memset(c, 0, cs);
          continue;
        }
        const float* xi = x + size_t(i) * d;
        if (by_residual) {
          compute_residual(xi, res.data(), list_nos[i]);
          xi = res.data();
        }
        sq.compute_codes(xi, c, 1);
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

void IndexIVFScalarQuantizer::decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const {
  sq.decode(codes, x, size_t(n));
  if (!by_residual) return;
  std::vector<float> cent(d);
  for (idx_t i = 0; i < n; ++i) {
    if (list_nos[i] < 0) continue;
    quantizer->reconstruct(list_nos[i], cent.data());
    for (int p = 0; p < d; ++p) x[size_t(i) * d + p] += cent[p];
  }
}

const float* IndexIVFScalarQuantizer::list_vectors(size_t l, std::vector<float>& buf) const {
  const size_t nb = invlists->list_size(l);
  buf.resize(nb * size_t(d));
  std::vector<float> cent;
  if (by_residual) {
    cent.resize(d);
    quantizer->reconstruct(idx_t(l), cent.data());
  }
  sq.decode_fast(nb, invlists->get_codes(l), code_size, by_residual ? cent.data() : nullptr, buf.data());
  return buf.data();
}

namespace {

// Residual scanning: for L2 the query residual q - c is coded into the
// computer's tables per list; for the inner product <q, c + r> = <q, c> +
// <q, r>, so the tables stay per query and <q, c> is a per-list constant.
struct SQScanner : InvertedListScanner {
  const IndexIVFScalarQuantizer& idx;
  SQDistanceComputer dc;
  const float* q = nullptr;
  bool l2;
  std::vector<float> cent, res;
  mutable std::vector<float> buf;
  explicit SQScanner(const IndexIVFScalarQuantizer& i)
      : idx(i), dc(i.sq, i.metric_type), l2(i.metric_type == METRIC_L2), cent(i.d), res(i.d), buf(kSQScanBlock) {}
  void set_query(const float* x) override {
    q = x;
    if (!idx.by_residual || !l2) dc.set_query(x);
  }
  void set_list(idx_t l, float) override {
    list_no = l;
    if (!idx.by_residual) return;
    idx.quantizer->reconstruct(l, cent.data());
    if (l2) {
      for (int p = 0; p < idx.d; ++p) res[p] = q[p] - cent[p];
      dc.set_query(res.data());
    } else {
      dc.extra = kernels().inner_product(q, cent.data(), size_t(idx.d));
    }
  }
  float distance_to_code(const uint8_t* code) const override { return dc.key(code); }
  size_t scan_codes(size_t n, const uint8_t* codes, size_t cs, const idx_t* ids, TopK& heap) const override {
    sq_scan_into_heap(dc, n, codes, cs, ids, 0, sel, heap, buf.data());
    return n;
  }
  void scan_codes_range(size_t n, const uint8_t* codes, size_t cs, const idx_t* ids, float key_radius,
                        std::vector<std::pair<float, idx_t>>& out) const override {
    sq_scan_into_range(dc, n, codes, cs, ids, 0, sel, key_radius, out, buf.data());
  }
};

}  // namespace

std::unique_ptr<InvertedListScanner> IndexIVFScalarQuantizer::get_scanner() const {
  return std::make_unique<SQScanner>(*this);
}

void IndexIVFScalarQuantizer::check_compatible_for_merge(const IndexIVF& other) const {
  IndexIVF::check_compatible_for_merge(other);
  auto* o = dynamic_cast<const IndexIVFScalarQuantizer*>(&other);
  ANNVIL_CHECK(o && o->sq.qtype == sq.qtype && o->sq.trained == sq.trained,
               "cannot merge IVFScalarQuantizer indexes with different scalar quantizers");
}

void IndexIVFScalarQuantizer::write_payload(Writer& w) const {
  write_index_header(w, *this);
  write_sq_params(w, sq);
  write_ivf(w);
}

// ---- reader ---------------------------------------------------------------------------------
namespace {

IndexPtr read_ivf_sq(Reader& r) {
  IndexHeader h = read_header_fields(r);
  int qt = read_sq_qtype(r);
  ScalarQuantizer tmp(size_t(h.d), qt);
  read_sq_trained(r, tmp, h.is_trained);
  IndexIVF::Common c = IndexIVF::read_ivf_common(r, h.d);
  auto idx = std::make_shared<IndexIVFScalarQuantizer>(c.quantizer, h.d, c.nlist, qt, h.metric, c.by_residual);
  idx->sq.trained = tmp.trained;
  IndexIVF::read_ivf_lists(r, *idx, c, h.ntotal, h.is_trained);
  return idx;
}

ANNVIL_REGISTER_INDEX("IVFSQ", read_ivf_sq);

}  // namespace

}  // namespace annvil
