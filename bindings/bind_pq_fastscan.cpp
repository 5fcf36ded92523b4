// Bindings of IndexPQFastScan (index_pq_fastscan.h) and the fast-scan LUT
// helpers the tests use.
#include "common.h"
#include "index_pq_fastscan.h"
#include "quant/pq_fastscan.h"

namespace annvil_py {

using namespace annvil;

void init_pq_fastscan(py::module_& m) {
  // Bound under Index, not IndexFlatCodes: in Faiss an IndexPQFastScan is no
  // IndexFlatCodes (isinstance is False there), and its `codes` are packed blocks.
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
      .def_property_readonly(
          "ntotal2",
          [](const IndexPQFastScan& self) { return (size_t(self.ntotal) + self.bbs - 1) / self.bbs * self.bbs; })
      .def_property_readonly("codes",
                             [](const IndexPQFastScan& self) {
                               // the packed blocks (ntotal2 / bbs blocks of get_CodePacker().block_size bytes), a copy
                               py::array_t<uint8_t> a(static_cast<py::ssize_t>(self.codes.size()));
                               std::copy(self.codes.data(), self.codes.data() + self.codes.size(), a.mutable_data());
                               return a;
                             })
      .def("get_CodePacker", [](const IndexPQFastScan& self) { return PQ4CodePacker(self.pq.M, self.bbs); })
      .def_property_readonly("M", [](const IndexPQFastScan& self) { return self.pq.M; })
      .def_property_readonly("M2", [](const IndexPQFastScan& self) { return pq4_M2(self.pq.M); })
      .def_property_readonly("code_size", [](const IndexPQFastScan& self) { return self.pq.code_size; })
      .def("_quantized_lut",
           [](const IndexPQFastScan& self, const FloatArray& x) {
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
}

}  // namespace annvil_py
