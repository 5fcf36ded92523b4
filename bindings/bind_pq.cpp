// Bindings of the PQ family: ProductQuantizer, IndexPQ, IndexPQFastScan,
// IndexRefine / IndexRefineFlat; the vector transforms (bind_transform.cpp).
// Argument conversion and checks are done once in python/annvil/pq.py; the
// raw methods here (prefixed `_`) only guard against out-of-bounds reads.
#include "common.h"
#include "index_pq.h"
#include "index_refine.h"
#include "quant/pq.h"
#include "quant/pq_fastscan.h"

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
  ANNVIL_CHECK(codes.ndim() == 2 && codes.shape(1) == int64_t(pq.code_size), "codes must have shape (n, ",
               pq.code_size, ")");
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
          "seed", [](const ProductQuantizer& p) { return p.cp.seed; }, [](ProductQuantizer& p, int v) { p.cp.seed = v; })
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
      .def_property_readonly("sdc_table", [](const ProductQuantizer& p) { return copy_floats(p.sdc_table); },
                             "M * ksub * ksub squared distances between the centroids of each sub-space")
      .def("sync_transposed_centroids", &ProductQuantizer::sync_transposed_centroids)
      .def("clear_transposed_centroids", &ProductQuantizer::clear_transposed_centroids)
      .def_property_readonly("transposed_centroids",
                             [](const ProductQuantizer& p) { return copy_floats(p.transposed_centroids); })
      .def_property_readonly("centroids_sq_lengths",
                             [](const ProductQuantizer& p) { return copy_floats(p.centroids_sq_lengths); })
      .def("_pack_codes", [](const ProductQuantizer& self, const IdArray& idx) {
        ANNVIL_CHECK(idx.ndim() == 2 && idx.shape(1) == int64_t(self.M), "indices must have shape (n, M=", self.M, ")");
        int64_t n = idx.shape(0);
        py::array_t<uint8_t> out({n, int64_t(self.code_size)});
        self.pack_codes(n, idx.data(), out.mutable_data());
        return out;
      })
      .def("_train", [](ProductQuantizer& self, const FloatArray& x) {
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
  py::class_<IndexPQ, Index, std::shared_ptr<IndexPQ>>(m, "IndexPQ", py::dynamic_attr())
      .def(py::init([](int d, size_t M, size_t nbits, int metric) {
             return std::make_shared<IndexPQ>(d, M, nbits, MetricType(metric));
           }),
           py::arg("d"), py::arg("M"), py::arg("nbits") = 8, py::arg("metric") = int(METRIC_L2))
      .def_property_readonly(
          "pq", [](IndexPQ& self) -> ProductQuantizer& { return self.pq; }, py::return_value_policy::reference_internal)
      .def_property_readonly("code_size", [](const IndexPQ& self) { return self.pq.code_size; })
      .def_property_readonly("codes", [](const IndexPQ& self) {
        py::array_t<uint8_t> a({int64_t(self.ntotal), int64_t(self.pq.code_size)});
        std::copy(self.codes.data(), self.codes.data() + self.codes.size(), a.mutable_data());
        return a;
      });

  // ---- IndexPQFastScan ----
  py::class_<IndexPQFastScan, Index, std::shared_ptr<IndexPQFastScan>>(m, "IndexPQFastScan", py::dynamic_attr())
      .def(py::init([](int d, size_t M, size_t nbits, int metric, size_t bbs) {
             return std::make_shared<IndexPQFastScan>(d, M, nbits, MetricType(metric), bbs);
           }),
           py::arg("d"), py::arg("M"), py::arg("nbits") = 4, py::arg("metric") = int(METRIC_L2), py::arg("bbs") = 32)
      .def(py::init([](const IndexPQ& orig, size_t bbs) { return std::make_shared<IndexPQFastScan>(orig, bbs); }),
           py::arg("orig"), py::arg("bbs") = 32)
      .def_property_readonly(
          "pq", [](IndexPQFastScan& self) -> ProductQuantizer& { return self.pq; },
          py::return_value_policy::reference_internal)
      .def_readonly("bbs", &IndexPQFastScan::bbs)
      .def_readwrite("implem", &IndexPQFastScan::implem,
                     "Faiss's kernel selector: 0 auto, 12-15 SIMD, 2 float LUT (= IndexPQ), 3/4 scalar uint8 LUT")
      .def_readwrite("qbs", &IndexPQFastScan::qbs, "Faiss's query-block schedule (accepted, unused)")
      .def_property_readonly("ntotal2", [](const IndexPQFastScan& self) {
        return (size_t(self.ntotal) + self.bbs - 1) / self.bbs * self.bbs;
      })
      .def_property_readonly("codes", [](const IndexPQFastScan& self) {
        // the packed blocks (ntotal2 / bbs blocks of get_CodePacker().block_size bytes), a copy
        py::array_t<uint8_t> a(static_cast<py::ssize_t>(self.codes.size()));
        std::copy(self.codes.data(), self.codes.data() + self.codes.size(), a.mutable_data());
        return a;
      })
      .def("get_CodePacker", [](const IndexPQFastScan& self) { return PQ4CodePacker(self.pq.M, self.bbs); })
      .def_property_readonly("M", [](const IndexPQFastScan& self) { return self.pq.M; })
      .def_property_readonly("M2", [](const IndexPQFastScan& self) { return pq4_M2(self.pq.M); })
      .def_property_readonly("code_size", [](const IndexPQFastScan& self) { return self.pq.code_size; })
      .def("_quantized_lut", [](const IndexPQFastScan& self, const FloatArray& x) {
        // (uint8 LUT (M2, 16), scale, bias) of one query: what search() scans with
        rows_of(x, self.d, "query");
        ANNVIL_CHECK(x.shape(0) == 1, "one query expected");
        std::vector<float> lut(self.pq.M * 16);
        self.compute_float_lut(x.data(), lut.data());
        QuantizedLUT q;
        pq4_quantize_lut(lut.data(), self.pq.M, q);
        py::array_t<uint8_t> a({int64_t(pq4_M2(self.pq.M)), int64_t(16)});
        std::copy(q.q.begin(), q.q.end(), a.mutable_data());
        return py::make_tuple(a, q.scale, q.bias);
      })
      .def("_accumulate", [](const IndexPQFastScan& self, const ByteArray& lut_q) {
        // uint16 sums of every stored vector (padding of the last block dropped)
        ANNVIL_CHECK(size_t(lut_q.size()) == pq4_M2(self.pq.M) * 16, "LUT must hold M2 * 16 bytes");
        size_t nb = pq4_nblocks(size_t(self.ntotal));
        std::vector<uint16_t> acc(nb * 32);
        pq4_accumulate(self.codes.data(), nb, self.pq.M, lut_q.data(), acc.data());
        py::array_t<uint16_t> a(int64_t(self.ntotal));
        std::copy(acc.begin(), acc.begin() + self.ntotal, a.mutable_data());
        return a;
      });

  m.def("_pq4_quantize_luts", [](const FloatArray& luts) {
    // (nlut, M, 16) float LUTs -> (uint8 (nlut, M2, 16), scales (nlut), biases (nlut)); for tests
    ANNVIL_CHECK(luts.ndim() == 3 && luts.shape(2) == 16 && luts.shape(1) > 0, "LUTs must have shape (nlut, M, 16)");
    size_t nlut = size_t(luts.shape(0)), M = size_t(luts.shape(1)), M2 = pq4_M2(M);
    std::vector<QuantizedLUT> out(nlut);
    if (nlut) pq4_quantize_luts(luts.data(), nlut, M, out.data());
    py::array_t<uint8_t> q({int64_t(nlut), int64_t(M2), int64_t(16)});
    py::array_t<float> scales(static_cast<py::ssize_t>(nlut)), biases(static_cast<py::ssize_t>(nlut));
    for (size_t l = 0; l < nlut; ++l) {
      std::copy(out[l].q.begin(), out[l].q.end(), q.mutable_data() + l * M2 * 16);
      scales.mutable_data()[l] = out[l].scale;
      biases.mutable_data()[l] = out[l].bias;
    }
    return py::make_tuple(q, scales, biases);
  });

  // ---- refine ----
  py::class_<IndexRefine, Index, std::shared_ptr<IndexRefine>>(m, "IndexRefine", py::dynamic_attr())
      .def(py::init<IndexPtr, IndexPtr>(), py::arg("base_index"), py::arg("refine_index"))
      .def_readonly("base_index", &IndexRefine::base_index)
      .def_readonly("refine_index", &IndexRefine::refine_index)
      .def_property(
          "k_factor", [](const IndexRefine& s) { return s.k_factor; },
          [](IndexRefine& s, float v) {
            ANNVIL_CHECK(v >= 1.f, "k_factor must be at least 1, got ", v);
            s.k_factor = v;
          });
  py::class_<IndexRefineSearchParameters, SearchParameters, std::shared_ptr<IndexRefineSearchParameters>> rsp(
      m, "IndexRefineSearchParameters", py::dynamic_attr());
  rsp.def(py::init([](float k_factor, std::shared_ptr<SearchParameters> base, const py::object& sel) {
            ANNVIL_CHECK(k_factor <= 0.f || k_factor >= 1.f, "k_factor must be at least 1, got ", k_factor);
            auto p = std::make_shared<IndexRefineSearchParameters>();
            p->k_factor = k_factor;
            p->base_index_params = std::move(base);
            p->set_selector(to_selector(sel));
            return p;
          }),
          py::kw_only(), py::arg("k_factor") = 0.f, py::arg("base_index_params") = nullptr,
          py::arg("sel") = py::none())
      .def_property(
          "k_factor", [](const IndexRefineSearchParameters& p) { return p.k_factor; },
          [](IndexRefineSearchParameters& p, float v) {
            ANNVIL_CHECK(v <= 0.f || v >= 1.f, "k_factor must be at least 1, got ", v);
            p.k_factor = v;
          })
      .def_readwrite("base_index_params", &IndexRefineSearchParameters::base_index_params);
  def_selector_property(rsp);
  py::class_<IndexRefineFlat, IndexRefine, std::shared_ptr<IndexRefineFlat>>(m, "IndexRefineFlat", py::dynamic_attr())
      .def(py::init([](IndexPtr base, const py::object& xb) {
             if (xb.is_none()) return std::make_shared<IndexRefineFlat>(base, nullptr);
             FloatArray a = xb.cast<FloatArray>();
             ANNVIL_CHECK(base != nullptr, "IndexRefineFlat needs a base index");
             ANNVIL_CHECK(rows_of(a, base->d, "xb") == base->ntotal, "xb must hold the ", base->ntotal,
                          " vectors of the base index, got ", a.shape(0));
             return std::make_shared<IndexRefineFlat>(base, a.data());
           }),
           py::arg("base_index"), py::arg("xb") = py::none());

  // ---- vector transforms and IndexPreTransform (bind_transform.cpp) ----
  init_transform(m);
}

}  // namespace annvil_py
