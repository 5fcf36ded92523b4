// k-means: ClusteringParameters (Faiss's fields), the C++ Clustering behind
// annvil.Clustering / annvil.Kmeans, ClusteringInitialization, and the `cp`
// attribute of IndexIVF and ProductQuantizer (their k-means settings).
#include "common.h"
#include "ivf/index_ivf.h"
#include "quant/kmeans.h"
#include "quant/pq.h"

namespace annvil_py {

using namespace annvil;

namespace {

template <class Cls>
void def_cp_fields(Cls& c) {
  using CP = ClusteringParameters;
  c.def_readwrite("niter", &CP::niter)
      .def_readwrite("nredo", &CP::nredo)
      .def_readwrite("verbose", &CP::verbose)
      .def_readwrite("spherical", &CP::spherical)
      .def_readwrite("int_centroids", &CP::int_centroids)
      .def_readwrite("update_index", &CP::update_index)
      .def_readwrite("frozen_centroids", &CP::frozen_centroids)
      .def_readwrite("min_points_per_centroid", &CP::min_points_per_centroid)
      .def_readwrite("max_points_per_centroid", &CP::max_points_per_centroid)
      .def_readwrite("seed", &CP::seed)
      .def_property(
          "init_method", [](const CP& p) { return int(p.init_method); },
          [](CP& p, int v) {
            ANNVIL_CHECK(v >= 0 && v <= 2,
                         "init_method must be ClusteringInitMethod_RANDOM (0), "
                         "_KMEANS_PLUS_PLUS (1) or _AFK_MC2 (2), got ",
                         v);
            p.init_method = ClusteringInitMethod(v);
          })
      .def_readwrite("afkmc2_chain_length", &CP::afkmc2_chain_length)
      .def_readwrite("early_stop_threshold", &CP::early_stop_threshold)
      .def_readwrite("decode_block_size", &CP::decode_block_size)
      .def_readwrite("check_input_data_for_NaNs", &CP::check_input_data_for_NaNs)
      .def_readwrite("use_faster_subsampling", &CP::use_faster_subsampling)
      .def_readwrite("use_super_kmeans", &CP::use_super_kmeans);
}

}  // namespace

void init_kmeans(py::module_& m) {
  m.attr("ClusteringInitMethod_RANDOM") = int(INIT_RANDOM);
  m.attr("ClusteringInitMethod_KMEANS_PLUS_PLUS") = int(INIT_KMEANS_PLUS_PLUS);
  m.attr("ClusteringInitMethod_AFK_MC2") = int(INIT_AFK_MC2);

  py::class_<ClusteringParameters> cp(m, "ClusteringParameters", "k-means settings (Faiss's fields and defaults).");
  cp.def(py::init<>());
  def_cp_fields(cp);

  py::class_<Clustering, ClusteringParameters> clus(m, "_Clustering");
  clus.def(py::init([](int d, int k, const ClusteringParameters& p) { return new Clustering(d, k, p); }), py::arg("d"),
           py::arg("k"), py::arg("cp"))
      .def_readonly("d", &Clustering::d)
      .def_readonly("k", &Clustering::k)
      .def_property(
          "metric", [](const Clustering& s) { return int(s.metric); },
          [](Clustering& s, int v) { s.metric = MetricType(v); })
      .def("set_centroids",
           [](Clustering& self, const FloatArray& c) {
             int64_t n = rows_of(c, self.d, "centroids");
             ANNVIL_CHECK(n == self.k, "expected ", self.k, " initial centroids, got ", n);
             self.centroids.assign(c.data(), c.data() + n * self.d);
           })
      .def("clear_centroids", [](Clustering& self) { self.centroids.clear(); })
      .def(
          "train",
          [](Clustering& self, const FloatArray& x, const py::object& w) {
            int64_t n = rows_of(x, self.d, "training vectors");
            py::array_t<float, py::array::c_style | py::array::forcecast> wa;
            const float* wp = nullptr;
            if (!w.is_none()) {
              wa = w.cast<py::array_t<float, py::array::c_style | py::array::forcecast>>();
              ANNVIL_CHECK(wa.ndim() == 1 && wa.shape(0) == n, "weights must have one entry per training vector (", n,
                           ")");
              wp = wa.data();
            }
            const float* xp = x.data();
            py::gil_scoped_release release;
            self.train(n, xp, wp);
          },
          py::arg("x"), py::arg("weights") = py::none())
      .def_property_readonly("centroids",
                             [](const Clustering& self) {
                               int64_t k = int64_t(self.centroids.size() / size_t(self.d));
                               py::array_t<float> a({k, int64_t(self.d)});
                               std::copy(self.centroids.begin(), self.centroids.end(), a.mutable_data());
                               return a;
                             })
      .def_property_readonly("iteration_stats", [](const Clustering& self) {
        py::list out;
        for (auto& s : self.iteration_stats) {
          py::dict d;
          d["obj"] = s.obj;
          d["time"] = s.time;
          d["nsplit"] = s.nsplit;
          out.append(d);
        }
        return out;
      });

  m.def("_kmeans1d_exact", [](const FloatArray& x, int64_t k) {
    ANNVIL_CHECK(k >= 1, "k must be at least 1");
    size_t n = size_t(x.size());
    py::array_t<float> c(k);
    float* cp = c.mutable_data();
    const float* xp = x.data();
    double obj;
    {
      py::gil_scoped_release release;
      obj = kmeans1d_exact(n, xp, size_t(k), cp);
    }
    return py::make_tuple(c, obj);
  });
  m.def("_smawk", [](const FloatArray& a) {
    if (a.ndim() != 2) ANNVIL_THROW(value, "smawk needs a 2-D matrix");
    py::array_t<int64_t> out(a.shape(0));
    smawk(size_t(a.shape(0)), size_t(a.shape(1)), a.data(), out.mutable_data());
    return out;
  });

  py::class_<ClusteringInitialization>(m, "_ClusteringInitialization")
      .def(py::init<int, int>(), py::arg("d"), py::arg("k"))
      .def_readonly("d", &ClusteringInitialization::d)
      .def_readonly("k", &ClusteringInitialization::k)
      .def_property(
          "method", [](const ClusteringInitialization& s) { return int(s.method); },
          [](ClusteringInitialization& s, int v) {
            ANNVIL_CHECK(v >= 0 && v <= 2, "method must be a ClusteringInitMethod_* value, got ", v);
            s.method = ClusteringInitMethod(v);
          })
      .def_readwrite("seed", &ClusteringInitialization::seed)
      .def_readwrite("afkmc2_chain_length", &ClusteringInitialization::afkmc2_chain_length)
      .def("_init_centroids",
           [](const ClusteringInitialization& self, const FloatArray& x, const FloatArray& existing) {
             int64_t n = rows_of(x, self.d, "training vectors");
             int64_t ne = existing.ndim() == 2 ? rows_of(existing, self.d, "existing centroids") : 0;
             py::array_t<float> out({int64_t(self.k), int64_t(self.d)});
             float* op = out.mutable_data();
             const float *xp = x.data(), *ep = ne ? existing.data() : nullptr;
             {
               py::gil_scoped_release release;
               self.init_centroids(n, xp, op, ne, ep);
             }
             return out;
           });
}

// `cp` of IndexIVF (coarse k-means) and ProductQuantizer (sub-space k-means),
// bound once those classes exist: a live view of the settings inside them.
void init_kmeans_links(py::module_& m) {
  auto ivf = py::reinterpret_borrow<py::class_<IndexIVF, Index, std::shared_ptr<IndexIVF>>>(m.attr("IndexIVF"));
  ivf.def_property(
      "cp", [](IndexIVF& s) -> ClusteringParameters& { return s.cp; },
      [](IndexIVF& s, const ClusteringParameters& v) { s.cp = v; }, py::return_value_policy::reference_internal);
  auto pq = py::reinterpret_borrow<py::class_<ProductQuantizer, std::shared_ptr<ProductQuantizer>>>(
      m.attr("ProductQuantizer"));
  pq.def_property(
      "cp", [](ProductQuantizer& s) -> ClusteringParameters& { return s.cp; },
      [](ProductQuantizer& s, const ClusteringParameters& v) { s.cp = v; },
      py::return_value_policy::reference_internal);
}

}  // namespace annvil_py
