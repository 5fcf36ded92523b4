// Bindings of the scalar quantizer family: ScalarQuantizer (quant/sq.h),
// IndexScalarQuantizer (index_sq.h) and IndexIVFScalarQuantizer
// (ivf/index_ivf_sq.h).
#include <string>
#include <utility>

#include "common.h"
#include "index_sq.h"
#include "ivf/index_ivf_sq.h"
#include "quant/sq.h"

namespace annvil_py {

using namespace annvil;

namespace {

py::array_t<float> float_vec(const std::vector<float>& v) {
  py::array_t<float> a(int64_t(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

}  // namespace

void init_sq(py::module_& m) {
  py::class_<ScalarQuantizer> sqc(m, "ScalarQuantizer", py::dynamic_attr());
  sqc.def(py::init([](int64_t d, int qtype) {
            ANNVIL_CHECK(d > 0, "dimension d must be positive, got ", d);
            return new ScalarQuantizer(size_t(d), qtype);
          }),
          py::arg("d"), py::arg("qtype") = int(ScalarQuantizer::QT_8bit))
      .def_readonly("d", &ScalarQuantizer::d)
      .def_readonly("qtype", &ScalarQuantizer::qtype)
      .def_readonly("code_size", &ScalarQuantizer::code_size)
      .def_property_readonly("is_trained", &ScalarQuantizer::is_trained)
      .def_property(
          "trained", [](const ScalarQuantizer& s) { return float_vec(s.trained); },
          [](ScalarQuantizer& s, const FloatArray& v) {
            ANNVIL_CHECK(v.ndim() == 1 && size_t(v.shape(0)) == s.trained_size(), "trained must hold ",
                         s.trained_size(), " floats for this quantizer type");
            s.trained.assign(v.data(), v.data() + v.shape(0));
          })
      .def("_train",
           [](ScalarQuantizer& s, const FloatArray& x) {
             int64_t n = rows_of(x, int64_t(s.d), "training vectors");
             const float* xp = x.data();
             py::gil_scoped_release release;
             s.train(size_t(n), xp);
           })
      .def("_compute_codes",
           [](const ScalarQuantizer& s, const FloatArray& x) {
             int64_t n = rows_of(x, int64_t(s.d), "vectors");
             py::array_t<uint8_t> out({n, int64_t(s.code_size)});
             uint8_t* op = out.mutable_data();
             const float* xp = x.data();
             {
               py::gil_scoped_release release;
               s.compute_codes(xp, op, size_t(n));
             }
             return out;
           })
      .def("_decode", [](const ScalarQuantizer& s, const ByteArray& c) {
        if (c.ndim() != 2 || size_t(c.shape(1)) != s.code_size)
          ANNVIL_THROW(value, "codes must be a (n, ", s.code_size, ") uint8 array");
        int64_t n = c.shape(0);
        py::array_t<float> out({n, int64_t(s.d)});
        float* op = out.mutable_data();
        const uint8_t* cp = c.data();
        {
          py::gil_scoped_release release;
          s.decode(cp, op, size_t(n));
        }
        return out;
      });
  for (auto [name, v] : {std::pair<const char*, int>{"QT_8bit", ScalarQuantizer::QT_8bit},
                         {"QT_4bit", ScalarQuantizer::QT_4bit},
                         {"QT_8bit_uniform", ScalarQuantizer::QT_8bit_uniform},
                         {"QT_4bit_uniform", ScalarQuantizer::QT_4bit_uniform},
                         {"QT_fp16", ScalarQuantizer::QT_fp16},
                         {"QT_8bit_direct", ScalarQuantizer::QT_8bit_direct},
                         {"QT_6bit", ScalarQuantizer::QT_6bit},
                         {"QT_bf16", ScalarQuantizer::QT_bf16},
                         {"QT_8bit_direct_signed", ScalarQuantizer::QT_8bit_direct_signed}}) {
    sqc.attr(name) = v;
    m.attr((std::string("ScalarQuantizer_") + name).c_str()) = v;
  }

  // code_size and codes come from IndexFlatCodes (bind_flat_codes.cpp)
  py::class_<IndexScalarQuantizer, IndexFlatCodes, std::shared_ptr<IndexScalarQuantizer>>(m, "IndexScalarQuantizer",
                                                                                          py::dynamic_attr())
      .def(py::init([](int d, int qtype, int metric) {
             return std::make_shared<IndexScalarQuantizer>(d, qtype, MetricType(metric));
           }),
           py::arg("d"), py::arg("qtype") = int(ScalarQuantizer::QT_8bit), py::arg("metric") = int(METRIC_L2))
      .def_property_readonly(
          "sq", [](IndexScalarQuantizer& s) -> ScalarQuantizer& { return s.sq; },
          py::return_value_policy::reference_internal);

  py::class_<IndexIVFScalarQuantizer, IndexIVF, std::shared_ptr<IndexIVFScalarQuantizer>>(m, "IndexIVFScalarQuantizer",
                                                                                          py::dynamic_attr())
      .def(py::init([](IndexPtr q, int d, int64_t nlist, int qtype, int metric, bool by_residual) {
             ANNVIL_CHECK(nlist > 0, "nlist must be positive, got ", nlist);
             return std::make_shared<IndexIVFScalarQuantizer>(std::move(q), d, size_t(nlist), qtype, MetricType(metric),
                                                              by_residual);
           }),
           py::arg("quantizer"), py::arg("d"), py::arg("nlist"), py::arg("qtype") = int(ScalarQuantizer::QT_8bit),
           py::arg("metric") = int(METRIC_L2), py::arg("by_residual") = true, py::keep_alive<1, 2>())
      .def_property_readonly(
          "sq", [](IndexIVFScalarQuantizer& s) -> ScalarQuantizer& { return s.sq; },
          py::return_value_policy::reference_internal)
      .def_property(
          "by_residual", [](const IndexIVFScalarQuantizer& s) { return s.by_residual; },
          [](IndexIVFScalarQuantizer& s, bool v) {
            ANNVIL_CHECK(s.ntotal == 0 || v == s.by_residual, "by_residual can only change while the index is empty");
            s.by_residual = v;
          });
}

}  // namespace annvil_py
