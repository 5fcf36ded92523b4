// Faiss's index file format: the pieces every family shares (faiss_io_impl.h).
#include "faiss_io/faiss_io_impl.h"

#include <cmath>
#include <cstdio>

namespace annvil {
namespace fio {

namespace {

// Within a block of bbs vectors (a multiple of 32), for each pair of
// sub-quantizers (2p, 2p + 1) and each group of 32 vectors, 32 bytes: the
// first 16 for sub-quantizer 2p, the next 16 for 2p + 1; byte j holds vector
// perm[j] in its low nibble and perm[j] + 16 in its high nibble, with
// perm = 0, 8, 1, 9, ..., 7, 15.  (annvil's own blocks are always 32 vectors
// without the permutation, pq_fastscan.h.)
size_t faiss_pq4_byte(size_t i, size_t m, size_t bbs, size_t M2, int* shift) {
  const size_t b = i / bbs, ii = i % bbs, s = ii / 32, j = ii % 32;
  const size_t jj = j & 15;
  const size_t pos = jj < 8 ? 2 * jj : 2 * (jj - 8) + 1;  // inverse of perm
  *shift = j < 16 ? 0 : 4;
  return b * bbs * M2 / 2 + ((m / 2) * (bbs / 32) + s) * 32 + 16 * (m & 1) + pos;
}

bool orthonormal_rows(const std::vector<float>& A, int d_in, int d_out) {
  if (d_out > d_in) return false;
  for (int i = 0; i < d_out; ++i)
    for (int j = 0; j < d_out; ++j) {
      double s = 0;
      for (int k = 0; k < d_in; ++k) s += double(A[size_t(i) * d_in + k]) * A[size_t(j) * d_in + k];
      if (std::fabs(s - (i == j ? 1.0 : 0.0)) > 4e-5) return false;
    }
  return true;
}

}  // namespace

std::string fourcc_str(uint32_t h) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    char c = char((h >> (8 * i)) & 0xff);
    if (c >= 32 && c < 127)
      s += c;
    else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", unsigned(uint8_t(c)));
      s += buf;
    }
  }
  return s;
}

// Faiss's fourccs and the classes they stand for (index_read.cpp), so that a
// file of a class annvil lacks gets an error that names it.
const FourccInfo kFourccs[] = {
    {"null", "a missing index (null)", FKind::index},
    {"IxF2", "IndexFlatL2", FKind::index},
    {"IxFI", "IndexFlatIP", FKind::index},
    {"IxFl", "IndexFlat", FKind::index},
    {"IxFP", "IndexFlatL2Panorama", FKind::index},
    {"IxFp", "IndexFlatIPPanorama", FKind::index},
    {"IxHe", "IndexLSH", FKind::index},
    {"IxHE", "IndexLSH (old format)", FKind::index},
    {"IxPq", "IndexPQ", FKind::index},
    {"IxPQ", "IndexPQ (old format)", FKind::index},
    {"IxPo", "IndexPQ (old format)", FKind::index},
    {"IxRq", "IndexResidualQuantizer", FKind::index},
    {"IxRQ", "IndexResidualQuantizer (old format)", FKind::index},
    {"IxLS", "IndexLocalSearchQuantizer", FKind::index},
    {"IxPR", "IndexProductResidualQuantizer", FKind::index},
    {"IxPL", "IndexProductLocalSearchQuantizer", FKind::index},
    {"ImRQ", "ResidualCoarseQuantizer", FKind::index},
    {"ILfs", "IndexLocalSearchQuantizerFastScan", FKind::index},
    {"IRfs", "IndexResidualQuantizerFastScan", FKind::index},
    {"IPRf", "IndexProductResidualQuantizerFastScan", FKind::index},
    {"IPLf", "IndexProductLocalSearchQuantizerFastScan", FKind::index},
    {"IVLf", "IndexIVFLocalSearchQuantizerFastScan", FKind::index},
    {"IVRf", "IndexIVFResidualQuantizerFastScan", FKind::index},
    {"NPLf", "IndexIVFProductLocalSearchQuantizerFastScan", FKind::index},
    {"NPRf", "IndexIVFProductResidualQuantizerFastScan", FKind::index},
    {"IvFl", "IndexIVFFlat (legacy format)", FKind::index},
    {"IvFL", "IndexIVFFlat (legacy format)", FKind::index},
    {"IwFd", "IndexIVFFlatDedup", FKind::index},
    {"IwPn", "IndexIVFFlatPanorama", FKind::index},
    {"IwP2", "IndexIVFFlatPanorama", FKind::index},
    {"IwFl", "IndexIVFFlat", FKind::index},
    {"IxSQ", "IndexScalarQuantizer", FKind::index},
    {"IxLa", "IndexLattice", FKind::index},
    {"IvSQ", "IndexIVFScalarQuantizer (legacy format)", FKind::index},
    {"IwSQ", "IndexIVFScalarQuantizer", FKind::index},
    {"IwSq", "IndexIVFScalarQuantizer", FKind::index},
    {"IwLS", "IndexIVFLocalSearchQuantizer", FKind::index},
    {"IwRQ", "IndexIVFResidualQuantizer", FKind::index},
    {"IwPL", "IndexIVFProductLocalSearchQuantizer", FKind::index},
    {"IwPR", "IndexIVFProductResidualQuantizer", FKind::index},
    {"IwSh", "IndexIVFSpectralHash", FKind::index},
    {"IvPQ", "IndexIVFPQ (legacy format)", FKind::index},
    {"IwPQ", "IndexIVFPQ", FKind::index},
    {"IvQR", "IndexIVFPQR (legacy format)", FKind::index},
    {"IwQR", "IndexIVFPQR", FKind::index},
    {"IwIQ", "IndexIVFIndependentQuantizer", FKind::index},
    {"IxPT", "IndexPreTransform", FKind::index},
    {"Imiq", "MultiIndexQuantizer", FKind::index},
    {"IxRF", "IndexRefine", FKind::index},
    {"IxRP", "IndexRefinePanorama", FKind::index},
    {"IxMp", "IndexIDMap", FKind::index},
    {"IxM2", "IndexIDMap2", FKind::index},
    {"Ix2L", "Index2Layer", FKind::index},
    {"IHNf", "IndexHNSWFlat", FKind::index},
    {"IHNp", "IndexHNSWPQ", FKind::index},
    {"IHNs", "IndexHNSWSQ", FKind::index},
    {"IHN2", "IndexHNSW2Level", FKind::index},
    {"IHNc", "IndexHNSWCagra", FKind::index},
    {"IHc2", "IndexHNSWCagra", FKind::index},
    {"IHfP", "IndexHNSWFlatPanorama", FKind::index},
    {"IH00", "IndexHNSW", FKind::index},
    {"INSf", "IndexNSGFlat", FKind::index},
    {"INSp", "IndexNSGPQ", FKind::index},
    {"INSs", "IndexNSGSQ", FKind::index},
    {"INNf", "IndexNNDescentFlat", FKind::index},
    {"IPfs", "IndexPQFastScan", FKind::index},
    {"IwPf", "IndexIVFPQFastScan", FKind::index},
    {"IRMf", "IndexRowwiseMinMax", FKind::index},
    {"IRMh", "IndexRowwiseMinMaxFP16", FKind::index},
    {"IxEd", "IndexEDEN", FKind::index},
    {"IxEe", "IndexEDEN", FKind::index},
    {"IwEd", "IndexIVFEDEN", FKind::index},
    {"IwEe", "IndexIVFEDEN", FKind::index},
    {"Irfn", "IndexRaBitQFastScan", FKind::index},
    {"Irfs", "IndexRaBitQFastScan", FKind::index},
    {"Ixrq", "IndexRaBitQ", FKind::index},
    {"Ixrr", "IndexRaBitQ", FKind::index},
    {"Iwrq", "IndexIVFRaBitQ", FKind::index},
    {"Iwrr", "IndexIVFRaBitQ", FKind::index},
    {"Iwrn", "IndexIVFRaBitQFastScan", FKind::index},
    {"Iwrf", "IndexIVFRaBitQFastScan", FKind::index},
    {"ILVQ", "IndexSVSVamanaLVQ", FKind::index},
    {"ISVL", "IndexSVSVamanaLeanVec", FKind::index},
    {"ISVD", "IndexSVSVamana", FKind::index},
    {"ISV2", "IndexSVSVamana", FKind::index},
    {"ISVF", "IndexSVSFlat", FKind::index},
    {"ISIQ", "IndexSVSIVFLVQ", FKind::index},
    {"ISIL", "IndexSVSIVFLeanVec", FKind::index},
    {"ISID", "IndexSVSIVF", FKind::index},
    {"IBxF", "IndexBinaryFlat", FKind::binary},
    {"IBwF", "IndexBinaryIVF", FKind::binary},
    {"IBFf", "IndexBinaryFromFloat", FKind::binary},
    {"IBHf", "IndexBinaryHNSW", FKind::binary},
    {"IBHc", "IndexBinaryHNSWCagra", FKind::binary},
    {"IBMp", "IndexBinaryIDMap", FKind::binary},
    {"IBM2", "IndexBinaryIDMap2", FKind::binary},
    {"IBHh", "IndexBinaryHash", FKind::binary},
    {"IBHm", "IndexBinaryMultiHash", FKind::binary},
    {"rrot", "RandomRotationMatrix", FKind::transform},
    {"PCAm", "PCAMatrix", FKind::transform},
    {"PcAm", "PCAMatrix", FKind::transform},
    {"Pcam", "PCAMatrix", FKind::transform},
    {"LTra", "LinearTransform", FKind::transform},
    {"Viqm", "ITQMatrix", FKind::transform},
    {"Viqt", "ITQTransform", FKind::transform},
    {"RmDT", "RemapDimensionsTransform", FKind::transform},
    {"VNrm", "NormalizationTransform", FKind::transform},
    {"VCnt", "CenteringTransform", FKind::transform},
    {"HRot", "HadamardRotation", FKind::transform},
    {"ilar", "ArrayInvertedLists", FKind::invlists},
    {"ilbl", "BlockInvertedLists", FKind::invlists},
    {"il00", "no inverted lists (null)", FKind::invlists},
    {"ilod", "OnDiskInvertedLists", FKind::invlists},
    {"ilpn", "ArrayInvertedListsPanorama", FKind::invlists},
    {"ilp2", "ArrayInvertedListsPanorama", FKind::invlists},
};

const FourccInfo* find_fourcc(uint32_t h) {
  for (const auto& f : kFourccs)
    if (fourcc(f.code) == h) return &f;
  return nullptr;
}

[[noreturn]] void unsupported(uint32_t h, const char* what) {
  const FourccInfo* f = find_fourcc(h);
  if (f) ANNVIL_THROW(file_format, f->cls, " (fourcc ", f->code, ") is not supported", what);
  ANNVIL_THROW(file_format, "not a Faiss ", what[0] ? "index" : "index", " file: unknown fourcc '", fourcc_str(h), "'",
               what);
}

// annvil's own check helpers take a Reader for their error message
Reader& dummy_reader() {
  static thread_local Reader r(nullptr, 0, nullptr, false);
  return r;
}

// ---- the index header ---------------------------------------------------------------------
FHeader read_header(FReader& r) {
  FHeader h;
  h.d = r.get<int32_t>("d");
  h.ntotal = r.get<int64_t>("ntotal");
  if (h.d < 0 || h.d > (1 << 20)) r.corrupt("bad dimension");
  if (h.ntotal < 0) r.corrupt("bad ntotal");
  r.get<int64_t>("header");
  r.get<int64_t>("header");
  h.is_trained = r.get_bool("is_trained");
  int32_t m = r.get<int32_t>("metric_type");
  if (!is_known_metric(m)) ANNVIL_THROW(file_format, "Faiss metric type ", m, " is not supported");
  h.metric = MetricType(m);
  if (m > 1) h.metric_arg = r.get<float>("metric_arg");
  return h;
}

void write_header(FWriter& w, const Index& idx, idx_t ntotal_override) {
  w.put<int32_t>(idx.d);
  w.put<int64_t>(ntotal_override >= 0 ? ntotal_override : idx.ntotal);
  w.put<int64_t>(int64_t(1) << 20);
  w.put<int64_t>(int64_t(1) << 20);
  w.put_bool(idx.is_trained);
  w.put<int32_t>(int32_t(idx.metric_type));
  if (int(idx.metric_type) > 1) w.put<float>(idx.metric_arg);
}

// ---- quantizers ---------------------------------------------------------------------------
ProductQuantizer read_pq(FReader& r, int d, bool is_trained) {
  uint64_t pd = r.get<uint64_t>("PQ d"), M = r.get<uint64_t>("PQ M"), nbits = r.get<uint64_t>("PQ nbits");
  if (pd != uint64_t(d)) r.corrupt("ProductQuantizer dimension differs from the index");
  if (M == 0 || M > pd || pd % M != 0) r.corrupt("bad ProductQuantizer M");
  if (nbits < 1 || nbits > 16) ANNVIL_THROW(file_format, "ProductQuantizer with nbits=", nbits, " is not supported");
  ProductQuantizer pq = build("ProductQuantizer", [&] { return ProductQuantizer(pd, M, nbits); });
  size_t n = r.vec_count<float>("PQ centroids");
  if (n != pq.d * pq.ksub) r.corrupt("ProductQuantizer centroid count is not d * ksub");
  std::memcpy(pq.centroids.data(), r.raw(n * sizeof(float), "PQ centroids"), n * sizeof(float));
  pq.is_trained = is_trained;
  return pq;
}

void write_pq(FWriter& w, const ProductQuantizer& pq) {
  w.put<uint64_t>(pq.d);
  w.put<uint64_t>(pq.M);
  w.put<uint64_t>(pq.nbits);
  w.vec(pq.centroids);
}

ScalarQuantizer read_sq(FReader& r, int d, bool is_trained) {
  int32_t qt = r.get<int32_t>("SQ qtype");
  r.get<int32_t>("SQ rangestat");
  r.get<float>("SQ rangestat_arg");
  uint64_t sd = r.get<uint64_t>("SQ d");
  uint64_t cs = r.get<uint64_t>("SQ code_size");
  if (sd != uint64_t(d)) r.corrupt("ScalarQuantizer dimension differs from the index");
  if (!ScalarQuantizer::valid_qtype(qt))
    ANNVIL_THROW(file_format, "ScalarQuantizer type ", qt, " is not supported (annvil has types 0 .. 8)");
  ScalarQuantizer sq = build("ScalarQuantizer", [&] { return ScalarQuantizer(size_t(sd), qt); });
  if (cs != sq.code_size) r.corrupt("ScalarQuantizer code size does not match its type");
  r.vec(sq.trained, "SQ trained");
  if (!sq.trained.empty() && sq.trained.size() != sq.trained_size()) r.corrupt("bad ScalarQuantizer parameters");
  if (is_trained && !sq.is_trained()) r.corrupt("trained index with an untrained ScalarQuantizer");
  if (!sq.needs_training()) sq.trained.clear();
  return sq;
}

void write_sq(FWriter& w, const ScalarQuantizer& sq) {
  w.put<int32_t>(sq.qtype);
  w.put<int32_t>(0);  // RS_minmax
  w.put<float>(0.f);
  w.put<uint64_t>(sq.d);
  w.put<uint64_t>(sq.code_size);
  w.vec(sq.trained);
}

// ---- Faiss's 4-bit fast-scan block layout (see faiss_pq4_byte) ---------------------------
// blocks (Faiss layout) -> n plain 4-bit PQ codes (ceil(M / 2) bytes each)
void faiss_pq4_unpack(const uint8_t* blocks, size_t n, size_t M, size_t bbs, uint8_t* codes) {
  const size_t M2 = (M + 1) & ~size_t(1), cs = (M + 1) / 2;
  std::memset(codes, 0, n * cs);
  for (size_t i = 0; i < n; ++i)
    for (size_t m = 0; m < M; ++m) {
      int sh;  // set by faiss_pq4_byte: call it before reading sh
      const size_t at = faiss_pq4_byte(i, m, bbs, M2, &sh);
      uint8_t c = (blocks[at] >> sh) & 15;
      codes[i * cs + m / 2] |= uint8_t(c << (4 * (m & 1)));
    }
}

// n plain codes -> blocks (Faiss layout), nblocks(n) * bbs * M2 / 2 bytes, zero padded
std::vector<uint8_t> faiss_pq4_pack(const uint8_t* codes, size_t n, size_t M, size_t bbs) {
  const size_t M2 = (M + 1) & ~size_t(1), cs = (M + 1) / 2;
  const size_t nb = (n + bbs - 1) / bbs;
  std::vector<uint8_t> out(nb * bbs * M2 / 2, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t m = 0; m < M; ++m) {
      int sh;
      uint8_t c = (codes[i * cs + m / 2] >> (4 * (m & 1))) & 15;
      const size_t at = faiss_pq4_byte(i, m, bbs, M2, &sh);  // before sh is read
      out[at] |= uint8_t(c << sh);
    }
  return out;
}

VectorTransformPtr read_transform(FReader& r) {
  uint32_t h = r.get<uint32_t>("transform fourcc");
  if (h == fourcc("rrot") || h == fourcc("LTra")) {
    bool have_bias = r.get_bool("have_bias");
    std::vector<float> A, b;
    r.vec(A, "transform matrix");
    r.vec(b, "transform bias");
    int32_t din = r.get<int32_t>("d_in"), dout = r.get<int32_t>("d_out");
    bool trained = r.get_bool("transform is_trained");
    if (din <= 0 || dout <= 0 || din > (1 << 20) || dout > (1 << 20)) r.corrupt("bad transform dimensions");
    if (A.size() != size_t(din) * size_t(dout)) r.corrupt("transform matrix size is not d_in * d_out");
    if (have_bias ? b.size() != size_t(dout) : !b.empty()) r.corrupt("transform bias size is not d_out");
    std::shared_ptr<LinearTransform> t;
    if (h == fourcc("rrot"))
      t = build("RandomRotationMatrix", [&] { return std::make_shared<RandomRotationMatrix>(din, dout); });
    else
      t = build("LinearTransform", [&] { return std::make_shared<LinearTransform>(din, dout, have_bias); });
    t->have_bias = have_bias;
    t->A = std::move(A);
    t->b = std::move(b);
    t->is_trained = trained;
    t->is_orthonormal = trained && orthonormal_rows(t->A, din, dout);
    return t;
  }
  if (h == fourcc("VNrm")) {
    float norm = r.get<float>("norm");
    int32_t din = r.get<int32_t>("d_in"), dout = r.get<int32_t>("d_out");
    r.get_bool("transform is_trained");
    if (din <= 0 || din > (1 << 20) || din != dout) r.corrupt("bad normalization transform dimensions");
    if (norm != 2.f)
      ANNVIL_THROW(file_format, "NormalizationTransform with norm ", norm, " is not supported (only L2)");
    return build("NormalizationTransform", [&] { return std::make_shared<NormalizationTransform>(din, norm); });
  }
  const FourccInfo* f = find_fourcc(h);
  if (f && f->kind == FKind::transform) {
    ANNVIL_THROW(file_format, f->cls, " (fourcc ", f->code, ") is not supported yet");
  }
  r.corrupt("unknown vector transform fourcc '" + fourcc_str(h) + "'");
}

void write_transform(FWriter& w, const VectorTransform& vt) {
  if (auto* nt = dynamic_cast<const NormalizationTransform*>(&vt)) {
    w.tag("VNrm");
    w.put<float>(nt->norm);
  } else if (auto* lt = dynamic_cast<const LinearTransform*>(&vt)) {
    // OPQMatrix is written as Faiss writes it: a plain LinearTransform
    w.tag(dynamic_cast<const RandomRotationMatrix*>(&vt) ? "rrot" : "LTra");
    w.put_bool(lt->have_bias);
    w.vec(lt->A);
    if (lt->have_bias)
      w.vec(lt->b);
    else
      w.put<uint64_t>(0);
  } else {
    ANNVIL_THROW(value, "the vector transform ", vt.type_tag(), " cannot be written in Faiss's format");
  }
  w.put<int32_t>(vt.d_in);
  w.put<int32_t>(vt.d_out);
  w.put_bool(vt.is_trained);
}

}  // namespace fio
}  // namespace annvil
