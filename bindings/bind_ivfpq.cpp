// Bindings of IndexIVFPQ and IndexIVFPQFastScan (python/annvil/ivfpq.py adds
// the docstrings and Faiss-style helpers).
#include "common.h"
#include "index_ivf_pq.h"
#include "index_ivf_pq_fastscan.h"
#include "pq_fastscan.h"

namespace annvil_py {

using namespace annvil;

namespace {

py::array_t<float> table_array(const std::vector<float>& t, size_t nlist, size_t M, size_t ksub) {
  if (t.empty()) return py::array_t<float>(std::vector<int64_t>{0});
  py::array_t<float> a({int64_t(nlist), int64_t(M), int64_t(ksub)});
  std::copy(t.begin(), t.end(), a.mutable_data());
  return a;
}

inline void drop_terms(IndexIVFPQ& s) { s.update_terms(true); }
inline void drop_terms(IndexIVFPQFastScan&) {}

template <class T>
void check_upt(const T& s, int v) {
  ANNVIL_CHECK(v >= -1 && v <= 1, "use_precomputed_table must be -1 (never), 0 (off) or 1 (on), got ", v);
  (void)s;
}

// Attributes both IVF-PQ forms share: the quantizer, residual encoding and
// the precomputed L2 table.
template <class T, class Cls>
void def_pq_common(Cls& cls) {
  cls.def_property_readonly(
         "pq", [](T& s) -> ProductQuantizer& { return s.pq; }, py::return_value_policy::reference_internal)
      .def_property(
          "by_residual", [](const T& s) { return s.by_residual; },
          [](T& s, bool v) {
            ANNVIL_CHECK(s.ntotal == 0 || v == s.by_residual, "by_residual can only change while the index is empty");
            s.by_residual = v;
            s.precompute_table();
          })
      .def_property(
          "use_precomputed_table", [](const T& s) { return s.use_precomputed_table; },
          [](T& s, int v) {
            check_upt(s, v);
            s.use_precomputed_table = v;
            if (v != 1) {  // -1 / 0: drop the table
              std::vector<float>().swap(s.precomputed_table);
              drop_terms(s);
              return;
            }
            py::gil_scoped_release release;
            s.precompute_table();
          },
          "-1: never, 0: off, 1: use the (list, m, j) table of |r|^2 + 2<y_C, r> (L2 + by_residual)")
      .def_property_readonly("precomputed_table",
                             [](const T& s) { return table_array(s.precomputed_table, s.nlist, s.pq.M, s.pq.ksub); })
      .def("precompute_table", [](T& s) {
        py::gil_scoped_release release;
        s.precompute_table();
      });
}

}  // namespace

void init_ivfpq(py::module_& m) {
  py::class_<IndexIVFPQ, IndexIVF, std::shared_ptr<IndexIVFPQ>> ivfpq(m, "IndexIVFPQ", py::dynamic_attr());
  def_pq_common<IndexIVFPQ>(ivfpq);
  ivfpq.def(py::init([](IndexPtr q, int d, int64_t nlist, int64_t M, int64_t nbits, int metric) {
             ANNVIL_CHECK(nlist > 0, "nlist must be positive, got ", nlist);
             ANNVIL_CHECK(M > 0, "M must be positive, got ", M);
             ANNVIL_CHECK(nbits >= 1 && nbits <= 16, "nbits must be between 1 and 16, got ", nbits);
             ANNVIL_CHECK(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                          "metric must be METRIC_L2 or METRIC_INNER_PRODUCT, got ", metric);
             return std::make_shared<IndexIVFPQ>(std::move(q), d, size_t(nlist), size_t(M), size_t(nbits),
                                                 MetricType(metric));
           }),
           py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("M"), py::arg("nbits") = 8,
           py::arg("metric") = int(METRIC_L2), py::keep_alive<1, 2>())
      .def_readwrite("precomputed_table_max_bytes", &IndexIVFPQ::precomputed_table_max_bytes)
      .def("merge_from",
           [](IndexIVFPQ& self, IndexIVF& other, int64_t add_id) {
             py::gil_scoped_release release;
             self.merge_from_pq(other, add_id);
           },
           py::arg("other"), py::arg("add_id") = 0);

  py::class_<IndexIVFPQFastScan, IndexIVF, std::shared_ptr<IndexIVFPQFastScan>> fs(m, "IndexIVFPQFastScan",
                                                                                    py::dynamic_attr());
  def_pq_common<IndexIVFPQFastScan>(fs);
  fs.def(py::init([](IndexPtr q, int d, int64_t nlist, int64_t M, int64_t nbits, int metric, int64_t bbs) {
             ANNVIL_CHECK(nlist > 0, "nlist must be positive, got ", nlist);
             ANNVIL_CHECK(M > 0, "M must be positive, got ", M);
             ANNVIL_CHECK(metric == METRIC_L2 || metric == METRIC_INNER_PRODUCT,
                          "metric must be METRIC_L2 or METRIC_INNER_PRODUCT, got ", metric);
             ANNVIL_CHECK(bbs > 0, "bbs must be positive, got ", bbs);
             return std::make_shared<IndexIVFPQFastScan>(std::move(q), d, size_t(nlist), size_t(M), size_t(nbits),
                                                         MetricType(metric), size_t(bbs));
           }),
           py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("M"), py::arg("nbits") = 4,
           py::arg("metric") = int(METRIC_L2), py::arg("bbs") = 32, py::keep_alive<1, 2>())
      .def(py::init([](const IndexIVFPQ& orig, int64_t bbs) {
             ANNVIL_CHECK(bbs > 0, "bbs must be positive, got ", bbs);
             return std::make_shared<IndexIVFPQFastScan>(orig, size_t(bbs));
           }),
           py::arg("orig"), py::arg("bbs") = 32, py::keep_alive<1, 2>())
      .def_readonly("bbs", &IndexIVFPQFastScan::bbs)
      .def_property_readonly("M", [](const IndexIVFPQFastScan& s) { return s.pq.M; })
      .def_property_readonly("M2", [](const IndexIVFPQFastScan& s) { return pq4_M2(s.pq.M); })
      .def("merge_from",
           [](IndexIVFPQFastScan& self, IndexIVF& other, int64_t add_id) {
             py::gil_scoped_release release;
             self.merge_from_fs(other, add_id);
           },
           py::arg("other"), py::arg("add_id") = 0);
}

}  // namespace annvil_py
