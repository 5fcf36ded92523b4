// Faiss's indexIVF_stats: process-wide counters of IVF searches (queries,
// probed lists visited, codes scanned), updated once per search call with
// atomic adds so concurrent searches (GIL released) do not race.
// IndexIVFPQFastScan updates them; other IVF indexes may follow.
#pragma once
#include <cstddef>

namespace annvil {

struct IndexIVFStats {
  size_t nq = 0;             // queries searched
  size_t nlist = 0;          // inverted lists visited
  size_t ndis = 0;           // codes scanned
  size_t nheap_updates = 0;  // kept for Faiss's API (not counted here)
  double quantization_time = 0, search_time = 0;  // kept for Faiss's API (not measured here)

  void reset() { *this = IndexIVFStats(); }
  void add(size_t q, size_t lists, size_t dis) {
    __atomic_fetch_add(&nq, q, __ATOMIC_RELAXED);
    __atomic_fetch_add(&nlist, lists, __ATOMIC_RELAXED);
    __atomic_fetch_add(&ndis, dis, __ATOMIC_RELAXED);
  }
};

extern IndexIVFStats indexIVF_stats;

}  // namespace annvil
