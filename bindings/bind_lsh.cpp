// Bindings of the LSH indexes (index_lsh.h): IndexLSH (Faiss's) and
// IndexLSHMultiTable (multi-table, multi-probe, exact re-ranking).  Search,
// add, codes... come from the Index bindings; here the constructors and
// fields, mutated under the index's write lock.
#include "common.h"
#include "index_lsh.h"

namespace annvil_py {

using namespace annvil;

void init_lsh(py::module_& m) {
  py::class_<IndexLSH, Index, std::shared_ptr<IndexLSH>>(m, "IndexLSH", py::dynamic_attr())
      .def(py::init<int, int, bool, bool>(), py::arg("d"), py::arg("nbits"), py::arg("rotate_data") = true,
           py::arg("train_thresholds") = false)
      .def_readonly("nbits", &IndexLSH::nbits)
      .def_readonly("rotate_data", &IndexLSH::rotate_data)
      .def_readonly("train_thresholds", &IndexLSH::train_thresholds)
      .def_readonly("code_size", &IndexLSH::code_size)
      .def_property_readonly(
          "rrot", [](IndexLSH& s) -> RandomRotationMatrix& { return s.rrot; },
          py::return_value_policy::reference_internal,
          "the random rotation (d -> nbits); set its A before adding to use another matrix")
      .def_property(
          "_thresholds",
          [](const IndexLSH& s) {
            auto lock = s.lock.read();
            py::array_t<float> a(static_cast<py::ssize_t>(s.thresholds.size()));
            std::copy(s.thresholds.begin(), s.thresholds.end(), a.mutable_data());
            return a;
          },
          [](IndexLSH& s, const py::array_t<float, py::array::c_style | py::array::forcecast>& a) {
            ANNVIL_CHECK(a.size() == 0 || a.size() == s.nbits, "thresholds must hold nbits=", s.nbits,
                         " values (or none), got ", a.size());
            auto lock = s.lock.write();
            s.thresholds.assign(a.data(), a.data() + a.size());
          })
      .def_property_readonly("codes",
                             [](const IndexLSH& s) {
                               auto lock = s.lock.read();
                               py::array_t<uint8_t> a({int64_t(s.ntotal), int64_t(s.code_size)});
                               if (s.codes.size())
                                 std::copy(s.codes.data(), s.codes.data() + s.codes.size(), a.mutable_data());
                               return a;
                             })
      .def(
          "transfer_thresholds",
          [](IndexLSH& s, LinearTransform& vt) {
            auto lock = s.lock.write();
            s.transfer_thresholds(vt);
          },
          py::arg("vt"));

  py::class_<SearchParametersLSHMultiTable, SearchParameters, std::shared_ptr<SearchParametersLSHMultiTable>> sp(
      m, "SearchParametersLSHMultiTable", py::dynamic_attr());
  sp.def(py::init([](int nprobe, const py::object& sel) {
           ANNVIL_CHECK(nprobe >= 0, "nprobe must be non-negative (0: the index's), got ", nprobe);
           auto p = std::make_shared<SearchParametersLSHMultiTable>();
           p->nprobe = nprobe;
           p->set_selector(to_selector(sel));
           return p;
         }),
         py::kw_only(), py::arg("nprobe") = 0, py::arg("sel") = py::none())
      .def_readwrite("nprobe", &SearchParametersLSHMultiTable::nprobe);
  def_selector_property(sp);

  py::class_<IndexLSHMultiTable, Index, std::shared_ptr<IndexLSHMultiTable>>(m, "IndexLSHMultiTable",
                                                                             py::dynamic_attr())
      .def(py::init([](int d, int ntables, int nbits, int metric) {
             return std::make_shared<IndexLSHMultiTable>(d, ntables, nbits, MetricType(metric));
           }),
           py::arg("d"), py::arg("ntables") = 16, py::arg("nbits") = 16, py::arg("metric") = int(METRIC_L2))
      .def_readonly("ntables", &IndexLSHMultiTable::ntables)
      .def_readonly("nbits", &IndexLSHMultiTable::nbits)
      .def_property(
          "nprobe", [](const IndexLSHMultiTable& s) { return s.nprobe; },
          [](IndexLSHMultiTable& s, int v) {
            ANNVIL_CHECK(v >= 1, "nprobe must be at least 1, got ", v);
            auto lock = s.lock.write();
            s.nprobe = v;
          },
          "buckets probed per table (the query's own plus the nprobe - 1 most likely neighbours)")
      .def_property(
          "seed", [](const IndexLSHMultiTable& s) { return s.seed; },
          [](IndexLSHMultiTable& s, int v) {
            auto lock = s.lock.write();
            ANNVIL_CHECK(s.ntotal == 0, "set the seed before adding vectors");
            s.seed = v;
            s.init_projections();
          })
      .def_property_readonly(
          "last_candidates", [](const IndexLSHMultiTable& s) { return s.last_candidates.load(); },
          "mean number of distinct candidates re-ranked per query in the last search")
      .def_property_readonly("_mean", [](const IndexLSHMultiTable& s) {
        py::array_t<float> a(static_cast<py::ssize_t>(s.mean.size()));
        std::copy(s.mean.begin(), s.mean.end(), a.mutable_data());
        return a;
      });
}

}  // namespace annvil_py
