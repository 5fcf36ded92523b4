// Bindings of the vector transforms (Faiss's VectorTransform family); then
// IndexPreTransform (bind_pretransform.cpp) and matrix_qr (bind_linalg.cpp).  Vector fields (A, b, mean, PCAMat...) are
// bound as
// `_name` copies with a checked setter; python/annvil/transforms.py turns
// them into Faiss-style fields that faiss.copy_array_to_vector writes back.
#include "common.h"
#include "quant/vector_transform.h"

namespace annvil_py {

using namespace annvil;

namespace {
template <class T>
py::array_t<T> copy_vec(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

template <class T>
std::vector<T> vec_of(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

using FloatVec = py::array_t<float, py::array::c_style | py::array::forcecast>;

void check_size(size_t got, size_t want, const char* what) {
  ANNVIL_CHECK(got == want, what, " must hold ", want, " values, got ", got);
}

py::array_t<float> apply_to(const VectorTransform& self, const FloatArray& x) {
  int64_t n = rows_of(x, self.d_in, "vectors");
  self.check_trained();
  py::array_t<float> out({n, int64_t(self.d_out)});
  float* op = out.mutable_data();
  const float* xp = x.data();
  py::gil_scoped_release release;
  self.apply_noalloc(n, xp, op);
  return out;
}
}  // namespace

void init_transform(py::module_& m) {
  py::class_<VectorTransform, std::shared_ptr<VectorTransform>>(m, "VectorTransform", py::dynamic_attr())
      .def_readonly("d_in", &VectorTransform::d_in)
      .def_readonly("d_out", &VectorTransform::d_out)
      .def_readwrite("is_trained", &VectorTransform::is_trained)
      .def_property_readonly("type_tag", &VectorTransform::type_tag)
      .def("_train",
           [](VectorTransform& self, const FloatArray& x) {
             int64_t n = rows_of(x, self.d_in, "training vectors");
             const float* xp = x.data();
             py::gil_scoped_release release;
             self.train(n, xp);
           })
      .def("_apply", &apply_to)
      .def("_reverse_transform",
           [](const VectorTransform& self, const FloatArray& xt) {
             int64_t n = rows_of(xt, self.d_out, "transformed vectors");
             self.check_trained();
             py::array_t<float> out({n, int64_t(self.d_in)});
             float* op = out.mutable_data();
             const float* xp = xt.data();
             py::gil_scoped_release release;
             self.reverse_transform(n, xp, op);
             return out;
           })
      .def("check_identical", &VectorTransform::check_identical, py::arg("other"),
           "raise unless `other` is the same transform (type, dimensions, parameters)");

  py::class_<LinearTransform, VectorTransform, std::shared_ptr<LinearTransform>>(m, "LinearTransform",
                                                                                 py::dynamic_attr())
      .def(py::init([](int d_in, int d_out, bool have_bias) {
             // a user-filled matrix (A, b): usable as soon as it is set
             auto t = std::make_shared<LinearTransform>(d_in, d_out, have_bias);
             t->is_trained = true;
             return t;
           }),
           py::arg("d_in"), py::arg("d_out"), py::arg("have_bias") = false)
      .def_property(
          "have_bias", [](const LinearTransform& s) { return s.have_bias; },
          [](LinearTransform& s, bool v) {
            if (v && s.b.size() != size_t(s.d_out)) s.b.assign(size_t(s.d_out), 0.f);
            s.have_bias = v;
          })
      .def_readwrite("is_orthonormal", &LinearTransform::is_orthonormal)
      .def_property(
          "verbose", [](const LinearTransform&) { return false; }, [](LinearTransform&, bool) {},
          "accepted for Faiss compatibility; training prints nothing")
      .def_property(
          "_A", [](const LinearTransform& s) { return copy_vec(s.A); },
          [](LinearTransform& s, const FloatVec& a) {
            check_size(size_t(a.size()), size_t(s.d_in) * s.d_out, "A (d_out * d_in)");
            s.A = vec_of(a);
          })
      .def_property(
          "_b", [](const LinearTransform& s) { return copy_vec(s.b); },
          [](LinearTransform& s, const FloatVec& a) {
            ANNVIL_CHECK(a.size() == 0 || a.size() == s.d_out, "b must hold d_out=", s.d_out, " values (or none), got ",
                         a.size());
            s.b = vec_of(a);
            if (a.size() == 0) s.have_bias = false;
          })
      .def("set_is_orthonormal", &LinearTransform::set_is_orthonormal,
           "set is_orthonormal from A (rows orthonormal within 4e-5)")
      .def("_transform_transpose", [](const LinearTransform& self, const FloatArray& y) {
        int64_t n = rows_of(y, self.d_out, "vectors");
        py::array_t<float> out({n, int64_t(self.d_in)});
        float* op = out.mutable_data();
        const float* yp = y.data();
        py::gil_scoped_release release;
        self.transform_transpose(n, yp, op);
        return out;
      });

  py::class_<RandomRotationMatrix, LinearTransform, std::shared_ptr<RandomRotationMatrix>>(m, "RandomRotationMatrix",
                                                                                           py::dynamic_attr())
      .def(py::init<int, int>(), py::arg("d_in"), py::arg("d_out"))
      .def("init", &RandomRotationMatrix::init, py::arg("seed"));

  py::class_<PCAMatrix, LinearTransform, std::shared_ptr<PCAMatrix>>(m, "PCAMatrix", py::dynamic_attr())
      .def(py::init<int, int, float, bool>(), py::arg("d_in"), py::arg("d_out"), py::arg("eigen_power") = 0.f,
           py::arg("random_rotation") = false)
      .def_readwrite("eigen_power", &PCAMatrix::eigen_power)
      .def_readwrite("epsilon", &PCAMatrix::epsilon)
      .def_readwrite("random_rotation", &PCAMatrix::random_rotation)
      .def_readwrite("max_points_per_d", &PCAMatrix::max_points_per_d)
      .def_property(
          "balanced_bins", [](const PCAMatrix& s) { return s.balanced_bins; },
          [](PCAMatrix& s, int v) {
            ANNVIL_CHECK(v >= 0 && (v == 0 || s.d_out % v == 0), "balanced_bins must be 0 or divide d_out=", s.d_out,
                         ", got ", v);
            s.balanced_bins = v;
          })
      .def_property(
          "_mean", [](const PCAMatrix& s) { return copy_vec(s.mean); },
          [](PCAMatrix& s, const FloatVec& a) {
            check_size(size_t(a.size()), size_t(s.d_in), "mean");
            s.mean = vec_of(a);
          })
      .def_property(
          "_eigenvalues", [](const PCAMatrix& s) { return copy_vec(s.eigenvalues); },
          [](PCAMatrix& s, const FloatVec& a) {
            check_size(size_t(a.size()), size_t(s.d_in), "eigenvalues");
            s.eigenvalues = vec_of(a);
          })
      .def_property(
          "_PCAMat", [](const PCAMatrix& s) { return copy_vec(s.PCAMat); },
          [](PCAMatrix& s, const FloatVec& a) {
            ANNVIL_CHECK(a.size() % s.d_in == 0 && a.size() <= int64_t(s.d_in) * s.d_in,
                         "PCAMat must hold k * d_in values (k eigenvectors of d_in, k <= d_in), got ", a.size());
            s.PCAMat = vec_of(a);
          })
      .def("prepare_Ab", &PCAMatrix::prepare_Ab, "recompute A and b from mean, eigenvalues and PCAMat")
      .def("copy_from", &PCAMatrix::copy_from, py::arg("other"));

  py::class_<ITQMatrix, LinearTransform, std::shared_ptr<ITQMatrix>>(m, "ITQMatrix", py::dynamic_attr())
      .def(py::init<int>(), py::arg("d"))
      .def_property(
          "max_iter", [](const ITQMatrix& s) { return s.max_iter; },
          [](ITQMatrix& s, int v) {
            ANNVIL_CHECK(v >= 0, "max_iter must be non-negative, got ", v);
            s.max_iter = v;
          })
      .def_readwrite("seed", &ITQMatrix::seed)
      .def_property(
          "_init_rotation", [](const ITQMatrix& s) { return copy_vec(s.init_rotation); },
          [](ITQMatrix& s, const py::array_t<double, py::array::c_style | py::array::forcecast>& a) {
            ANNVIL_CHECK(a.size() == 0 || a.size() == int64_t(s.d_in) * s.d_in,
                         "init_rotation must hold d*d=", int64_t(s.d_in) * s.d_in, " values (or none), got ", a.size());
            s.init_rotation = vec_of(a);
          });

  py::class_<ITQTransform, VectorTransform, std::shared_ptr<ITQTransform>>(m, "ITQTransform", py::dynamic_attr())
      .def(py::init<int, int, bool>(), py::arg("d_in"), py::arg("d_out"), py::arg("do_pca") = false)
      .def_readonly("do_pca", &ITQTransform::do_pca)
      .def_property(
          "max_train_per_dim", [](const ITQTransform& s) { return s.max_train_per_dim; },
          [](ITQTransform& s, int v) {
            ANNVIL_CHECK(v >= 0, "max_train_per_dim must be non-negative, got ", v);
            s.max_train_per_dim = v;
          })
      .def_property_readonly(
          "itq", [](ITQTransform& s) -> ITQMatrix& { return s.itq; }, py::return_value_policy::reference_internal)
      .def_property_readonly(
          "pca_then_itq", [](ITQTransform& s) -> LinearTransform& { return s.pca_then_itq; },
          py::return_value_policy::reference_internal)
      .def_property(
          "_mean", [](const ITQTransform& s) { return copy_vec(s.mean); },
          [](ITQTransform& s, const FloatVec& a) {
            check_size(size_t(a.size()), size_t(s.d_in), "mean");
            s.mean = vec_of(a);
          });

  py::class_<OPQMatrix, LinearTransform, std::shared_ptr<OPQMatrix>>(m, "OPQMatrix", py::dynamic_attr())
      .def(py::init<int, int, int>(), py::arg("d"), py::arg("M"), py::arg("d2") = -1)
      .def_readonly("M", &OPQMatrix::M)
      .def_readwrite("niter", &OPQMatrix::niter)
      .def_readwrite("niter_pq", &OPQMatrix::niter_pq)
      .def_readwrite("niter_pq_0", &OPQMatrix::niter_pq_0)
      .def_readwrite("max_train_points", &OPQMatrix::max_train_points)
      .def_readwrite("verbose", &OPQMatrix::verbose)
      .def_readwrite("seed", &OPQMatrix::seed)
      .def_property(
          "nbits", [](const OPQMatrix& s) { return s.nbits; },
          [](OPQMatrix& s, int v) {
            ANNVIL_CHECK(v >= 1 && v <= 16, "nbits must be between 1 and 16, got ", v);
            s.nbits = v;
          });

  py::class_<NormalizationTransform, VectorTransform, std::shared_ptr<NormalizationTransform>>(
      m, "NormalizationTransform", py::dynamic_attr())
      .def(py::init<int, float>(), py::arg("d"), py::arg("norm") = 2.f)
      .def_readonly("norm", &NormalizationTransform::norm);

  py::class_<CenteringTransform, VectorTransform, std::shared_ptr<CenteringTransform>>(m, "CenteringTransform",
                                                                                       py::dynamic_attr())
      .def(py::init<int>(), py::arg("d"))
      .def_property(
          "_mean", [](const CenteringTransform& s) { return copy_vec(s.mean); },
          [](CenteringTransform& s, const FloatVec& a) {
            check_size(size_t(a.size()), size_t(s.d_in), "mean");
            s.mean = vec_of(a);
          });

  py::class_<RemapDimensionsTransform, VectorTransform, std::shared_ptr<RemapDimensionsTransform>>(
      m, "RemapDimensionsTransform", py::dynamic_attr())
      .def(py::init<int, int, bool>(), py::arg("d_in"), py::arg("d_out"), py::arg("uniform") = true)
      .def(py::init([](int d_in, int d_out, const py::array_t<int, py::array::c_style | py::array::forcecast>& map) {
             ANNVIL_CHECK(map.size() == d_out, "map must hold d_out=", d_out, " entries, got ", map.size());
             return std::make_shared<RemapDimensionsTransform>(d_in, d_out, map.data());
           }),
           py::arg("d_in"), py::arg("d_out"), py::arg("map"))
      .def_property(
          "_map", [](const RemapDimensionsTransform& s) { return copy_vec(s.map); },
          [](RemapDimensionsTransform& s, const py::array_t<int, py::array::c_style | py::array::forcecast>& a) {
            check_size(size_t(a.size()), size_t(s.d_out), "map");
            for (py::ssize_t i = 0; i < a.size(); ++i)
              ANNVIL_CHECK(a.data()[i] >= -1 && a.data()[i] < s.d_in, "map entries must be -1 or in [0, d_in=", s.d_in,
                           "), got ", a.data()[i]);
            s.map = vec_of(a);
          });

  py::class_<HadamardRotation, VectorTransform, std::shared_ptr<HadamardRotation>>(m, "HadamardRotation",
                                                                                   py::dynamic_attr())
      .def(py::init<int, uint32_t>(), py::arg("d"), py::arg("seed") = 12345)
      .def_readonly("seed", &HadamardRotation::seed)
      .def("init", &HadamardRotation::init, py::arg("seed"))
      .def_property_readonly("_signs1", [](const HadamardRotation& s) { return copy_vec(s.signs1); })
      .def_property_readonly("_signs2", [](const HadamardRotation& s) { return copy_vec(s.signs2); })
      .def_property_readonly("_signs3", [](const HadamardRotation& s) { return copy_vec(s.signs3); });

  init_linalg(m);
  init_pretransform(m);
}

}  // namespace annvil_py
