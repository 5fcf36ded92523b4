// Bindings of IndexIVFPQ and IndexIVFPQFastScan (python/annvil/ivfpq.py adds
// the docstrings and Faiss-style helpers).
#include "common.h"
#include "ivf/index_ivf_pq.h"
#include "ivf/index_ivf_pq_fastscan.h"
#include "ivf/ivf_stats.h"
#include "quant/pq_fastscan.h"

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
            // Faiss allows the switch at any time (stored codes are then read the other way)
            s.by_residual = v;
            s.precompute_table();
          })
      .def_property(
          "use_precomputed_table", [](const T& s) { return s.use_precomputed_table; },
          [](T& s, int v) {
            check_upt(s, v);
            writing(s, [&] {
              s.use_precomputed_table = v;
              if (v != 1) {  // -1 / 0: drop the table
                std::vector<float>().swap(s.precomputed_table);
                drop_terms(s);
                return;
              }
              s.precompute_table();
            });
          },
          "-1: never, 0: off, 1: use the (list, m, j) table of |r|^2 + 2<y_C, r> (L2 + by_residual)")
      .def_property_readonly("precomputed_table",
                             [](const T& s) { return table_array(s.precomputed_table, s.nlist, s.pq.M, s.pq.ksub); })
      .def("precompute_table", [](T& s) { writing(s, [&] { s.precompute_table(); }); });
}

}  // namespace

void init_ivfpq(py::module_& m) {
  py::class_<IndexIVFPQ, IndexIVF, std::shared_ptr<IndexIVFPQ>> ivfpq(m, "IndexIVFPQ", py::dynamic_attr());
  def_pq_common<IndexIVFPQ>(ivfpq);
  ivfpq
      .def(py::init([](IndexPtr q, int d, int64_t nlist, int64_t M, int64_t nbits, int metric) {
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
      .def_readwrite("precomputed_table_max_bytes", &IndexIVFPQ::precomputed_table_max_bytes);

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
      .def_readwrite("implem", &IndexIVFPQFastScan::implem,
                     "Faiss's implem: 0 auto, 1 float LUT (= IndexIVFPQ), 2 scalar uint8 LUT, 10-15 SIMD, 100 + i")
      .def_readwrite("qbs", &IndexIVFPQFastScan::qbs, "Faiss's query-block schedule (accepted, unused)")
      .def("_list_blocks",
           [](const IndexIVFPQFastScan& s, int64_t l) {
             // list l as whole packed blocks: (ceil(ls / 32), M2 / 2, 32) bytes, tail packed and zero-padded
             ANNVIL_CHECK(l >= 0 && size_t(l) < s.nlist, "list number ", l, " out of range [0, ", s.nlist, ")");
             const size_t ls = s.invlists->list_size(size_t(l)), M = s.pq.M, nb = pq4_nblocks(ls);
             py::array_t<uint8_t> a({int64_t(nb), int64_t(pq4_M2(M) / 2), int64_t(32)});
             uint8_t* out = a.mutable_data();
             std::fill(out, out + nb * pq4_block_bytes(M), uint8_t(0));
             std::vector<uint8_t> code(s.code_size);
             PQ4CodePacker packer(M, kPQ4BlockSize);
             for (size_t i = 0; i < ls; ++i) {
               s.get_list_code(size_t(l), i, code.data());
               packer.pack_1(code.data(), i, out);
             }
             return a;
           })
      .def_property_readonly("M", [](const IndexIVFPQFastScan& s) { return s.pq.M; })
      .def_property_readonly("M2", [](const IndexIVFPQFastScan& s) { return pq4_M2(s.pq.M); });

  // Faiss's early-stop knobs on SearchParametersIVF (bound in bind_ivf.cpp)
  auto spi =
      py::reinterpret_borrow<py::class_<SearchParametersIVF, SearchParameters, std::shared_ptr<SearchParametersIVF>>>(
          m.attr("SearchParametersIVF"));
  spi.def_property(
         "max_lists_num", [](const SearchParametersIVF& p) { return p.max_lists_num; },
         [](SearchParametersIVF& p, int64_t v) {
           ANNVIL_CHECK(v >= 0, "max_lists_num must be non-negative, got ", v);
           p.max_lists_num = size_t(v);
         },
         "k-NN: visit at most this many non-empty lists (0: nprobe); IVF fast-scan")
      .def_readwrite("ensure_topk_full", &SearchParametersIVF::ensure_topk_full,
                     "k-NN: raise max_codes / max_lists_num to at least k; IVF fast-scan")
      .def_property(
          "max_empty_result_buckets", [](const SearchParametersIVF& p) { return p.max_empty_result_buckets; },
          [](SearchParametersIVF& p, int64_t v) {
            ANNVIL_CHECK(v >= 0, "max_empty_result_buckets must be non-negative, got ", v);
            p.max_empty_result_buckets = size_t(v);
          },
          "range search: stop after this many probed lists without a hit (0: never); IVF fast-scan");

  auto u64 = [](std::atomic<uint64_t> IndexIVFStats::* f) {
    return [f](const IndexIVFStats& s) { return (s.*f).load(); };
  };
  auto ms = [](std::atomic<uint64_t> IndexIVFStats::* f) {
    return [f](const IndexIVFStats& s) { return double((s.*f).load()) * 1e-6; };  // ms, as Faiss
  };
  py::class_<IndexIVFStats>(m, "IndexIVFStats",
                            "Faiss's IndexIVFStats: counters of every IVF search and range search in this process")
      .def_property_readonly("nq", u64(&IndexIVFStats::nq), "queries searched")
      .def_property_readonly("nlist", u64(&IndexIVFStats::nlist), "probed lists visited")
      .def_property_readonly("ndis", u64(&IndexIVFStats::ndis), "codes whose distance was computed")
      .def_property_readonly(
          "nheap_updates", [](const IndexIVFStats&) { return 0; }, "not counted by annvil: 0")
      .def_property_readonly("quantization_time", ms(&IndexIVFStats::quantization_ns), "ms in the coarse quantizer")
      .def_property_readonly("search_time", ms(&IndexIVFStats::search_ns), "ms in whole searches")
      .def("reset", &IndexIVFStats::reset)
      .def("__repr__", [](const IndexIVFStats& s) {
        return "IndexIVFStats(nq=" + std::to_string(s.nq.load()) + ", nlist=" + std::to_string(s.nlist.load()) +
               ", ndis=" + std::to_string(s.ndis.load()) + ")";
      });
  m.attr("indexIVF_stats") = py::cast(&indexIVF_stats, py::return_value_policy::reference);

  py::class_<PQ4CodePacker>(m, "CodePackerPQ4")
      .def(py::init([](int64_t M, int64_t bbs) {
             ANNVIL_CHECK(M > 0, "M must be positive, got ", M);
             ANNVIL_CHECK(bbs > 0 && bbs % 32 == 0, "bbs must be a positive multiple of 32, got ", bbs);
             return PQ4CodePacker(size_t(M), size_t(bbs));
           }),
           py::arg("M"), py::arg("bbs"))
      .def_readonly("code_size", &PQ4CodePacker::code_size)
      .def_readonly("nvec", &PQ4CodePacker::nvec)
      .def_readonly("block_size", &PQ4CodePacker::block_size)
      .def(
          "unpack_1",
          [](const PQ4CodePacker& p, const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& blocks,
             int64_t i) {
            // blocks: the packed codes (any shape, whole blocks); i: the vector's position in them
            ANNVIL_CHECK(blocks.size() % int64_t(p.block_size) == 0, "blocks must hold whole blocks of ", p.block_size,
                         " bytes, got ", blocks.size());
            ANNVIL_CHECK(i >= 0 && i < int64_t(blocks.size() / p.block_size * p.nvec), "position ", i,
                         " out of range of the blocks");
            py::array_t<uint8_t> code(static_cast<py::ssize_t>(p.code_size));
            p.unpack_1(blocks.data(), size_t(i), code.mutable_data());
            return code;
          },
          py::arg("block"), py::arg("offset"))
      .def(
          "pack_1",
          [](const PQ4CodePacker& p, const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& code,
             int64_t i, py::array_t<uint8_t, py::array::c_style> blocks) {
            ANNVIL_CHECK(code.size() == int64_t(p.code_size), "code must hold ", p.code_size, " bytes");
            ANNVIL_CHECK(blocks.size() % int64_t(p.block_size) == 0, "blocks must hold whole blocks of ", p.block_size,
                         " bytes");
            ANNVIL_CHECK(i >= 0 && i < int64_t(blocks.size() / p.block_size * p.nvec), "position ", i,
                         " out of range of the blocks");
            p.pack_1(code.data(), size_t(i), blocks.mutable_data());
          },
          py::arg("code"), py::arg("offset"), py::arg("block"));

  m.def(
      "_quantize_LUT_and_bias",
      [](int64_t nprobe, int64_t M, int64_t ksub, bool lut_is_3d, const py::array_t<float, py::array::c_style>& LUT,
         const py::object& bias, const py::object& LUTq_obj, int64_t M2, const py::object& biasq,
         const py::object& a_out, const py::object& b_out) {
        // outputs are written in place: they must be arrays of the exact dtype, C-contiguous (no copy)
        auto out_array = [](const py::object& o, auto tag, const char* what) {
          using A = decltype(tag);
          ANNVIL_CHECK(py::isinstance<A>(o), what, " must be a C-contiguous numpy array of the right dtype");
          return py::reinterpret_borrow<A>(o);
        };
        auto LUTq = out_array(LUTq_obj, py::array_t<uint8_t, py::array::c_style>(), "LUTq (uint8)");
        ANNVIL_CHECK(nprobe > 0 && M > 0 && ksub > 0 && M2 >= M, "bad sizes: nprobe=", nprobe, " M=", M, " ksub=", ksub,
                     " M2=", M2);
        const int64_t nl = lut_is_3d ? nprobe : 1;
        ANNVIL_CHECK(LUT.size() >= nl * M * ksub, "LUT must hold ", nl * M * ksub, " floats");
        ANNVIL_CHECK(LUTq.size() >= nl * M2 * ksub, "LUTq must hold ", nl * M2 * ksub, " bytes");
        const float* bp = nullptr;
        uint16_t* bqp = nullptr;
        py::array_t<float, py::array::c_style> b;
        py::array_t<uint16_t, py::array::c_style> bq;
        if (!bias.is_none()) {
          b = bias.cast<py::array_t<float, py::array::c_style>>();
          ANNVIL_CHECK(b.size() >= nprobe, "bias must hold nprobe floats");
          bp = b.data();
        }
        if (!biasq.is_none()) {
          bq = out_array(biasq, py::array_t<uint16_t, py::array::c_style>(), "biasq (uint16)");
          ANNVIL_CHECK(bq.size() >= nprobe, "biasq must hold nprobe uint16");
          bqp = bq.mutable_data();
        }
        float a = 0, bb = 0;
        quantize_LUT_and_bias(size_t(nprobe), size_t(M), size_t(ksub), lut_is_3d, LUT.data(), bp, LUTq.mutable_data(),
                              size_t(M2), bqp, &a, &bb);
        if (!a_out.is_none())
          out_array(a_out, py::array_t<float, py::array::c_style>(), "a_out (float32)").mutable_data()[0] = a;
        if (!b_out.is_none())
          out_array(b_out, py::array_t<float, py::array::c_style>(), "b_out (float32)").mutable_data()[0] = bb;
      },
      "Faiss's quantize_LUT_and_bias on numpy arrays (outputs written in place)");
}

}  // namespace annvil_py
