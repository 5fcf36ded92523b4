#include "index_refine.h"
#include "core/parallel.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "distances/distances.h"
#include "core/topk.h"
#include "index_flat.h"
#include "index_pq.h"
#include "core/io.h"

namespace annvil {

IndexRefine::IndexRefine(IndexPtr base, IndexPtr refine)
    : Index(base ? base->d : 1, base ? base->metric_type : METRIC_L2), base_index(base), refine_index(refine) {
  ANNVIL_CHECK(base != nullptr, "IndexRefine needs a base index");
  ANNVIL_CHECK(refine != nullptr, "IndexRefine needs a refine index");
  ANNVIL_CHECK(refine->d == base->d, "refine index has dimension ", refine->d, " but the base index has ", base->d);
  ANNVIL_CHECK(refine->metric_type == base->metric_type, "refine and base index must use the same metric");
  ANNVIL_CHECK(refine->ntotal == base->ntotal, "refine index holds ", refine->ntotal, " vectors but the base index ",
               base->ntotal, "; they must hold the same vectors");
  ntotal = base->ntotal;
  is_trained = base->is_trained && refine->is_trained;
}

void IndexRefine::train(idx_t n, const float* x) {
  base_index->train(n, x);
  refine_index->train(n, x);
  is_trained = base_index->is_trained && refine_index->is_trained;
}

void IndexRefine::add(idx_t n, const float* x) {
  check_trained();
  base_index->add(n, x);
  refine_index->add(n, x);
  ANNVIL_ASSERT(base_index->ntotal == refine_index->ntotal);
  ntotal = base_index->ntotal;
}

size_t IndexRefine::sa_code_size() const { return base_index->sa_code_size() + refine_index->sa_code_size(); }

void IndexRefine::sa_encode(idx_t n, const float* x, uint8_t* codes) const {
  check_trained();
  const size_t cb = base_index->sa_code_size(), cr = refine_index->sa_code_size();
  std::vector<uint8_t> b(size_t(n) * cb), r(size_t(n) * cr);
  base_index->sa_encode(n, x, b.data());
  refine_index->sa_encode(n, x, r.data());
  for (idx_t i = 0; i < n; ++i) {
    std::memcpy(codes + size_t(i) * (cb + cr), b.data() + size_t(i) * cb, cb);
    std::memcpy(codes + size_t(i) * (cb + cr) + cb, r.data() + size_t(i) * cr, cr);
  }
}

void IndexRefine::sa_decode(idx_t n, const uint8_t* codes, float* x) const {
  check_trained();
  const size_t cb = base_index->sa_code_size(), cr = refine_index->sa_code_size();
  std::vector<uint8_t> r(size_t(n) * cr);
  for (idx_t i = 0; i < n; ++i) std::memcpy(r.data() + size_t(i) * cr, codes + size_t(i) * (cb + cr) + cb, cr);
  refine_index->sa_decode(n, r.data(), x);
}

void IndexRefine::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
  check_trained();
  const size_t cb = base_index->sa_code_size(), cr = refine_index->sa_code_size();
  std::vector<uint8_t> b(size_t(n) * cb), r(size_t(n) * cr);
  for (idx_t i = 0; i < n; ++i) {
    std::memcpy(b.data() + size_t(i) * cb, codes + size_t(i) * (cb + cr), cb);
    std::memcpy(r.data() + size_t(i) * cr, codes + size_t(i) * (cb + cr) + cb, cr);
  }
  base_index->add_sa_codes(n, b.data(), ids);
  refine_index->add_sa_codes(n, r.data(), ids);
  ANNVIL_ASSERT(base_index->ntotal == refine_index->ntotal);
  ntotal = base_index->ntotal;
}

void IndexRefine::check_compatible_for_merge(const Index& other) const {
  check_same_kind(other);
  auto* o = dynamic_cast<const IndexRefine*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  base_index->check_compatible_for_merge(*o->base_index);
  refine_index->check_compatible_for_merge(*o->refine_index);
}

void IndexRefine::merge_from(Index& other, idx_t add_id) {
  check_compatible_for_merge(other);
  ANNVIL_CHECK(add_id == 0, "merge_from: add_id must be 0 for ", type_tag(),
               " (results are positions in the refine index)");
  auto& o = static_cast<IndexRefine&>(other);
  // positional halves number other's entries after ours; an IVF half stores
  // ids and needs them shifted to the new positions
  base_index->merge_from(*o.base_index, base_index->remove_ids_shifts() ? 0 : base_index->ntotal);
  refine_index->merge_from(*o.refine_index, refine_index->remove_ids_shifts() ? 0 : refine_index->ntotal);
  ntotal = base_index->ntotal;
  o.ntotal = o.base_index->ntotal;
}

void IndexRefine::search(idx_t n, const float* x, idx_t k, float* D, idx_t* I, const SearchParameters* params) const {
  check_trained();
  check_k(k);
  float kf = k_factor;
  const SearchParameters* base_params = params;
  if (const auto* rp = dynamic_cast<const IndexRefineSearchParameters*>(params)) {
    if (rp->k_factor > 0) kf = rp->k_factor;
    if (rp->base_index_params) {
      // the base search takes its own parameters; a selector belongs there
      ANNVIL_CHECK(rp->sel == nullptr, "with base_index_params, put the selector in base_index_params");
      base_params = rp->base_index_params.get();
    }
  }
  ANNVIL_CHECK(kf >= 1.f, "k_factor must be at least 1, got ", kf);
  const idx_t kb = std::max<idx_t>(k, idx_t(double(k) * double(kf)));
  std::vector<float> Db(size_t(n) * kb);
  std::vector<idx_t> Ib(size_t(n) * kb);
  base_index->search(n, x, kb, Db.data(), Ib.data(), base_params);

  const auto* flat = dynamic_cast<const IndexFlat*>(refine_index.get());
  const bool l2 = metric_type == METRIC_L2;
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    std::vector<float> exact(static_cast<size_t>(kb)), rec(static_cast<size_t>(d));
#pragma omp for schedule(dynamic, 1)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        const float* xq = x + size_t(q) * d;
        const idx_t* lab = Ib.data() + size_t(q) * kb;
        if (flat) {
          // candidates are scattered rows: prefetch the next one while computing this one
          const float* xb = flat->get_xb();
          const size_t rowb = sizeof(float) * size_t(d);
          const Kernels& K = kernels();
          for (idx_t j = 0; j < kb; ++j) {
            if (j + 1 < kb && lab[j + 1] >= 0) {
              const char* nx = reinterpret_cast<const char*>(xb + size_t(lab[j + 1]) * d);
              for (size_t off = 0; off < rowb; off += 64) __builtin_prefetch(nx + off);
            }
            idx_t l = lab[j];
            if (l < 0 || l >= flat->ntotal) continue;
            const float* y = xb + size_t(l) * d;
            exact[size_t(j)] = l2 ? K.l2sqr(xq, y, size_t(d)) : K.inner_product(xq, y, size_t(d));
          }
        } else {
          for (idx_t j = 0; j < kb; ++j) {
            if (lab[j] < 0) continue;
            refine_index->reconstruct(lab[j], rec.data());
            exact[size_t(j)] = l2 ? l2sqr(xq, rec.data(), size_t(d)) : inner_product(xq, rec.data(), size_t(d));
          }
        }
        TopK heap;
        heap.k = size_t(k);
        heap.keys = D + size_t(q) * k;
        heap.ids = I + size_t(q) * k;
        for (idx_t j = 0; j < kb; ++j) {
          if (lab[j] < 0) continue;
          heap.push(l2 ? exact[size_t(j)] : -exact[size_t(j)], lab[j]);
        }
        pq_finalize_row(heap, size_t(k), metric_type, D + size_t(q) * k, I + size_t(q) * k);
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
}

void IndexRefine::range_search(idx_t n, const float* x, float radius, RangeSearchResult* result,
                               const SearchParameters* params) const {
  // Faiss's semantics: the base index is searched with radius * k_factor,
  // every candidate gets the refine index's distance, and only those within
  // the requested radius are kept (the base's approximate distances may put
  // candidates on the wrong side of it).
  check_trained();
  float kf = k_factor;
  const SearchParameters* base_params = params;
  if (const auto* rp = dynamic_cast<const IndexRefineSearchParameters*>(params)) {
    if (rp->k_factor > 0) kf = rp->k_factor;
    if (rp->base_index_params) {
      ANNVIL_CHECK(rp->sel == nullptr, "with base_index_params, put the selector in base_index_params");
      base_params = rp->base_index_params.get();
    }
  }
  RangeSearchResult base;
  base_index->range_search(n, x, radius * kf, &base, base_params);
  ANNVIL_CHECK(base.lims.size() == size_t(n) + 1, "base index returned a malformed range result");
  const auto* flat = dynamic_cast<const IndexFlat*>(refine_index.get());
  const bool sim = is_similarity_metric(metric_type);
  std::vector<float> exact(base.labels.size());
  ParallelErrors perr;
#pragma omp parallel if (n > 1)
  {
    std::vector<float> rec(static_cast<size_t>(d));
#pragma omp for schedule(dynamic, 1)
    for (idx_t q = 0; q < n; ++q) ANNVIL_OMP_TRY(perr) {
        const float* xq = x + size_t(q) * d;
        for (size_t j = base.lims[size_t(q)]; j < base.lims[size_t(q) + 1]; ++j) {
          const idx_t l = base.labels[j];
          ANNVIL_CHECK(l >= 0 && l < refine_index->ntotal, "base index returned id ", l, " outside the refine index");
          const float* y;
          if (flat) {
            y = flat->get_xb() + size_t(l) * d;
          } else {
            refine_index->reconstruct(l, rec.data());
            y = rec.data();
          }
          exact[j] = sim ? inner_product(xq, y, size_t(d)) : l2sqr(xq, y, size_t(d));
        }
      }
    ANNVIL_OMP_CATCH(perr)
  }
  perr.rethrow();
  result->nq = size_t(n);
  result->lims.assign(size_t(n) + 1, 0);
  result->distances.clear();
  result->labels.clear();
  for (idx_t q = 0; q < n; ++q) {
    for (size_t j = base.lims[size_t(q)]; j < base.lims[size_t(q) + 1]; ++j) {
      if (!(sim ? exact[j] > radius : exact[j] < radius)) continue;
      result->distances.push_back(exact[j]);
      result->labels.push_back(base.labels[j]);
    }
    result->lims[size_t(q) + 1] = result->labels.size();
  }
}

void IndexRefine::reconstruct(idx_t key, float* out) const { refine_index->reconstruct(key, out); }

size_t IndexRefine::remove_ids(const IDSelector& sel) {
  ANNVIL_CHECK(base_index->remove_ids_shifts() == refine_index->remove_ids_shifts(),
               "remove_ids needs base and refine indexes with the same removal semantics");
  size_t r1 = base_index->remove_ids(sel);
  size_t r2 = refine_index->remove_ids(sel);
  ANNVIL_ASSERT(r1 == r2);
  ntotal = base_index->ntotal;
  return r1;
}

void IndexRefine::reset() {
  base_index->reset();
  refine_index->reset();
  ntotal = 0;
}

size_t IndexRefine::memory_usage() const {
  return sizeof(*this) + base_index->memory_usage() + refine_index->memory_usage();
}

void IndexRefine::write_payload(Writer& w) const {
  write_index_header(w, *this);
  w.write<float>(k_factor);
  write_index_record(*base_index, w);
  write_index_record(*refine_index, w);
}

namespace {
IndexPtr make_flat_refine(const IndexPtr& base, const float* xb) {
  ANNVIL_CHECK(base != nullptr, "IndexRefineFlat needs a base index");
  auto flat = std::make_shared<IndexFlat>(base->d, base->metric_type);
  if (base->ntotal > 0) {
    ANNVIL_CHECK(xb != nullptr, "the base index already holds ", base->ntotal,
                 " vectors: pass them as xb so the refine index stores the same vectors");
    flat->add(base->ntotal, xb);
  }
  return flat;
}
}  // namespace

IndexRefineFlat::IndexRefineFlat(IndexPtr base, const float* xb) : IndexRefine(base, make_flat_refine(base, xb)) {}

namespace {
template <class T>
IndexPtr read_refine(Reader& r) {
  IndexHeader h = read_header_fields(r);
  float kf = r.read<float>();
  IndexPtr base = read_index_record(r);
  IndexPtr refine = read_index_record(r);
  if (base->d != h.d || refine->d != h.d || base->ntotal != h.ntotal || refine->ntotal != h.ntotal)
    r.corrupt("refine index parts do not match");
  auto idx = std::make_shared<T>(base, refine);
  idx->k_factor = kf;
  idx->is_trained = h.is_trained;
  return idx;
}
ANNVIL_REGISTER_INDEX("Refine", read_refine<IndexRefine>);
ANNVIL_REGISTER_INDEX("RefineFlat", read_refine<IndexRefineFlat>);
}  // namespace

}  // namespace annvil
