// Bindings of the hnsw family: the HNSW graph object (index.hnsw), IndexHNSW,
// IndexHNSWFlat, IndexHNSWSQ, IndexHNSWPQ and SearchParametersHNSW.
#include "common.h"
#include "index_flat.h"
#include "hnsw/index_hnsw.h"
#include "hnsw/index_hnsw_quant.h"
#include "index_pq.h"
#include "index_sq.h"

namespace annvil_py {

using namespace annvil;

namespace {

int positive(int v, const char* what) {
  if (v <= 0) ANNVIL_THROW(value, what, " must be positive, got ", v);
  return v;
}

// Faiss's IndexHNSW::storage, as a copy: an index of the storage's type
// (IndexFlat, IndexScalarQuantizer or IndexPQ) holding the same vectors or
// codes, slot for slot.  annvil keeps the storage inside the graph index, so
// this is a snapshot: changing it does not change the HNSW index.
std::shared_ptr<Index> storage_copy(const IndexHNSW& self) {
  std::shared_ptr<Index> out;
  if (auto sq = dynamic_cast<const IndexHNSWSQ*>(&self)) {
    auto idx = std::make_shared<IndexScalarQuantizer>(self.d, sq->sq.qtype, self.metric_type);
    idx->sq = sq->sq;
    idx->codes.mut().assign(sq->codes.data(), sq->codes.data() + sq->codes.size());
    out = idx;
  } else if (auto pq = dynamic_cast<const IndexHNSWPQ*>(&self)) {
    auto idx = std::make_shared<IndexPQ>(self.d, pq->pq.M, pq->pq.nbits, self.metric_type);
    idx->pq = pq->pq;
    idx->codes.mut().assign(pq->codes.data(), pq->codes.data() + pq->codes.size());
    out = idx;
  } else {
    auto idx = std::make_shared<IndexFlat>(self.d, self.metric_type);
    idx->metric_arg = self.metric_arg;
    std::vector<uint8_t>& xb = idx->codes.mut();
    xb.resize(size_t(self.ntotal) * idx->code_size);
    self.reconstruct_n(0, self.ntotal, reinterpret_cast<float*>(xb.data()));
    out = idx;
  }
  out->ntotal = self.ntotal;
  out->is_trained = self.is_trained;
  return out;
}

}  // namespace

void init_hnsw(py::module_& m) {
  py::class_<HNSW>(m, "HNSW")
      .def_property_readonly("M", [](const HNSW& g) { return g.M; })
      .def_property(
          "efConstruction", [](const HNSW& g) { return g.efConstruction; },
          [](HNSW& g, int v) { g.efConstruction = positive(v, "efConstruction"); })
      .def_property(
          "efSearch", [](const HNSW& g) { return g.efSearch; },
          [](HNSW& g, int v) { g.efSearch = positive(v, "efSearch"); })
      .def_property(
          "max_level", [](const HNSW& g) { return g.max_level; },
          [](HNSW& g, int v) {
            // lowering the top level is allowed (searches then start lower);
            // the entry point must reach the level searches start from
            if (g.ntotal == 0) ANNVIL_THROW(value, "max_level of an empty graph is -1");
            if (v < 0 || v > g.levels[size_t(g.entry_point)])
              ANNVIL_THROW(value, "max_level must be in [0, ", int(g.levels[size_t(g.entry_point)]),
                           "] (the entry point's level), got ", v);
            g.max_level = v;
          })
      .def_property(
          "entry_point", [](const HNSW& g) { return int64_t(g.entry_point); },
          [](HNSW& g, int64_t v) {
            if (v < 0 || size_t(v) >= g.ntotal)
              ANNVIL_THROW(value, "entry_point must be a node id in [0, ", g.ntotal, "), got ", v);
            if (g.levels[size_t(v)] < g.max_level)
              ANNVIL_THROW(value, "node ", v, " has level ", int(g.levels[size_t(v)]), " < max_level ", g.max_level,
                           "; lower max_level first");
            g.entry_point = int32_t(v);
          })
      .def_readwrite("seed", &HNSW::seed, "seed of the level draws (levels are a hash of seed and id)")
      .def_property_readonly("ntotal", [](const HNSW& g) { return g.ntotal; })
      .def_readwrite("search_bounded_queue", &HNSW::search_bounded_queue,
                     "Faiss's queue choice; annvil's level-0 search is always the unbounded-queue variant")
      .def_property_readonly(
          "is_similarity", [](const HNSW& g) { return g.is_similarity; },
          "whether the index's metric is a similarity (inner product)")
      .def_property_readonly("levels",
                             [](const HNSW& g) {
                               // Faiss's convention: levels[i] = number of levels of node i (top level + 1)
                               py::array_t<int32_t> a(int64_t(g.ntotal));
                               int32_t* p = a.mutable_data();
                               for (size_t i = 0; i < g.ntotal; ++i) p[i] = int32_t(g.levels[i]) + 1;
                               return a;
                             })
      .def(
          "nb_neighbors", [](const HNSW& g, int layer) { return g.cap(layer); }, py::arg("layer"))
      .def(
          "get_neighbors",
          [](const HNSW& g, int64_t node, int level) {
            if (node < 0 || size_t(node) >= g.ntotal) ANNVIL_THROW(value, "node ", node, " out of range");
            if (level < 0 || level > g.levels[size_t(node)])
              ANNVIL_THROW(value, "node ", node, " has no level ", level);
            const int32_t* l = g.links(int32_t(node), level);
            std::vector<int64_t> out;
            for (int j = 0; j < g.cap(level) && l[j] >= 0; ++j) out.push_back(l[j]);
            return py::array_t<int64_t>(int64_t(out.size()), out.data());
          },
          py::arg("node"), py::arg("level") = 0, "neighbour ids of a node at a level");

  auto u64 = [](std::atomic<uint64_t> HNSWStats::* f) { return [f](const HNSWStats& s) { return (s.*f).load(); }; };
  py::class_<HNSWStats>(m, "HNSWStats", "Faiss's HNSWStats: counters of every HNSW search in this process")
      .def_property_readonly("n1", u64(&HNSWStats::n1), "queries searched")
      .def_property_readonly("n2", u64(&HNSWStats::n2), "kept for Faiss's layout: 0")
      .def_property_readonly("ndis", u64(&HNSWStats::ndis), "distances computed at level 0")
      .def_property_readonly("nhops", u64(&HNSWStats::nhops), "level-0 nodes expanded")
      .def("reset", &HNSWStats::reset);
  m.attr("hnsw_stats") = py::cast(&hnsw_stats, py::return_value_policy::reference);

  py::class_<SearchParametersHNSW, SearchParameters, std::shared_ptr<SearchParametersHNSW>> sp(
      m, "SearchParametersHNSW", py::dynamic_attr());
  sp.def(py::init([](const py::object& efSearch, const py::object& sel) {
           auto p = std::make_shared<SearchParametersHNSW>();
           if (!efSearch.is_none()) p->efSearch = positive(efSearch.cast<int>(), "efSearch");
           p->set_selector(to_selector(sel));
           return p;
         }),
         py::kw_only(), py::arg("efSearch") = py::none(), py::arg("sel") = py::none());
  sp.def_property(
      "efSearch", [](const SearchParametersHNSW& p) { return p.efSearch; },
      [](SearchParametersHNSW& p, int v) { p.efSearch = positive(v, "efSearch"); },
      "candidate-list size for this call (0: the index's hnsw.efSearch)");
  def_selector_property(sp);

  py::class_<IndexHNSW, Index, std::shared_ptr<IndexHNSW>>(m, "IndexHNSW", py::dynamic_attr())
      // Faiss's IndexHNSW(storage, M): over a flat storage this is an
      // IndexHNSWFlat with the storage's metric (and metric_arg); vectors
      // already in the storage are added to the graph.
      .def(py::init([](const std::shared_ptr<Index>& storage, int M) -> std::shared_ptr<IndexHNSW> {
             auto flat = std::dynamic_pointer_cast<IndexFlat>(storage);
             if (!flat)
               ANNVIL_THROW(value, "IndexHNSW(storage) needs an IndexFlat storage, got ", storage->type_tag(),
                            "; use IndexHNSWFlat, IndexHNSWSQ or IndexHNSWPQ");
             auto idx = std::make_shared<IndexHNSWFlat>(flat->d, M, flat->metric_type);
             idx->metric_arg = flat->metric_arg;
             if (flat->ntotal > 0) {
               py::gil_scoped_release release;
               idx->add(flat->ntotal, flat->get_xb());
             }
             return idx;
           }),
           py::arg("storage"), py::arg("M") = 32)
      .def_property_readonly(
          "hnsw", [](IndexHNSW& self) -> HNSW& { return self.hnsw; }, py::return_value_policy::reference_internal)
      .def_property_readonly(
          "storage", [](const IndexHNSW& self) { return reading(self, [&] { return storage_copy(self); }); },
          "the stored vectors as an index of the storage's type (IndexFlat, IndexScalarQuantizer, IndexPQ): "
          "a copy, changing it does not change this index")
      .def_property_readonly("n_deleted", [](const IndexHNSW& s) { return s.n_deleted; })
      .def_readwrite("replace_deleted", &IndexHNSW::replace_deleted)
      .def_readwrite("allow_f16", &IndexHNSW::allow_f16,
                     "store vectors as half floats while that is lossless (default True)")
      .def_property_readonly(
          "is_f16", [](const IndexHNSW& s) { return s.is_f16; },
          "whether vectors are currently stored as (exact) half floats")
      .def_property(
          "filter_strategy",
          [](const IndexHNSW& s) {
            return std::string(s.filter_strategy == IndexHNSW::filter_graph   ? "graph"
                               : s.filter_strategy == IndexHNSW::filter_exact ? "exact"
                                                                              : "auto");
          },
          [](IndexHNSW& s, const std::string& v) {
            if (v == "auto")
              s.filter_strategy = IndexHNSW::filter_auto;
            else if (v == "graph")
              s.filter_strategy = IndexHNSW::filter_graph;
            else if (v == "exact")
              s.filter_strategy = IndexHNSW::filter_exact;
            else
              ANNVIL_THROW(value, "filter_strategy must be 'auto', 'graph' or 'exact', got '", v, "'");
          },
          "how filtered searches run: 'auto' (planner), 'graph' or 'exact'")
      .def("is_deleted",
           [](const IndexHNSW& s, int64_t id) {
             if (id < 0 || id >= s.ntotal) ANNVIL_THROW(value, "id ", id, " out of range [0, ", s.ntotal, ")");
             return s.is_deleted(id);
           })
      .def("_add_slots",
           [](IndexHNSW& self, const FloatArray& x) {
             int64_t n = rows_of(x, self.d, "vectors");
             py::array_t<int64_t> ids(n);
             int64_t* ip = ids.mutable_data();
             const float* xp = x.data();
             writing(self, [&] { self.add_slots(n, xp, ip); });
             return ids;
           })
      .def(
          "compact",
          [](IndexHNSW& self) {
            std::vector<idx_t> keep = writing(self, [&] { return self.compact(); });
            return py::array_t<int64_t>(int64_t(keep.size()), keep.data());
          },
          "Rebuild without deleted vectors; returns old_ids (new id i was old_ids[i]).")
      .def("_mark_deleted",
           [](IndexHNSW& self, const IDSelector& sel) { return writing(self, [&] { return self.mark_deleted(sel); }); })
      .def("remove_ids_shifts", &IndexHNSW::remove_ids_shifts);

  py::class_<IndexHNSWFlat, IndexHNSW, std::shared_ptr<IndexHNSWFlat>>(m, "IndexHNSWFlat", py::dynamic_attr())
      .def(py::init([](int d, int M, int metric) { return std::make_shared<IndexHNSWFlat>(d, M, MetricType(metric)); }),
           py::arg("d"), py::arg("M") = 32, py::arg("metric") = int(METRIC_L2));

  // Compressed storages: Faiss's signatures (qtype / pq_m, pq_nbits positional).
  py::class_<IndexHNSWCodes, IndexHNSW, std::shared_ptr<IndexHNSWCodes>>(m, "IndexHNSWCodes", py::dynamic_attr())
      .def_readonly("code_size", &IndexHNSWCodes::code_size, "bytes per stored vector");

  py::class_<IndexHNSWSQ, IndexHNSWCodes, std::shared_ptr<IndexHNSWSQ>>(m, "IndexHNSWSQ", py::dynamic_attr())
      .def(py::init([](int d, int qtype, int M, int metric) {
             return std::make_shared<IndexHNSWSQ>(d, qtype, M, MetricType(metric));
           }),
           py::arg("d"), py::arg("qtype"), py::arg("M") = 32, py::arg("metric") = int(METRIC_L2))
      .def_property_readonly(
          "sq", [](IndexHNSWSQ& s) -> ScalarQuantizer& { return s.sq; }, py::return_value_policy::reference_internal);

  py::class_<IndexHNSWPQ, IndexHNSWCodes, std::shared_ptr<IndexHNSWPQ>>(m, "IndexHNSWPQ", py::dynamic_attr())
      .def(py::init([](int d, int pq_m, int M, int pq_nbits, int metric) {
             return std::make_shared<IndexHNSWPQ>(d, pq_m, M, pq_nbits, MetricType(metric));
           }),
           py::arg("d"), py::arg("pq_m"), py::arg("M") = 32, py::arg("pq_nbits") = 8,
           py::arg("metric") = int(METRIC_L2))
      .def_property_readonly(
          "pq", [](IndexHNSWPQ& s) -> ProductQuantizer& { return s.pq; }, py::return_value_policy::reference_internal);
}

}  // namespace annvil_py
