// Bindings of ProductQuantizer and IndexPQ (IndexPQFastScan:
// bind_pq_fastscan.cpp; IndexRefine: bind_refine.cpp).  Argument conversion
// and checks are done once in python/annvil/pq.py; the raw methods here
// (prefixed `_`) only guard against out-of-bounds reads.
#include "common.h"
#include "index_pq.h"
#include "quant/pq.h"

namespace annvil_py {

using namespace annvil;

namespace {
py::array_t<float> copy_floats(const std::vector<float>& v) {
  py::array_t<float> a(int64_t(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

void set_floats(std::vector<float>& v, const FloatArray& a, const char* what) {
  ANNVIL_CHECK(size_t(a.size()) == v.size(), what, " must hold ", v.size(), " values, got ", a.size());
  std::copy(a.data(), a.data() + a.size(), v.begin());
}

py::array_t<uint8_t> pq_codes(const ProductQuantizer& pq, const FloatArray& x) {
  int64_t n = rows_of(x, int64_t(pq.d), "vectors");
  py::array_t<uint8_t> out({n, int64_t(pq.code_size)});
  uint8_t* op = out.mutable_data();
  const float* xp = x.data();
  py::gil_scoped_release release;
  pq.compute_codes(n, xp, op);
  return out;
}

py::array_t<float> pq_decode(const ProductQuantizer& pq, const ByteArray& codes) {
  ANNVIL_CHECK(codes.ndim() == 2 && codes.shape(1) == int64_t(pq.code_size), "codes must have shape (n, ", pq.code_size,
               ")");
  int64_t n = codes.shape(0);
  py::array_t<float> out({n, int64_t(pq.d)});
  float* op = out.mutable_data();
  const uint8_t* cp = codes.data();
  py::gil_scoped_release release;
  pq.decode(n, cp, op);
  return out;
}
}  // namespace

void init_pq(py::module_& m) {
  // ---- ProductQuantizer ----
  py::class_<ProductQuantizer, std::shared_ptr<ProductQuantizer>>(m, "ProductQuantizer", py::dynamic_attr())
      .def(py::init<size_t, size_t, size_t>(), py::arg("d"), py::arg("M"), py::arg("nbits") = 8)
      .def_readonly("d", &ProductQuantizer::d)
      .def_readonly("M", &ProductQuantizer::M)
      .def_readonly("nbits", &ProductQuantizer::nbits)
      .def_readonly("dsub", &ProductQuantizer::dsub)
      .def_readonly("ksub", &ProductQuantizer::ksub)
      .def_readonly("code_size", &ProductQuantizer::code_size)
      .def_readwrite("verbose", &ProductQuantizer::verbose)
      .def_readwrite("is_trained", &ProductQuantizer::is_trained)
      .def_property(
          "niter", [](const ProductQuantizer& p) { return p.cp.niter; },
          [](ProductQuantizer& p, int v) {
            ANNVIL_CHECK(v >= 0, "niter must be non-negative");
            p.cp.niter = v;
          },
          "k-means iterations per sub-space (Faiss: pq.cp.niter)")
      .def_property(
          "seed", [](const ProductQuantizer& p) { return p.cp.seed; },
          [](ProductQuantizer& p, int v) { p.cp.seed = v; })
      .def_property(
          "max_points_per_centroid", [](const ProductQuantizer& p) { return p.cp.max_points_per_centroid; },
          [](ProductQuantizer& p, int v) {
            ANNVIL_CHECK(v > 0, "max_points_per_centroid must be positive");
            p.cp.max_points_per_centroid = v;
          })
      .def_property(
          "centroids", [](const ProductQuantizer& p) { return copy_floats(p.centroids); },
          [](ProductQuantizer& p, const FloatArray& a) {
            set_floats(p.centroids, a, "centroids");
            p.is_trained = true;  // as Faiss: a PQ with centroids is ready to encode
          },
          "M * ksub * dsub floats (Faiss layout); reshape to (M, ksub, dsub)")
      .def("compute_sdc_table", &ProductQuantizer::compute_sdc_table)
      .def_property_readonly(
          "sdc_table", [](const ProductQuantizer& p) { return copy_floats(p.sdc_table); },
          "M * ksub * ksub squared distances between the centroids of each sub-space")
      .def("sync_transposed_centroids", &ProductQuantizer::sync_transposed_centroids)
      .def("clear_transposed_centroids", &ProductQuantizer::clear_transposed_centroids)
      .def_property_readonly("transposed_centroids",
                             [](const ProductQuantizer& p) { return copy_floats(p.transposed_centroids); })
      .def_property_readonly("centroids_sq_lengths",
                             [](const ProductQuantizer& p) { return copy_floats(p.centroids_sq_lengths); })
      .def("_pack_codes",
           [](const ProductQuantizer& self, const IdArray& idx) {
             ANNVIL_CHECK(idx.ndim() == 2 && idx.shape(1) == int64_t(self.M), "indices must have shape (n, M=", self.M,
                          ")");
             int64_t n = idx.shape(0);
             py::array_t<uint8_t> out({n, int64_t(self.code_size)});
             self.pack_codes(n, idx.data(), out.mutable_data());
             return out;
           })
      .def("_train",
           [](ProductQuantizer& self, const FloatArray& x) {
             int64_t n = rows_of(x, int64_t(self.d), "training vectors");
             const float* xp = x.data();
             py::gil_scoped_release release;
             self.train(n, xp);
           })
      .def("_compute_codes", &pq_codes)
      .def("_decode", &pq_decode)
      .def("_compute_tables", [](const ProductQuantizer& self, const FloatArray& x, int metric) {
        int64_t n = rows_of(x, int64_t(self.d), "queries");
        py::array_t<float> out({n, int64_t(self.M), int64_t(self.ksub)});
        float* op = out.mutable_data();
        const float* xp = x.data();
        py::gil_scoped_release release;
        self.compute_tables(n, xp, MetricType(metric), op);
        return out;
      });

  // ---- IndexPQ ----
  // code_size and codes come from IndexFlatCodes (bind_flat_codes.cpp)
  py::class_<IndexPQ, IndexFlatCodes, std::shared_ptr<IndexPQ>>(m, "IndexPQ", py::dynamic_attr())
      .def(py::init([](int d, size_t M, size_t nbits, int metric) {
             return std::make_shared<IndexPQ>(d, M, nbits, MetricType(metric));
           }),
           py::arg("d"), py::arg("M"), py::arg("nbits") = 8, py::arg("metric") = int(METRIC_L2))
      .def_property_readonly(
          "pq", [](IndexPQ& self) -> ProductQuantizer& { return self.pq; },
          py::return_value_policy::reference_internal);
}

}  // namespace annvil_py
