// IndexIVFPQFastScan: construction, the packed list storage, training,
// adding, removal, merging and serialization.  Search is in
// index_ivf_pq_fastscan_search.cpp.
#include "ivf/index_ivf_pq_fastscan.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <utility>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>

#include "core/topk.h"
#include "ivf/index_ivf_pq_kernels.h"
#include "index_pq.h"
#include "core/io.h"
#include "ivf/ivf_stats.h"
#include "quant/pq_fastscan.h"

namespace annvil {

IndexIVFPQFastScan::IndexIVFPQFastScan(IndexPtr q, int d_, size_t nlist_, size_t M, size_t nbits, MetricType metric,
                                       size_t bbs_)
    : IndexIVF(std::move(q), d_, nlist_, ProductQuantizer(size_t(d_ > 0 ? d_ : 1), M, nbits).code_size, metric),
      pq(size_t(d_), M, nbits),
      bbs(bbs_),
      npacked(nlist_, 0) {
  ANNVIL_CHECK(nbits == 4, "IndexIVFPQFastScan only supports nbits=4, got ", nbits,
               " (use IndexIVFPQ for other widths)");
  ANNVIL_CHECK(bbs_ > 0 && bbs_ % kPQ4BlockSize == 0, "IndexIVFPQFastScan bbs must be a positive multiple of 32, got ",
               bbs_);
  by_residual = false;
  is_trained = false;
}

IndexIVFPQFastScan::IndexIVFPQFastScan(const IndexIVFPQ& orig, size_t bbs_)
    : IndexIVFPQFastScan(orig.quantizer, orig.d, orig.nlist, orig.pq.M, orig.pq.nbits, orig.metric_type, bbs_) {
  pq = orig.pq;
  by_residual = orig.by_residual;
  nprobe = orig.nprobe;
  max_codes = orig.max_codes;
  is_trained = orig.is_trained;
  use_precomputed_table = orig.use_precomputed_table;
  for (size_t l = 0; l < nlist; ++l)
    invlists->add_entries(l, orig.invlists->list_size(l), orig.invlists->get_ids(l), orig.invlists->get_codes(l));
  ntotal = orig.ntotal;
  set_direct_map_type(orig.direct_map_type);
  pack_lists();
  if (is_trained) precompute_table();
}

// ---- storage ------------------------------------------------------------------------------
void IndexIVFPQFastScan::get_list_code(size_t l, size_t i, uint8_t* code) const {
  const uint8_t* base = invlists->get_codes(l);
  if (i >= npacked[l]) {
    std::memcpy(code, base + i * code_size, code_size);
    return;
  }
  pq4_unpack_codes(base, pq.M, i, 1, code);
}

void IndexIVFPQFastScan::pack_lists() {
  npacked.resize(nlist, 0);
  std::vector<uint8_t> tmp;
  for (size_t l = 0; l < nlist; ++l) {
    const size_t ls = invlists->list_size(l);
    const size_t target = ls / kPQ4BlockSize * kPQ4BlockSize;
    if (target <= npacked[l]) continue;
    const size_t n = target - npacked[l];
    uint8_t* dst = invlists->codes[l].data() + npacked[l] * code_size;
    tmp.assign(dst, dst + n * code_size);
    // n is a multiple of 32: the blocks take exactly n * code_size bytes
    pq4_pack_codes(tmp.data(), n, pq.M, dst);
    npacked[l] = target;
  }
  tail_blocks.resize(nlist);
  tail_size.resize(nlist, SIZE_MAX);
  for (size_t l = 0; l < nlist; ++l) {
    const size_t ls = invlists->list_size(l);
    if (tail_size[l] == ls) continue;
    const size_t nt = ls - npacked[l];
    if (nt == 0 || nt > kPQ4BlockSize) {
      std::vector<uint8_t>().swap(tail_blocks[l]);
    } else {
      tail_blocks[l].resize(pq4_block_bytes(pq.M));
      pq4_pack_codes(invlists->get_codes(l) + npacked[l] * code_size, nt, pq.M, tail_blocks[l].data());
    }
    tail_size[l] = ls;
  }
}

void IndexIVFPQFastScan::unpack_lists() {
  npacked.resize(nlist, 0);
  tail_size.assign(nlist, SIZE_MAX);
  tail_blocks.assign(nlist, {});
  std::vector<uint8_t> tmp;
  for (size_t l = 0; l < nlist; ++l) {
    if (!npacked[l]) continue;
    tmp.resize(npacked[l] * code_size);
    pq4_unpack_codes(invlists->codes[l].data(), pq.M, 0, npacked[l], tmp.data());
    std::memcpy(invlists->codes[l].data(), tmp.data(), tmp.size());
    npacked[l] = 0;
  }
}

// ---- training and adding ---------------------------------------------------------------------
void IndexIVFPQFastScan::train(idx_t n, const float* x) {
  ivfpq_train(*this, pq, skip_encoder_training_, n, x);
  precomputed_table.clear();
  precompute_table();
  is_trained = true;
}

void IndexIVFPQFastScan::precompute_table() {
  if (use_precomputed_table == -1 || !by_residual || metric_type != METRIC_L2 || !pq.is_trained ||
      !(quantizer->is_trained && size_t(quantizer->ntotal) == nlist)) {
    precomputed_table.clear();
    precomputed_table.shrink_to_fit();
    return;
  }
  if (use_precomputed_table == 0) {
    if (nlist * pq.M * pq.ksub * sizeof(float) > kPrecomputedTableMaxBytes) return;
    use_precomputed_table = 1;
  }
  ivfpq_compute_precomputed_table(*quantizer, nlist, pq, precomputed_table);
}

void IndexIVFPQFastScan::encode_vectors(idx_t n, const float* x, const idx_t* list_nos, uint8_t* codes) const {
  ivfpq_encode(*this, pq, *codebooks.get(pq), n, x, list_nos, codes);
}

void IndexIVFPQFastScan::decode_vectors(idx_t n, const uint8_t* codes, const idx_t* list_nos, float* x) const {
  // IndexIVF passes codes pointing into a list's storage (reconstruct_from_offset):
  // recover the entry's position to read it from its block when it is packed.
  std::vector<uint8_t> code(code_size);
  std::vector<float> c(d);
  for (idx_t i = 0; i < n; ++i) {
    const uint8_t* ci = codes + size_t(i) * code_size;
    const idx_t l = list_nos[i];
    if (l >= 0 && size_t(l) < nlist && npacked[size_t(l)]) {
      const uintptr_t b = reinterpret_cast<uintptr_t>(invlists->get_codes(size_t(l)));
      const uintptr_t p = reinterpret_cast<uintptr_t>(ci);
      if (p >= b && p < b + npacked[size_t(l)] * code_size) {
        get_list_code(size_t(l), (p - b) / code_size, code.data());
        ci = code.data();
      }
    }
    float* xi = x + size_t(i) * d;
    pq.decode(1, ci, xi);
    if (by_residual && l >= 0) {
      quantizer->reconstruct(l, c.data());
      for (int p = 0; p < d; ++p) xi[p] += c[p];
    }
  }
}

void IndexIVFPQFastScan::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  IndexIVF::add_with_ids(n, x, ids);
  pack_lists();
}

void IndexIVFPQFastScan::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
  // as add_with_ids: plain codes go to the list tails, then complete blocks are packed
  IndexIVF::add_sa_codes(n, codes, ids);
  pack_lists();
}

void IndexIVFPQFastScan::merge_from(Index& other, idx_t add_id) {
  auto* o = dynamic_cast<IndexIVF*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  merge_from_fs(*o, add_id);
}

size_t IndexIVFPQFastScan::remove_ids(const IDSelector& sel) {
  unpack_lists();
  size_t r;
  try {
    r = IndexIVF::remove_ids(sel);
  } catch (...) {
    pack_lists();
    throw;
  }
  pack_lists();
  return r;
}

void IndexIVFPQFastScan::reset() {
  IndexIVF::reset();
  npacked.assign(nlist, 0);
  tail_size.assign(nlist, SIZE_MAX);
  tail_blocks.assign(nlist, {});
}

size_t IndexIVFPQFastScan::memory_usage() const {
  size_t s = IndexIVF::memory_usage() + (precomputed_table.capacity() + pq.centroids.capacity()) * sizeof(float);
  for (auto& t : tail_blocks) s += t.capacity();
  return s;
}

void IndexIVFPQFastScan::check_compatible_for_merge(const IndexIVF& other) const {
  IndexIVF::check_compatible_for_merge(other);
  const auto& o = dynamic_cast<const IndexIVFPQFastScan&>(other);
  ANNVIL_CHECK(o.pq.M == pq.M && o.pq.centroids == pq.centroids,
               "cannot merge IVFPQFastScan indexes with different product quantizers");
  // IndexIVF::merge_from appends the raw list bytes: only plain codes can be merged that way
  for (size_t l = 0; l < nlist; ++l)
    ANNVIL_CHECK(npacked[l] == 0 && o.npacked[l] == 0,
                 "IndexIVFPQFastScan lists are packed: merge with IndexIVFPQFastScan.merge_from");
}

void IndexIVFPQFastScan::merge_from_fs(IndexIVF& other, idx_t add_id) {
  ANNVIL_CHECK(&other != this, "cannot merge an index into itself");
  auto* o = dynamic_cast<IndexIVFPQFastScan*>(&other);
  ANNVIL_CHECK(o != nullptr, "cannot merge a ", other.type_tag(), " into an IVFPQFastScan");
  ANNVIL_CHECK(direct_map_type != DIRECT_MAP_ARRAY,
               "merge_from is not supported with an array direct map; use DirectMap.Hashtable or none");
  unpack_lists();
  o->unpack_lists();
  try {
    IndexIVF::merge_from(other, add_id);
  } catch (...) {
    pack_lists();
    o->pack_lists();
    throw;
  }
  pack_lists();
  o->pack_lists();
}

// ---- serialization ---------------------------------------------------------------------------------
void IndexIVFPQFastScan::write_payload(Writer& w) const {
  write_index_header(w, *this);
  pq.write(w);
  w.write<int32_t>(use_precomputed_table);
  w.write<uint64_t>(bbs);
  w.write<int32_t>(implem);
  w.write<int32_t>(qbs);
  std::vector<uint64_t> np(npacked.begin(), npacked.end());
  w.write_vector(np);
  write_ivf(w);
}

namespace {
IndexPtr read_ivfpq_fastscan(Reader& r) {
  IndexHeader h = read_header_fields(r);
  ProductQuantizer pq = ProductQuantizer::read(r);
  if (pq.d != size_t(h.d) || pq.nbits != 4) r.corrupt("bad product quantizer of an IVFPQFastScan index");
  int32_t upt = r.read<int32_t>();
  if (upt < -1 || upt > 1) r.corrupt("bad use_precomputed_table value");
  uint64_t bbs = r.read<uint64_t>();
  if (bbs == 0 || bbs % kPQ4BlockSize != 0 || bbs > (uint64_t(1) << 20)) r.corrupt("unsupported fast-scan block size");
  const int32_t implem = r.read<int32_t>(), qbs = r.read<int32_t>();
  std::vector<uint64_t> np;
  r.read_vector(np);
  IndexIVF::Common c = IndexIVF::read_ivf_common(r, h.d);
  if (np.size() != c.nlist) r.corrupt("packed-entry counts do not match nlist");
  auto idx = std::make_shared<IndexIVFPQFastScan>(c.quantizer, h.d, c.nlist, pq.M, 4, h.metric, bbs);
  idx->pq = std::move(pq);
  idx->implem = implem;
  idx->qbs = qbs;
  IndexIVF::read_ivf_lists(r, *idx, c, h.ntotal, h.is_trained);
  for (size_t l = 0; l < c.nlist; ++l) {
    if (np[l] % kPQ4BlockSize != 0 || np[l] > idx->invlists->list_size(l)) r.corrupt("bad packed-entry count");
    idx->npacked[l] = size_t(np[l]);
  }
  idx->pack_lists();
  idx->use_precomputed_table = upt;
  if (idx->is_trained && upt == 1) idx->precompute_table();
  return idx;
}
ANNVIL_REGISTER_INDEX("IVFPQFastScan", read_ivfpq_fastscan);
}  // namespace

}  // namespace annvil
