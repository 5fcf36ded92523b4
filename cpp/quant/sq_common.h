// What the two SQ index families share (IndexScalarQuantizer, index_sq.cpp;
// IndexIVFScalarQuantizer, ivf/index_ivf_sq.cpp): the loops that scan SQ
// codes for a query (the computer's keys for a block of codes at a time, then
// a heap push or a range test per code) and the quantizer's part of their
// file records (qtype, then the trained parameters).
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/topk.h"
#include "core/index.h"
#include "core/io.h"
#include "quant/sq.h"

namespace annvil {

// codes per call of SQDistanceComputer::keys; `buf` holds that many floats
constexpr size_t kSQScanBlock = 256;

// keys of n codes (cs bytes apart), pushed into a heap; ids = id0 + i, or ids[i]
inline void sq_scan_into_heap(const SQDistanceComputer& dc, size_t n, const uint8_t* codes, size_t cs, const idx_t* ids,
                              idx_t id0, const IDSelector* sel, TopK& heap, float* buf) {
  float thr = heap.threshold();
  for (size_t i0 = 0; i0 < n; i0 += kSQScanBlock) {
    size_t m = std::min(kSQScanBlock, n - i0);
    dc.keys(m, codes + i0 * cs, cs, buf);
    for (size_t i = 0; i < m; ++i)
      if (buf[i] < thr) {
        idx_t id = ids ? ids[i0 + i] : id0 + idx_t(i0 + i);
        if (sel && !sel->is_member(id)) continue;
        heap.push(buf[i], id);
        thr = heap.threshold();
      }
  }
}

// the same, keeping every (key, id) with key < key_radius
inline void sq_scan_into_range(const SQDistanceComputer& dc, size_t n, const uint8_t* codes, size_t cs,
                               const idx_t* ids, idx_t id0, const IDSelector* sel, float key_radius,
                               std::vector<std::pair<float, idx_t>>& out, float* buf) {
  for (size_t i0 = 0; i0 < n; i0 += kSQScanBlock) {
    size_t m = std::min(kSQScanBlock, n - i0);
    dc.keys(m, codes + i0 * cs, cs, buf);
    for (size_t i = 0; i < m; ++i)
      if (buf[i] < key_radius) {
        idx_t id = ids ? ids[i0 + i] : id0 + idx_t(i0 + i);
        if (sel && !sel->is_member(id)) continue;
        out.emplace_back(buf[i], id);
      }
  }
}

// ---- the quantizer in a file record ----
inline void write_sq_params(Writer& w, const ScalarQuantizer& sq) {
  w.write<int32_t>(sq.qtype);
  w.write_vector(sq.trained);
}

inline int read_sq_qtype(Reader& r) {
  int32_t qt = r.read<int32_t>();
  if (!ScalarQuantizer::valid_qtype(qt)) r.corrupt("unknown scalar quantizer type");
  return qt;
}

// the trained parameters of `sq` (built with the qtype read before)
inline void read_sq_trained(Reader& r, ScalarQuantizer& sq, bool is_trained) {
  r.read_vector(sq.trained);
  if (!sq.trained.empty() && sq.trained.size() != sq.trained_size())
    r.corrupt("scalar quantizer parameters have the wrong size");
  if (is_trained && sq.needs_training() && sq.trained.empty()) r.corrupt("trained index without SQ parameters");
}

}  // namespace annvil
