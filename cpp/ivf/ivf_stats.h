// Faiss's IndexIVFStats (faiss.cvar.indexIVF_stats): process-wide counters of
// IVF searches, added to by every search and range search (all threads, with
// atomic adds, so concurrent searches with the GIL released do not race).
//   nq: queries; nlist: probed lists (key >= 0); ndis: codes whose distance
//   was computed (the probed lists' entries, capped by max_codes, that pass
//   the selector); search_ns / quantization_ns: time spent in the whole
//   search / in the coarse quantizer.
#pragma once
#include <atomic>
#include <cstdint>

namespace annvil {

struct IndexIVFStats {
  std::atomic<uint64_t> nq{0}, nlist{0}, ndis{0};
  std::atomic<uint64_t> quantization_ns{0}, search_ns{0};

  void reset() {
    nq = 0;
    nlist = 0;
    ndis = 0;
    quantization_ns = 0;
    search_ns = 0;
  }
  void add(uint64_t queries, uint64_t lists, uint64_t dis) {
    nq.fetch_add(queries, std::memory_order_relaxed);
    nlist.fetch_add(lists, std::memory_order_relaxed);
    ndis.fetch_add(dis, std::memory_order_relaxed);
  }
};

extern IndexIVFStats indexIVF_stats;

}  // namespace annvil
