// Bindings of IndexRefine, IndexRefineFlat and IndexRefineSearchParameters
// (index_refine.h).
#include "common.h"
#include "index_refine.h"

namespace annvil_py {

using namespace annvil;

void init_refine(py::module_& m) {
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
          py::kw_only(), py::arg("k_factor") = 0.f, py::arg("base_index_params") = nullptr, py::arg("sel") = py::none())
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
}

}  // namespace annvil_py
