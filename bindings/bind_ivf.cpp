// Bindings of the inverted-file family (IndexIVF, IndexIVFFlat, inverted
// lists, SearchParametersIVF); the scalar quantizer indexes are in bind_sq.cpp.
#include "common.h"
#include "ivf/index_ivf.h"
#include "ivf/index_ivf_flat.h"

namespace annvil_py {

using namespace annvil;

void init_ivf(py::module_& m) {
  py::class_<SearchParametersIVF, SearchParameters, std::shared_ptr<SearchParametersIVF>> spi(m, "SearchParametersIVF",
                                                                                              py::dynamic_attr());
  spi.def(py::init([](int64_t nprobe, int64_t max_codes, const py::object& sel,
                      std::shared_ptr<SearchParameters> quantizer_params) {
            ANNVIL_CHECK(nprobe >= 0, "nprobe must be non-negative (0: the index's nprobe), got ", nprobe);
            ANNVIL_CHECK(max_codes >= 0, "max_codes must be non-negative, got ", max_codes);
            auto p = std::make_shared<SearchParametersIVF>();
            p->nprobe = size_t(nprobe);
            p->max_codes = size_t(max_codes);
            p->set_selector(to_selector(sel));
            p->quantizer_params = std::move(quantizer_params);
            return p;
          }),
          py::kw_only(), py::arg("nprobe") = 0, py::arg("max_codes") = 0, py::arg("sel") = py::none(),
          py::arg("quantizer_params") = nullptr,
          "Per-call IVF search parameters; nprobe=0 / max_codes=0 keep the index's values; quantizer_params "
          "(e.g. SearchParametersHNSW) go to the coarse quantizer's search.")
      .def_property(
          "quantizer_params",
          [](const SearchParametersIVF& p) { return std::const_pointer_cast<SearchParameters>(p.quantizer_params); },
          [](SearchParametersIVF& p, std::shared_ptr<SearchParameters> q) { p.quantizer_params = std::move(q); })
      .def_property(
          "nprobe", [](const SearchParametersIVF& p) { return p.nprobe; },
          [](SearchParametersIVF& p, int64_t v) {
            ANNVIL_CHECK(v >= 0, "nprobe must be non-negative");
            p.nprobe = size_t(v);
          })
      .def_property(
          "max_codes", [](const SearchParametersIVF& p) { return p.max_codes; },
          [](SearchParametersIVF& p, int64_t v) {
            ANNVIL_CHECK(v >= 0, "max_codes must be non-negative");
            p.max_codes = size_t(v);
          });
  def_selector_property(spi);

  py::class_<InvertedLists, std::shared_ptr<InvertedLists>>(m, "InvertedLists")
      .def_readonly("nlist", &InvertedLists::nlist)
      .def_readonly("code_size", &InvertedLists::code_size)
      .def("list_size",
           [](const InvertedLists& il, int64_t l) {
             ANNVIL_CHECK(l >= 0, "list number must be non-negative");
             il.check_list(size_t(l));
             return il.list_size(size_t(l));
           })
      .def("get_ids",
           [](const InvertedLists& il, int64_t l) {
             ANNVIL_CHECK(l >= 0, "list number must be non-negative");
             il.check_list(size_t(l));
             py::array_t<int64_t> a(int64_t(il.list_size(size_t(l))));
             std::copy(il.ids[size_t(l)].begin(), il.ids[size_t(l)].end(), a.mutable_data());
             return a;
           })
      .def("get_codes",
           [](const InvertedLists& il, int64_t l) {
             ANNVIL_CHECK(l >= 0, "list number must be non-negative");
             il.check_list(size_t(l));
             py::array_t<uint8_t> a({int64_t(il.list_size(size_t(l))), int64_t(il.code_size)});
             std::copy(il.codes[size_t(l)].begin(), il.codes[size_t(l)].end(), a.mutable_data());
             return a;
           })
      .def("compute_ntotal", &InvertedLists::compute_ntotal)
      .def("imbalance_factor", &InvertedLists::imbalance_factor)
      .def("memory_usage", &InvertedLists::memory_usage);

  py::class_<IndexIVF, Index, std::shared_ptr<IndexIVF>>(m, "IndexIVF", py::dynamic_attr())
      .def_readonly("nlist", &IndexIVF::nlist)
      .def_property(
          "nprobe", [](const IndexIVF& s) { return s.nprobe; },
          [](IndexIVF& s, int64_t v) {
            // 0 is accepted (as Faiss) and refused by search, which names the fix
            ANNVIL_CHECK(v >= 0, "nprobe must be non-negative, got ", v);
            s.nprobe = size_t(v);
          })
      .def_property(
          "max_codes", [](const IndexIVF& s) { return s.max_codes; },
          [](IndexIVF& s, int64_t v) {
            ANNVIL_CHECK(v >= 0, "max_codes must be non-negative, got ", v);
            s.max_codes = size_t(v);
          })
      .def_readonly("code_size", &IndexIVF::code_size)
      .def_readonly("by_residual", &IndexIVF::by_residual)
      .def_readonly("quantizer", &IndexIVF::quantizer)
      .def_readonly("invlists", &IndexIVF::invlists)
      .def_property(
          "cp_niter", [](const IndexIVF& s) { return s.cp.niter; },
          [](IndexIVF& s, int v) {
            ANNVIL_CHECK(v >= 0, "niter must be non-negative");
            s.cp.niter = v;
          },
          "k-means iterations used to train the coarse quantizer")
      .def("get_list_size",
           [](const IndexIVF& s, int64_t l) {
             ANNVIL_CHECK(l >= 0, "list number must be non-negative");
             return s.get_list_size(size_t(l));
           })
      .def(
          "make_direct_map",
          [](IndexIVF& self, bool maintain) { writing(self, [&] { self.make_direct_map(maintain); }); },
          py::arg("new_maintain_direct_map") = true)
      .def(
          "set_direct_map_type", [](IndexIVF& self, int t) { writing(self, [&] { self.set_direct_map_type(t); }); },
          py::arg("type"))
      .def_readonly("direct_map_type", &IndexIVF::direct_map_type)
      .def_readwrite("panel_min_queries", &IndexIVF::panel_min_queries,
                     "lists probed by at least this many queries of a batch use the panel kernel (0: auto)")
      .def("reconstruct_from_offset",
           [](const IndexIVF& self, int64_t list_no, int64_t offset) {
             py::array_t<float> out(self.d);
             float* op = out.mutable_data();
             reading(self, [&] { self.reconstruct_from_offset(list_no, offset, op); });
             return out;
           })
      .def(
          "_search_preassigned",
          [](const IndexIVF& self, const FloatArray& x, int64_t k, const IdArray& keys, const FloatArray& cdis,
             const SearchParameters* params) {
            int64_t n = rows_of(x, self.d, "queries");
            self.check_k(k);
            self.check_trained();
            if (keys.ndim() != 2 || keys.shape(0) != n) ANNVIL_THROW(value, "assign must be (n, nprobe)");
            int64_t np = keys.shape(1);
            if (cdis.ndim() != 2 || cdis.shape(0) != n || cdis.shape(1) != np)
              ANNVIL_THROW(value, "centroid distances must be (n, nprobe)");
            for (int64_t i = 0; i < n * np; ++i)
              ANNVIL_CHECK(keys.data()[i] < int64_t(self.nlist), "list number ", keys.data()[i], " out of range");
            size_t npr, mc;
            const IDSelector* sel;
            self.resolve_params(params, &npr, &mc, &sel);
            py::array_t<float> D({n, k});
            py::array_t<int64_t> I({n, k});
            float* dp = D.mutable_data();
            int64_t* ip = I.mutable_data();
            const float* xp = x.data();
            const int64_t* kp = keys.data();
            const float* cp = cdis.data();
            reading(self, [&] {
              self.count_search(n, kp, size_t(np), mc, sel);
              self.search_preassigned(n, xp, k, kp, cp, dp, ip, size_t(np), mc, sel);
            });
            return py::make_tuple(D, I);
          },
          py::arg("x"), py::arg("k"), py::arg("assign"), py::arg("centroid_dis"), py::arg("params") = nullptr)
      .def(
          "_range_search_preassigned",
          [](const IndexIVF& self, const FloatArray& x, float radius, const IdArray& keys, const FloatArray& cdis,
             const SearchParameters* params) {
            int64_t n = rows_of(x, self.d, "queries");
            ANNVIL_CHECK(std::isfinite(radius), "radius must be finite, got ", radius);
            self.check_trained();
            if (keys.ndim() != 2 || keys.shape(0) != n) ANNVIL_THROW(value, "assign must be (n, nprobe)");
            int64_t np = keys.shape(1);
            if (cdis.ndim() != 2 || cdis.shape(0) != n || cdis.shape(1) != np)
              ANNVIL_THROW(value, "centroid distances must be (n, nprobe)");
            for (int64_t i = 0; i < n * np; ++i)
              ANNVIL_CHECK(keys.data()[i] < int64_t(self.nlist), "list number ", keys.data()[i], " out of range");
            size_t npr, mc;
            const IDSelector* sel;
            self.resolve_params(params, &npr, &mc, &sel);
            RangeSearchResult res;
            const float* xp = x.data();
            const int64_t* kp = keys.data();
            const float* cp = cdis.data();
            reading(self, [&] {
              self.count_search(n, kp, size_t(np), mc, sel);
              self.range_search_preassigned(n, xp, radius, kp, cp, &res, size_t(np), mc, sel);
            });
            py::array_t<int64_t> lims(int64_t(res.lims.size()));
            std::copy(res.lims.begin(), res.lims.end(), lims.mutable_data());
            py::array_t<float> D(int64_t(res.distances.size()));
            std::copy(res.distances.begin(), res.distances.end(), D.mutable_data());
            py::array_t<int64_t> I(int64_t(res.labels.size()));
            std::copy(res.labels.begin(), res.labels.end(), I.mutable_data());
            return py::make_tuple(lims, D, I);
          },
          py::arg("x"), py::arg("radius"), py::arg("assign"), py::arg("centroid_dis"), py::arg("params") = nullptr);

  py::class_<IndexIVFFlat, IndexIVF, std::shared_ptr<IndexIVFFlat>>(m, "IndexIVFFlat", py::dynamic_attr())
      .def(py::init([](IndexPtr q, int d, int64_t nlist, int metric) {
             ANNVIL_CHECK(nlist > 0, "nlist must be positive, got ", nlist);
             return std::make_shared<IndexIVFFlat>(std::move(q), d, size_t(nlist), MetricType(metric));
           }),
           py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("metric") = int(METRIC_L2),
           py::keep_alive<1, 2>());
}

}  // namespace annvil_py
