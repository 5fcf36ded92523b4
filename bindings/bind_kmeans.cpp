#include "common.h"
#include "kmeans.h"

namespace annvil_py {

using namespace annvil;

void init_kmeans(py::module_& m) {
  py::class_<Clustering>(m, "_Clustering")
      .def(py::init([](int d, int k, int niter, int nredo, bool verbose, bool spherical, bool int_centroids,
                       bool frozen_centroids, int min_ppc, int max_ppc, int seed, int metric) {
             ClusteringParameters cp;
             cp.niter = niter;
             cp.nredo = nredo;
             cp.verbose = verbose;
             cp.spherical = spherical;
             cp.int_centroids = int_centroids;
             cp.frozen_centroids = frozen_centroids;
             cp.min_points_per_centroid = min_ppc;
             cp.max_points_per_centroid = max_ppc;
             cp.seed = seed;
             cp.metric = MetricType(metric);
             return new Clustering(d, k, cp);
           }),
           py::arg("d"), py::arg("k"), py::arg("niter"), py::arg("nredo"), py::arg("verbose"), py::arg("spherical"),
           py::arg("int_centroids"), py::arg("frozen_centroids"), py::arg("min_points_per_centroid"),
           py::arg("max_points_per_centroid"), py::arg("seed"), py::arg("metric"))
      .def("set_centroids", [](Clustering& self, const FloatArray& c) {
        int64_t n = rows_of(c, self.d, "centroids");
        ANNVIL_CHECK(n == self.k, "expected ", self.k, " initial centroids, got ", n);
        self.centroids.assign(c.data(), c.data() + n * self.d);
      })
      .def("train", [](Clustering& self, const FloatArray& x) {
        int64_t n = rows_of(x, self.d, "training vectors");
        const float* xp = x.data();
        py::gil_scoped_release release;
        self.train(n, xp);
      })
      .def_property_readonly("centroids", [](const Clustering& self) {
        py::array_t<float> a({int64_t(self.k), int64_t(self.d)});
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
}

}  // namespace annvil_py
