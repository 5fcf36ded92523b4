// IndexIVF: coarse training, assignment, adding to the inverted lists,
// removal, merging, the direct map, standalone codes and the common
// serialized part.  Search is in index_ivf_search.cpp.
#include "ivf/index_ivf.h"
#include "ivf/multi_index.h"
#include "core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>

#include "distances/distances.h"
#include "core/io.h"
#include "distances/knn.h"

namespace annvil {

// ---- construction and training --------------------------------------------------------
IndexIVF::IndexIVF(IndexPtr q, int d_, size_t nlist_, size_t code_size_, MetricType metric, bool extra_metrics)
    : Index(d_, metric, extra_metrics), quantizer(std::move(q)), nlist(nlist_), code_size(code_size_) {
  ANNVIL_CHECK(quantizer != nullptr, "IndexIVF needs a coarse quantizer index");
  ANNVIL_CHECK(quantizer->d == d_, "the quantizer has dimension ", quantizer->d, " but the IVF index has d=", d_);
  ANNVIL_CHECK(nlist_ > 0, "nlist must be positive, got ", nlist_);
  ANNVIL_CHECK(nlist_ < (size_t(1) << 31), "nlist too large: ", nlist_);
  invlists = std::make_shared<InvertedLists>(nlist, code_size);
  cp.niter = 10;
  // the quantizer already holds nlist centroids: nothing to learn for the coarse level
  is_trained = quantizer->is_trained && size_t(quantizer->ntotal) == nlist;
}

void IndexIVF::train_encoder(idx_t, const float*, const idx_t*) {}

void IndexIVF::train(idx_t n, const float* x) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  const bool have_centroids = quantizer->is_trained && size_t(quantizer->ntotal) == nlist;
  if (!have_centroids && dynamic_cast<MultiIndexQuantizer*>(quantizer.get())) {
    // Faiss's quantizer_trains_alone: a multi-index trains its own sub-quantizers
    quantizer->train(n, x);
    ANNVIL_CHECK(size_t(quantizer->ntotal) == nlist, "the multi-index quantizer has ", quantizer->ntotal,
                 " centroids but the index has nlist=", nlist);
  } else if (!have_centroids) {
    ANNVIL_CHECK(size_t(n) >= nlist, "IVF training needs at least nlist=", nlist, " vectors, got ", n,
                 ": pass more training vectors or use fewer lists");
    ClusteringParameters p = cp;
    p.metric = quantizer->metric_type;
    Clustering clus(d, int(nlist), p);
    clus.train(n, x);
    // only now touch the quantizer, so that a failed clustering leaves it as it was
    quantizer->reset();
    quantizer->train(idx_t(nlist), clus.centroids.data());
    quantizer->add(idx_t(nlist), clus.centroids.data());
  }
  if (encoder_needs_training()) {
    ANNVIL_CHECK(n > 0, "the encoder needs training vectors");
    check_quantizer();
    std::vector<idx_t> assign(n);
    coarse_assign(n, x, assign.data());
    if (by_residual) {
      std::vector<float> res(size_t(n) * d);
      ParallelErrors perr;
#pragma omp parallel for schedule(static) if (n > 1000)
      for (idx_t i = 0; i < n; ++i) ANNVIL_OMP_TRY(perr) {
          compute_residual(x + size_t(i) * d, res.data() + size_t(i) * d, assign[i]);
        }
      ANNVIL_OMP_CATCH(perr)
      perr.rethrow();
      train_encoder(n, res.data(), assign.data());
    } else {
      train_encoder(n, x, assign.data());
    }
  }
  is_trained = true;
}

void IndexIVF::check_quantizer() const {
  // list numbers come from the quantizer: a quantizer changed behind the
  // index's back would send searches out of the lists
  ANNVIL_CHECK(size_t(quantizer->ntotal) == nlist, "the coarse quantizer holds ", quantizer->ntotal,
               " centroids but the index has nlist=", nlist, " (was the quantizer modified after training?)");
}

void IndexIVF::coarse_assign(idx_t n, const float* x, idx_t* assign) const {
  std::vector<float> dis(n);
  quantizer->search(n, x, 1, dis.data(), assign);
}

void IndexIVF::compute_residual(const float* x, float* residual, idx_t list_no) const {
  quantizer->reconstruct(list_no, residual);
  for (int p = 0; p < d; ++p) residual[p] = x[p] - residual[p];
}

// ---- adding ------------------------------------------------------------------------
void IndexIVF::check_direct_map_for_add(idx_t n, const idx_t* ids) const {
  if (direct_map_type != DIRECT_MAP_ARRAY) return;
  for (idx_t i = 0; i < n; ++i)
    ANNVIL_CHECK(ids[i] == ntotal + i, "an array direct map needs sequential ids (add(), not add_with_ids with ",
                 "arbitrary ids); use set_direct_map_type(DirectMap.Hashtable)");
}

void IndexIVF::add(idx_t n, const float* x) {
  std::vector<idx_t> ids(n);
  for (idx_t i = 0; i < n; ++i) ids[i] = ntotal + i;
  add_with_ids(n, x, ids.data());
}

void IndexIVF::add_with_ids(idx_t n, const float* x, const idx_t* ids) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n == 0) return;
  check_quantizer();
  check_direct_map_for_add(n, ids);
  // in chunks (about 256 MiB of codes), so that the codes of a huge add need
  // not all exist at once, while a typical add fills each list in one step
  const idx_t bs = idx_t(std::max<size_t>(65536, (size_t(256) << 20) / std::max<size_t>(code_size, 1)));
  for (idx_t i0 = 0; i0 < n; i0 += bs) {
    idx_t m = std::min(bs, n - i0);
    std::vector<idx_t> assign(m);
    coarse_assign(m, x + size_t(i0) * d, assign.data());
    // no nearest centroid: the vector's distances overflow (the Python layer
    // rejects such input first); never drop it silently
    for (idx_t i = 0; i < m; ++i)
      ANNVIL_CHECK(assign[size_t(i)] >= 0, "vector ", i0 + i,
                   " has no nearest centroid (its distances overflow float32); nothing after row ", i0, " was added");
    std::vector<uint8_t> codes(size_t(m) * code_size);
    encode_vectors(m, x + size_t(i0) * d, assign.data(), codes.data());
    add_preassigned(m, assign.data(), ids + i0, codes.data());
  }
}

void IndexIVF::add_preassigned(idx_t n, const idx_t* list_nos, const idx_t* ids, const uint8_t* codes) {
  for (idx_t i = 0; i < n; ++i)
    ANNVIL_CHECK(list_nos[i] < idx_t(nlist), "list number ", list_nos[i], " out of range [0, ", nlist, ")");
  // group the entries by list, so that each list grows once per call (no
  // repeated reallocation, no capacity slack beyond what the vector keeps)
  std::vector<size_t> start(nlist + 1, 0);
  for (idx_t i = 0; i < n; ++i)
    if (list_nos[i] >= 0) start[size_t(list_nos[i]) + 1]++;
  for (size_t l = 0; l < nlist; ++l) start[l + 1] += start[l];
  std::vector<idx_t> order(start[nlist]);
  {
    std::vector<size_t> fill(start.begin(), start.end() - 1);
    for (idx_t i = 0; i < n; ++i)
      if (list_nos[i] >= 0) order[fill[size_t(list_nos[i])]++] = i;
  }
  for (size_t l = 0; l < nlist; ++l) {
    size_t m = start[l + 1] - start[l];
    if (!m) continue;
    auto& li = invlists->ids[l];
    auto& lc = invlists->codes[l];
    size_t off = li.size();
    // exact on the first add, geometric afterwards (repeated small adds stay linear)
    if (li.capacity() < off + m) {
      size_t cap = std::max(off + m, li.capacity() + li.capacity() / 2);
      li.reserve(cap);
      lc.reserve(cap * code_size);
    }
    for (size_t j = start[l]; j < start[l + 1]; ++j) {
      idx_t i = order[j];
      li.push_back(ids[i]);
      lc.insert(lc.end(), codes + size_t(i) * code_size, codes + size_t(i + 1) * code_size);
      int64_t lo = (int64_t(l) << 32) | int64_t(off++);
      if (direct_map_type == DIRECT_MAP_ARRAY) {
        if (size_t(ids[i]) >= direct_map_array.size()) direct_map_array.resize(size_t(ids[i]) + 1, -1);
        direct_map_array[size_t(ids[i])] = lo;
      } else if (direct_map_type == DIRECT_MAP_HASHTABLE) {
        direct_map_hash[ids[i]] = lo;
      }
    }
  }
  ntotal += idx_t(start[nlist]);
}

// ---- reconstruction and the direct map --------------------------------------------------
void IndexIVF::reconstruct_from_offset(idx_t list_no, idx_t offset, float* out) const {
  ANNVIL_CHECK(list_no >= 0 && size_t(list_no) < nlist, "list number ", list_no, " out of range");
  ANNVIL_CHECK(offset >= 0 && size_t(offset) < invlists->list_size(size_t(list_no)), "offset ", offset,
               " out of range for list ", list_no);
  decode_vectors(1, invlists->get_codes(size_t(list_no)) + size_t(offset) * code_size, &list_no, out);
}

void IndexIVF::reconstruct(idx_t key, float* out) const {
  int64_t lo = -1;
  if (direct_map_type == DIRECT_MAP_ARRAY) {
    if (key >= 0 && size_t(key) < direct_map_array.size()) lo = direct_map_array[size_t(key)];
  } else if (direct_map_type == DIRECT_MAP_HASHTABLE) {
    auto it = direct_map_hash.find(key);
    if (it != direct_map_hash.end()) lo = it->second;
  } else {
    ANNVIL_THROW(runtime, type_tag(), ".reconstruct needs a direct map: call index.make_direct_map() first ",
                 "(or set_direct_map_type(DirectMap.Hashtable) when ids are not sequential)");
  }
  ANNVIL_CHECK(lo >= 0, "id ", key, " is not in the index");
  reconstruct_from_offset(lo >> 32, lo & 0xffffffff, out);
}

void IndexIVF::reconstruct_n(idx_t i0, idx_t ni, float* out) const {
  // no direct map needed: scan the lists for ids in [i0, i0 + ni), as Faiss
  ANNVIL_CHECK(i0 >= 0 && ni >= 0, "bad range");
  std::fill(out, out + size_t(ni) * d, 0.f);
  for (size_t l = 0; l < nlist; ++l) {
    const idx_t* ids = invlists->get_ids(l);
    for (size_t o = 0; o < invlists->list_size(l); ++o)
      if (ids[o] >= i0 && ids[o] < i0 + ni) reconstruct_from_offset(idx_t(l), idx_t(o), out + size_t(ids[o] - i0) * d);
  }
}

void IndexIVF::rebuild_direct_map() {
  direct_map_array.clear();
  direct_map_hash.clear();
  if (direct_map_type == DIRECT_MAP_NONE) return;
  if (direct_map_type == DIRECT_MAP_ARRAY) direct_map_array.assign(size_t(ntotal), -1);
  for (size_t l = 0; l < nlist; ++l) {
    const idx_t* ids = invlists->get_ids(l);
    for (size_t o = 0; o < invlists->list_size(l); ++o) {
      int64_t lo = (int64_t(l) << 32) | int64_t(o);
      if (direct_map_type == DIRECT_MAP_ARRAY) {
        ANNVIL_CHECK(ids[o] >= 0 && ids[o] < ntotal && direct_map_array[size_t(ids[o])] == -1,
                     "an array direct map needs ids 0 .. ntotal-1 (found id ", ids[o],
                     "); use set_direct_map_type(DirectMap.Hashtable)");
        direct_map_array[size_t(ids[o])] = lo;
      } else {
        direct_map_hash[ids[o]] = lo;
      }
    }
  }
}

void IndexIVF::set_direct_map_type(int type) {
  ANNVIL_CHECK(type == DIRECT_MAP_NONE || type == DIRECT_MAP_ARRAY || type == DIRECT_MAP_HASHTABLE,
               "unknown direct map type ", type, " (0: NoMap, 1: Array, 2: Hashtable)");
  int old = direct_map_type;
  direct_map_type = type;
  try {
    rebuild_direct_map();
  } catch (...) {
    direct_map_type = old;
    rebuild_direct_map();
    throw;
  }
}

void IndexIVF::make_direct_map(bool on) { set_direct_map_type(on ? DIRECT_MAP_ARRAY : DIRECT_MAP_NONE); }

// ---- removal, reset, merge ---------------------------------------------------------------
size_t IndexIVF::remove_ids(const IDSelector& sel) {
  ANNVIL_CHECK(direct_map_type != DIRECT_MAP_ARRAY,
               "remove_ids is not supported with an array direct map; use set_direct_map_type(DirectMap.Hashtable)");
  size_t removed = invlists->remove_ids(sel);
  ntotal -= idx_t(removed);
  if (removed) rebuild_direct_map();
  return removed;
}

void IndexIVF::reset() {
  invlists->reset();
  ntotal = 0;
  direct_map_array.clear();
  direct_map_hash.clear();
}

void IndexIVF::check_compatible_for_merge(const IndexIVF& other) const {
  ANNVIL_CHECK(other.type_tag() == type_tag(), "cannot merge a ", other.type_tag(), " into a ", type_tag());
  ANNVIL_CHECK(other.d == d && other.nlist == nlist && other.code_size == code_size &&
                   other.metric_type == metric_type && other.by_residual == by_residual,
               "cannot merge IVF indexes with different d, nlist, code size, metric or by_residual");
}

void IndexIVF::check_compatible_for_merge(const Index& other) const {
  auto* o = dynamic_cast<const IndexIVF*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  ANNVIL_CHECK(o != this, "cannot merge an index into itself");
  check_compatible_for_merge(*o);
}

void IndexIVF::merge_from(Index& other, idx_t add_id) {
  auto* o = dynamic_cast<IndexIVF*>(&other);
  if (!o) ANNVIL_THROW(type, "cannot merge a ", other.type_tag(), " into a ", type_tag());
  merge_from(*o, add_id);
}

void IndexIVF::merge_from(IndexIVF& other, idx_t add_id) {
  ANNVIL_CHECK(&other != this, "cannot merge an index into itself");
  check_compatible_for_merge(other);
  ANNVIL_CHECK(direct_map_type != DIRECT_MAP_ARRAY,
               "merge_from is not supported with an array direct map; use DirectMap.Hashtable or none");
  invlists->merge_from(*other.invlists, add_id);
  ntotal += other.ntotal;
  other.ntotal = 0;
  other.rebuild_direct_map();
  rebuild_direct_map();
}

// ---- standalone codes ------------------------------------------------------------------------
size_t IndexIVF::coarse_code_size() const {
  size_t nbytes = 0;
  for (size_t v = nlist - 1; v > 0; v >>= 8) ++nbytes;
  return nbytes;
}

void IndexIVF::encode_listno(idx_t list_no, uint8_t* code) const {
  uint64_t v = uint64_t(list_no);
  for (size_t b = 0, nb = coarse_code_size(); b < nb; ++b, v >>= 8) code[b] = uint8_t(v & 0xff);
}

idx_t IndexIVF::decode_listno(const uint8_t* code) const {
  uint64_t v = 0;
  for (size_t b = coarse_code_size(); b-- > 0;) v = (v << 8) | code[b];
  ANNVIL_CHECK(v < nlist, "code holds list number ", v, ", out of range [0, ", nlist,
               "): were these codes made by this index's sa_encode?");
  return idx_t(v);
}

void IndexIVF::sa_encode(idx_t n, const float* x, uint8_t* codes) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n == 0) return;
  check_quantizer();
  std::vector<idx_t> assign(static_cast<size_t>(n));
  coarse_assign(n, x, assign.data());
  std::vector<uint8_t> c(size_t(n) * code_size);
  encode_vectors(n, x, assign.data(), c.data());
  const size_t cs = sa_code_size(), cc = coarse_code_size();
  for (idx_t i = 0; i < n; ++i) {
    uint8_t* o = codes + size_t(i) * cs;
    encode_listno(assign[size_t(i)], o);
    std::memcpy(o + cc, c.data() + size_t(i) * code_size, code_size);
  }
}

void IndexIVF::sa_decode(idx_t n, const uint8_t* codes, float* x) const {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n == 0) return;
  const size_t cs = sa_code_size(), cc = coarse_code_size();
  std::vector<idx_t> lists(static_cast<size_t>(n));
  std::vector<uint8_t> c(size_t(n) * code_size);
  for (idx_t i = 0; i < n; ++i) {
    lists[size_t(i)] = decode_listno(codes + size_t(i) * cs);
    std::memcpy(c.data() + size_t(i) * code_size, codes + size_t(i) * cs + cc, code_size);
  }
  decode_vectors(n, c.data(), lists.data(), x);
}

void IndexIVF::add_sa_codes(idx_t n, const uint8_t* codes, const idx_t* ids) {
  ANNVIL_CHECK(n >= 0, "n must be non-negative");
  check_trained();
  if (n == 0) return;
  // parse everything first, so that bad codes leave the index unchanged
  const size_t cs = sa_code_size(), cc = coarse_code_size();
  std::vector<idx_t> lists(static_cast<size_t>(n)), seq;
  std::vector<uint8_t> c(size_t(n) * code_size);
  for (idx_t i = 0; i < n; ++i) {
    lists[size_t(i)] = decode_listno(codes + size_t(i) * cs);
    std::memcpy(c.data() + size_t(i) * code_size, codes + size_t(i) * cs + cc, code_size);
  }
  if (!ids) {
    seq.resize(size_t(n));
    for (idx_t i = 0; i < n; ++i) seq[size_t(i)] = ntotal + i;
    ids = seq.data();
  }
  check_direct_map_for_add(n, ids);
  add_preassigned(n, lists.data(), ids, c.data());
}

size_t IndexIVF::get_list_size(size_t l) const {
  invlists->check_list(l);
  return invlists->list_size(l);
}

size_t IndexIVF::memory_usage() const {
  return sizeof(*this) + invlists->memory_usage() + quantizer->memory_usage() +
         direct_map_array.capacity() * sizeof(int64_t) + direct_map_hash.size() * 32;
}

// ---- serialization -------------------------------------------------------------------------
void IndexIVF::write_ivf(Writer& w) const {
  write_index_record(*quantizer, w);
  w.write<uint64_t>(nlist);
  w.write<uint64_t>(nprobe);
  w.write<uint64_t>(max_codes);
  w.write<uint64_t>(code_size);
  w.write<uint8_t>(by_residual ? 1 : 0);
  w.write<int32_t>(direct_map_type);
  std::vector<uint64_t> sizes(nlist);
  size_t tot = 0;
  for (size_t l = 0; l < nlist; ++l) tot += (sizes[l] = invlists->list_size(l));
  std::vector<idx_t> ids;
  std::vector<uint8_t> codes;
  ids.reserve(tot);
  codes.reserve(tot * code_size);
  for (size_t l = 0; l < nlist; ++l) {
    ids.insert(ids.end(), invlists->ids[l].begin(), invlists->ids[l].end());
    codes.insert(codes.end(), invlists->codes[l].begin(), invlists->codes[l].end());
  }
  w.write_vector(sizes);
  w.write_vector(ids);
  w.write_vector(codes);
}

IndexIVF::Common IndexIVF::read_ivf_common(Reader& r, int d) {
  Common c;
  c.quantizer = read_index_record(r);
  if (c.quantizer->d != d) r.corrupt("IVF quantizer dimension differs from the index");
  c.nlist = r.read_count(size_t(1) << 31, "nlist");
  c.nprobe = r.read_count(size_t(1) << 40, "nprobe");
  c.max_codes = r.read_count(size_t(1) << 62, "max_codes");
  c.code_size = r.read_count(size_t(1) << 24, "code_size");
  uint8_t br = r.read<uint8_t>();
  if (br > 1) r.corrupt("bad by_residual flag");
  c.by_residual = br != 0;
  c.direct_map_type = r.read<int32_t>();
  if (c.direct_map_type < 0 || c.direct_map_type > 2) r.corrupt("bad direct map type");
  if (c.nlist == 0) r.corrupt("nlist is zero");
  // a quantizer holding other than nlist centroids is accepted, as Faiss does
  // (ivflib's shards keep a subset of the centroids under their original
  // numbers); searches and adds refuse it until it holds nlist (check_quantizer)
  return c;
}

void IndexIVF::read_ivf_lists(Reader& r, IndexIVF& idx, const Common& c, idx_t ntotal, bool is_trained) {
  if (idx.code_size != c.code_size) r.corrupt("IVF code size does not match the index parameters");
  std::vector<uint64_t> sizes;
  std::vector<idx_t> ids;
  std::vector<uint8_t> codes;
  r.read_vector(sizes);
  r.read_vector(ids);
  r.read_vector(codes);
  if (sizes.size() != c.nlist) r.corrupt("wrong number of inverted lists");
  size_t tot = 0;
  for (auto s : sizes) {
    if (s > ids.size()) r.corrupt("inverted list size out of range");
    tot += s;
  }
  if (tot != ids.size() || tot != size_t(ntotal) || codes.size() != tot * c.code_size)
    r.corrupt("inverted list sizes do not match ntotal");
  size_t o = 0;
  for (size_t l = 0; l < c.nlist; ++l) {
    idx.invlists->add_entries(l, sizes[l], ids.data() + o, codes.data() + o * c.code_size);
    o += sizes[l];
  }
  idx.ntotal = ntotal;
  idx.nprobe = c.nprobe;
  idx.max_codes = c.max_codes;
  idx.by_residual = c.by_residual;
  idx.is_trained = is_trained;
  idx.direct_map_type = c.direct_map_type;
  try {
    idx.rebuild_direct_map();
  } catch (const Error&) {
    r.corrupt("ids do not fit the stored direct map type");
  }
}

}  // namespace annvil
