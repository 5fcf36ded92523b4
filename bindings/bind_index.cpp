// The Index base class (raw methods used by python/annvil's wrappers),
// selectors and search parameters.
#include <cmath>
#include <vector>

#include "common.h"
#include "index_idmap.h"

namespace annvil_py {

using namespace annvil;

namespace {

py::tuple search_raw(const Index& self, const FloatArray& x, int64_t k, const SearchParameters* params) {
  int64_t n = rows_of(x, self.d, "queries");
  self.check_k(k);
  self.check_trained();
  py::array_t<float> D({n, k});
  py::array_t<int64_t> I({n, k});
  float* dp = D.mutable_data();
  int64_t* ip = I.mutable_data();
  const float* xp = x.data();
  reading(self, [&] { self.search(n, xp, k, dp, ip, params); });
  return py::make_tuple(D, I);
}

py::tuple range_search_raw(const Index& self, const FloatArray& x, float radius, const SearchParameters* params) {
  int64_t n = rows_of(x, self.d, "queries");
  ANNVIL_CHECK(std::isfinite(radius), "radius must be finite, got ", radius);
  self.check_trained();
  RangeSearchResult res;
  const float* xp = x.data();
  reading(self, [&] { self.range_search(n, xp, radius, &res, params); });
  py::array_t<int64_t> lims(int64_t(res.lims.size()));
  std::copy(res.lims.begin(), res.lims.end(), lims.mutable_data());
  py::array_t<float> D(int64_t(res.distances.size()));
  std::copy(res.distances.begin(), res.distances.end(), D.mutable_data());
  py::array_t<int64_t> I(int64_t(res.labels.size()));
  std::copy(res.labels.begin(), res.labels.end(), I.mutable_data());
  return py::make_tuple(lims, D, I);
}

}  // namespace

void init_index(py::module_& m) {
  m.attr("METRIC_INNER_PRODUCT") = int(METRIC_INNER_PRODUCT);
  m.attr("METRIC_L2") = int(METRIC_L2);
  for (MetricType mt : {METRIC_L1, METRIC_Linf, METRIC_Lp, METRIC_Canberra, METRIC_BrayCurtis, METRIC_JensenShannon,
                        METRIC_Jaccard, METRIC_NaNEuclidean, METRIC_GOWER})
    m.attr((std::string("METRIC_") + metric_name(mt)).c_str()) = int(mt);
  m.def(
      "is_similarity_metric", [](int mt) { return is_similarity_metric(MetricType(mt)); }, py::arg("metric_type"),
      "True when larger values are closer (inner product, Jaccard).");

  // ---- selectors ----
  py::class_<IDSelector, std::shared_ptr<IDSelector>>(m, "IDSelector")
      .def("is_member", &IDSelector::is_member, py::arg("id"));
  py::class_<IDSelectorRange, IDSelector, std::shared_ptr<IDSelectorRange>>(m, "IDSelectorRange")
      .def(py::init<idx_t, idx_t, bool>(), py::arg("imin"), py::arg("imax"), py::arg("assume_sorted") = false)
      .def_readonly("imin", &IDSelectorRange::imin)
      .def_readonly("imax", &IDSelectorRange::imax)
      .def_readwrite("assume_sorted", &IDSelectorRange::assume_sorted)
      .def("_find_sorted_ids_bounds", [](const IDSelectorRange& s, const IdArray& ids) {
        size_t j0, j1;
        s.find_sorted_ids_bounds(size_t(length_of(ids, "ids")), ids.data(), &j0, &j1);
        return py::make_tuple(j0, j1);
      });
  py::class_<IDSelectorBatch, IDSelector, std::shared_ptr<IDSelectorBatch>>(m, "_IDSelectorBatch")
      .def(py::init([](const IdArray& ids) {
             int64_t n = length_of(ids, "ids");
             return std::make_shared<IDSelectorBatch>(size_t(n), ids.data());
           }),
           py::arg("ids"));
  py::class_<IDSelectorBitmap, IDSelector, std::shared_ptr<IDSelectorBitmap>>(m, "_IDSelectorBitmap")
      .def(py::init([](const ByteArray& bits) {
             if (bits.ndim() != 1) ANNVIL_THROW(value, "bitmap must be a 1-D uint8 array");
             return std::make_shared<IDSelectorBitmap>(size_t(bits.shape(0)), bits.data());
           }),
           py::arg("bitmap"));
  py::class_<IDSelectorNot, IDSelector, std::shared_ptr<IDSelectorNot>>(m, "IDSelectorNot")
      .def(py::init<std::shared_ptr<IDSelector>>(), py::arg("sel"));
  py::class_<IDSelectorTranslatedOwned, IDSelector, std::shared_ptr<IDSelectorTranslatedOwned>>(m,
                                                                                                "_IDSelectorTranslated")
      .def(py::init([](const IdArray& id_map, std::shared_ptr<IDSelector> sel) {
             if (!sel) ANNVIL_THROW(type, "IDSelectorTranslated needs an IDSelector, got None");
             int64_t n = length_of(id_map, "id_map");
             return std::make_shared<IDSelectorTranslatedOwned>(std::vector<idx_t>(id_map.data(), id_map.data() + n),
                                                                std::move(sel));
           }),
           py::arg("id_map"), py::arg("sel"));
  py::class_<IDSelectorAll, IDSelector, std::shared_ptr<IDSelectorAll>>(m, "IDSelectorAll").def(py::init<>());
  py::class_<IDSelectorArray, IDSelector, std::shared_ptr<IDSelectorArray>>(m, "_IDSelectorArray")
      .def(py::init([](const IdArray& ids) {
             int64_t n = length_of(ids, "ids");
             return std::make_shared<IDSelectorArray>(size_t(n), ids.data());
           }),
           py::arg("ids"))
      .def_property_readonly("n", [](const IDSelectorArray& s) { return s.ids.size(); });
  auto need = [](const std::shared_ptr<IDSelector>& s, const char* what) {
    if (!s) ANNVIL_THROW(type, what, " must be an IDSelector, got None");
    return s;
  };
  py::class_<IDSelectorAnd, IDSelector, std::shared_ptr<IDSelectorAnd>>(m, "IDSelectorAnd")
      .def(py::init([need](std::shared_ptr<IDSelector> a, std::shared_ptr<IDSelector> b) {
             return std::make_shared<IDSelectorAnd>(need(a, "lhs"), need(b, "rhs"));
           }),
           py::arg("lhs"), py::arg("rhs"), py::keep_alive<1, 2>(), py::keep_alive<1, 3>());
  py::class_<IDSelectorOr, IDSelector, std::shared_ptr<IDSelectorOr>>(m, "IDSelectorOr")
      .def(py::init([need](std::shared_ptr<IDSelector> a, std::shared_ptr<IDSelector> b) {
             return std::make_shared<IDSelectorOr>(need(a, "lhs"), need(b, "rhs"));
           }),
           py::arg("lhs"), py::arg("rhs"), py::keep_alive<1, 2>(), py::keep_alive<1, 3>());
  py::class_<IDSelectorXOr, IDSelector, std::shared_ptr<IDSelectorXOr>>(m, "IDSelectorXOr")
      .def(py::init([need](std::shared_ptr<IDSelector> a, std::shared_ptr<IDSelector> b) {
             return std::make_shared<IDSelectorXOr>(need(a, "lhs"), need(b, "rhs"));
           }),
           py::arg("lhs"), py::arg("rhs"), py::keep_alive<1, 2>(), py::keep_alive<1, 3>());

  // ---- search parameters: `sel` keeps its Python object alive on the params ----
  py::class_<SearchParameters, std::shared_ptr<SearchParameters>> sp(m, "SearchParameters", py::dynamic_attr());
  sp.def(py::init([](const py::object& sel) {
           auto p = std::make_shared<SearchParameters>();
           p->set_selector(to_selector(sel));
           return p;
         }),
         py::kw_only(), py::arg("sel") = py::none());
  def_selector_property(sp);

  // ---- the index ----
  py::class_<Index, std::shared_ptr<Index>>(m, "Index", py::dynamic_attr())
      .def_readonly("d", &Index::d)
      .def_property_readonly("ntotal", [](const Index& i) { return i.ntotal; })
      .def_property(
          "metric_type", [](const Index& i) { return int(i.metric_type); },
          [](Index& i, int v) {
            // Faiss lets clients set the metric after construction; annvil
            // allows it while nothing depends on it yet (untrained and empty)
            if (v == int(i.metric_type)) return;
            ANNVIL_CHECK(v == int(METRIC_L2) || v == int(METRIC_INNER_PRODUCT),
                         "metric_type must be METRIC_L2 or METRIC_INNER_PRODUCT, got ", v);
            ANNVIL_CHECK(i.ntotal == 0 && !i.is_trained,
                         "metric_type can only change before the index is trained or holds vectors; "
                         "construct the index with the metric instead");
            i.metric_type = MetricType(v);
          })
      .def_property(
          "metric_arg", [](const Index& i) { return i.metric_arg; },
          [](Index& i, float v) {
            ANNVIL_CHECK(std::isfinite(v), "metric_arg must be finite, got ", v);
            i.metric_arg = v;
          },
          "the p of METRIC_Lp (unused by the other metrics)")
      .def_readwrite("is_trained", &Index::is_trained)
      .def_readwrite("verbose", &Index::verbose)
      .def("_train",
           [](Index& self, const FloatArray& x) {
             int64_t n = rows_of(x, self.d, "training vectors");
             const float* xp = x.data();
             writing(self, [&] { self.train(n, xp); });
           })
      .def("_add",
           [](Index& self, const FloatArray& x) {
             int64_t n = rows_of(x, self.d, "vectors");
             self.check_trained();
             const float* xp = x.data();
             writing(self, [&] { self.add(n, xp); });
           })
      .def("_add_with_ids",
           [](Index& self, const FloatArray& x, const IdArray& ids) {
             int64_t n = rows_of(x, self.d, "vectors");
             if (length_of(ids, "ids") != n) ANNVIL_THROW(value, "got ", ids.shape(0), " ids for ", n, " vectors");
             self.check_trained();
             const float* xp = x.data();
             const int64_t* idp = ids.data();
             writing(self, [&] { self.add_with_ids(n, xp, idp); });
           })
      .def("_search", &search_raw, py::arg("x"), py::arg("k"), py::arg("params") = nullptr)
      .def("_range_search", &range_search_raw, py::arg("x"), py::arg("radius"), py::arg("params") = nullptr)
      .def("_reconstruct",
           [](const Index& self, int64_t key) {
             py::array_t<float> out(self.d);
             float* op = out.mutable_data();
             reading(self, [&] { self.reconstruct(key, op); });
             return out;
           })
      .def("_reconstruct_n",
           [](const Index& self, int64_t i0, int64_t ni) {
             ANNVIL_CHECK(i0 >= 0 && ni >= 0 && i0 + ni <= self.ntotal, "reconstruct_n(", i0, ", ", ni,
                          ") is out of range: vectors [0, ntotal=", self.ntotal, ") are stored");
             py::array_t<float> out({ni, int64_t(self.d)});
             float* op = out.mutable_data();
             reading(self, [&] { self.reconstruct_n(i0, ni, op); });
             return out;
           })
      .def("_remove_ids",
           [](Index& self, const IDSelector& sel) { return writing(self, [&] { return self.remove_ids(sel); }); })
      .def("sa_code_size", &Index::sa_code_size, "bytes of one standalone code (sa_encode)")
      .def("_sa_encode",
           [](const Index& self, const FloatArray& x) {
             int64_t n = rows_of(x, self.d, "vectors");
             self.check_trained();
             const int64_t cs = int64_t(self.sa_code_size());
             py::array_t<uint8_t> out({n, cs});
             uint8_t* op = out.mutable_data();
             const float* xp = x.data();
             reading(self, [&] { self.sa_encode(n, xp, op); });
             return out;
           })
      .def("_sa_decode",
           [](const Index& self, const ByteArray& codes) {
             const int64_t cs = int64_t(self.sa_code_size());
             if (codes.ndim() != 2 || codes.shape(1) != cs)
               ANNVIL_THROW(value, "codes must be a (n, ", cs, ") uint8 array (sa_code_size() bytes per row)");
             self.check_trained();
             int64_t n = codes.shape(0);
             py::array_t<float> out({n, int64_t(self.d)});
             float* op = out.mutable_data();
             const uint8_t* cp = codes.data();
             reading(self, [&] { self.sa_decode(n, cp, op); });
             return out;
           })
      .def("_add_sa_codes",
           [](Index& self, const ByteArray& codes, const py::object& ids) {
             const int64_t cs = int64_t(self.sa_code_size());
             if (codes.ndim() != 2 || codes.shape(1) != cs)
               ANNVIL_THROW(value, "codes must be a (n, ", cs, ") uint8 array (sa_code_size() bytes per row)");
             self.check_trained();
             int64_t n = codes.shape(0);
             IdArray idarr;
             const int64_t* idp = nullptr;
             if (!ids.is_none()) {
               idarr = ids.cast<IdArray>();
               if (length_of(idarr, "ids") != n) ANNVIL_THROW(value, "got ", idarr.shape(0), " ids for ", n, " codes");
               idp = idarr.data();
             }
             const uint8_t* cp = codes.data();
             writing(self, [&] { self.add_sa_codes(n, cp, idp); });
           })
      .def(
          "check_compatible_for_merge",
          [](const Index& self, const Index& other) { self.check_compatible_for_merge(other); }, py::arg("otherIndex"))
      .def(
          "merge_from",
          [](Index& self, Index& other, int64_t add_id) {
            if (&self == &other) ANNVIL_THROW(value, "cannot merge an index into itself");
            writing(self, [&] {
              auto other_lock = other.lock.write();
              self.merge_from(other, add_id);
            });
          },
          py::arg("otherIndex"), py::arg("add_id") = 0,
          "Move the vectors of otherIndex into this index (ids shifted by add_id where ids are stored); "
          "otherIndex is left empty.")
      .def(
          "_search_and_reconstruct",
          [](const Index& self, const FloatArray& x, int64_t k, const SearchParameters* params) {
            int64_t n = rows_of(x, self.d, "queries");
            self.check_k(k);
            self.check_trained();
            py::array_t<float> D({n, k});
            py::array_t<int64_t> I({n, k});
            py::array_t<float> R({n, k, int64_t(self.d)});
            float* dp = D.mutable_data();
            int64_t* ip = I.mutable_data();
            float* rp = R.mutable_data();
            const float* xp = x.data();
            reading(self, [&] { self.search_and_reconstruct(n, xp, k, dp, ip, rp, params); });
            return py::make_tuple(D, I, R);
          },
          py::arg("x"), py::arg("k"), py::arg("params") = nullptr)
      .def("reset", [](Index& self) { writing(self, [&] { self.reset(); }); })
      .def("memory_usage", &Index::memory_usage, "bytes held by the index")
      .def_property_readonly("type_tag", &Index::type_tag);
}

}  // namespace annvil_py
