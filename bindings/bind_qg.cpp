// Bindings of IndexQG (index_qg.h) and SearchParametersQG.
#include "common.h"
#include "hnsw/index_qg.h"

namespace annvil_py {

using namespace annvil;

void init_qg(py::module_& m) {
  py::class_<SearchParametersQG, SearchParametersHNSW, std::shared_ptr<SearchParametersQG>> sp(m, "SearchParametersQG",
                                                                                               py::dynamic_attr());
  sp.def(py::init([](const py::object& efSearch, const py::object& sel) {
           auto p = std::make_shared<SearchParametersQG>();
           if (!efSearch.is_none()) {
             int v = efSearch.cast<int>();
             if (v <= 0) ANNVIL_THROW(value, "efSearch must be positive, got ", v);
             p->efSearch = v;
           }
           p->set_selector(to_selector(sel));
           return p;
         }),
         py::kw_only(), py::arg("efSearch") = py::none(), py::arg("sel") = py::none());

  py::class_<IndexQG, IndexHNSW, std::shared_ptr<IndexQG>>(m, "IndexQG", py::dynamic_attr())
      .def(py::init([](int d, int R, int pq_M, int metric) {
             return std::make_shared<IndexQG>(d, R, pq_M, MetricType(metric));
           }),
           py::arg("d"), py::arg("R") = 32, py::arg("pq_M") = 0, py::arg("metric") = int(METRIC_L2))
      .def_readonly("R", &IndexQG::R, "level-0 out-degree (2 * hnsw.M)")
      .def_readonly("pq_M", &IndexQG::pq_M, "4-bit sub-quantizers of the neighbour codes")
      .def_readonly("dpad", &IndexQG::dpad, "PQ dimension (d zero-padded to a multiple of pq_M)")
      .def_readonly("block_stride", &IndexQG::block_stride, "bytes of one vertex block")
      .def_property_readonly(
          "pq", [](IndexQG& s) -> ProductQuantizer& { return s.pq; }, py::return_value_policy::reference_internal)
      .def("_vertex_block",
           [](const IndexQG& s, int64_t v) {
             return reading(s, [&] {
               if (v < 0 || v >= s.ntotal) ANNVIL_THROW(value, "vertex ", v, " out of range [0, ", s.ntotal, ")");
               return std::vector<uint8_t>(s.block(int32_t(v)), s.block(int32_t(v)) + s.block_stride);
             });
           })
      .def("_codes",
           [](const IndexQG& s) {
             return reading(s, [&] { return std::vector<uint8_t>(s.codes.data(), s.codes.data() + s.codes.size()); });
           })
      .def("_query_lut",
           [](const IndexQG& s, const FloatArray& x) {
             rows_of(x, s.d, "query");
             std::vector<float> lut(s.pq_M * 16);
             QuantizedLUT q;
             s.query_lut(x.data(), lut.data(), q);
             return py::make_tuple(py::array_t<float>(int64_t(lut.size()), lut.data()),
                                   py::array_t<uint8_t>(int64_t(q.q.size()), q.q.data()), q.scale, q.bias);
           })
      .def("_block_sums",
           [](const IndexQG& s, int64_t v, const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& lq,
              bool reference) {
             return reading(s, [&] {
               if (v < 0 || v >= s.ntotal) ANNVIL_THROW(value, "vertex ", v, " out of range [0, ", s.ntotal, ")");
               if (size_t(lq.size()) != pq4_M2(s.pq_M) * 16) ANNVIL_THROW(value, "LUT must have M2 * 16 bytes");
               std::vector<uint16_t> out(s.ngroups() * kPQ4BlockSize, 0);
               if (reference) {
                 s.reference_block_sums(int32_t(v), lq.data(), out.data());
               } else {
                 std::vector<uint32_t> masks(s.ngroups());
                 detail::qg_scan_fn()(s.block(int32_t(v)) + s.ids_bytes(), s.ngroups(), pq4_M2(s.pq_M), lq.data(),
                                      out.data(), 0xffff, masks.data());
               }
               out.resize(size_t(s.R));
               return out;
             });
           });
}

}  // namespace annvil_py
