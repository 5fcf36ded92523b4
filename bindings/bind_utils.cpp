// Faiss's utility functions (cpp/utils.h): random data, heaps for kmin/kmax
// and ResultHeap, merge of shard results, MatrixStats and small helpers.
// python/annvil/utils.py wraps them with Faiss's Python signatures.
#include <cstring>

#include "common.h"
#include "ivf/index_ivf.h"
#include "core/utils.h"

namespace annvil_py {

using namespace annvil;

namespace {

using Int32Array = py::array_t<int32_t, py::array::c_style>;

// A (rows, k) writable C-contiguous array, checked against (rows, k).
template <class A>
void check_matrix(const A& a, int64_t rows, int64_t k, const char* what) {
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != k)
    ANNVIL_THROW(value, what, " must have shape (", rows, ", ", k, ")");
}

template <class T>
void bind_heap_functions(py::module_& m) {
  using TArray = py::array_t<T, py::array::c_style>;
  m.def(
      "_heap_heapify",
      [](TArray& val, IdArray& ids, bool keep_max) {
        if (val.ndim() != 2) ANNVIL_THROW(value, "heap values must be a 2-D array");
        check_matrix(ids, val.shape(0), val.shape(1), "heap ids");
        heap_heapify<T>(size_t(val.shape(0)), size_t(val.shape(1)), val.mutable_data(), ids.mutable_data(), keep_max);
      },
      py::arg("val").noconvert(), py::arg("ids").noconvert(), py::arg("keep_max"));
  m.def(
      "_heap_addn",
      [](TArray& val, IdArray& ids, bool keep_max, const TArray& x, const py::object& xids_obj,
         const py::object& subset_obj, int64_t id0) {
        if (val.ndim() != 2 || x.ndim() != 2) ANNVIL_THROW(value, "heap values and new values must be 2-D arrays");
        check_matrix(ids, val.shape(0), val.shape(1), "heap ids");
        const size_t nh = size_t(val.shape(0)), k = size_t(val.shape(1));
        const size_t nrows = size_t(x.shape(0)), n = size_t(x.shape(1));
        IdArray xids, subset;
        size_t id_stride = 0;
        if (!xids_obj.is_none()) {
          xids = xids_obj.cast<IdArray>();
          if (xids.ndim() == 1) {  // the same ids for every row
            if (size_t(xids.shape(0)) != n) ANNVIL_THROW(value, "ids must have ", n, " entries");
          } else {
            check_matrix(xids, int64_t(nrows), int64_t(n), "ids");
            id_stride = n;
          }
        }
        if (!subset_obj.is_none()) {
          subset = subset_obj.cast<IdArray>();
          if (length_of(subset, "subset") != int64_t(nrows))
            ANNVIL_THROW(value, "subset must have one entry per row of D (", nrows, ")");
        } else if (nrows != nh) {
          ANNVIL_THROW(value, "got results for ", nrows, " queries, the heaps hold ", nh);
        }
        T* vp = val.mutable_data();
        int64_t* ip = ids.mutable_data();
        const T* xp = x.data();
        const int64_t* xip = xids_obj.is_none() ? nullptr : xids.data();
        const int64_t* sp = subset_obj.is_none() ? nullptr : subset.data();
        py::gil_scoped_release release;
        heap_addn<T>(nh, k, vp, ip, keep_max, nrows, sp, n, xp, n, xip, id_stride, id0);
      },
      py::arg("val").noconvert(), py::arg("ids").noconvert(), py::arg("keep_max"), py::arg("x"),
      py::arg("xids") = py::none(), py::arg("subset") = py::none(), py::arg("id0") = 0);
  m.def(
      "_heap_reorder",
      [](TArray& val, IdArray& ids, bool keep_max) {
        if (val.ndim() != 2) ANNVIL_THROW(value, "heap values must be a 2-D array");
        check_matrix(ids, val.shape(0), val.shape(1), "heap ids");
        T* vp = val.mutable_data();
        int64_t* ip = ids.mutable_data();
        py::gil_scoped_release release;
        heap_reorder<T>(size_t(val.shape(0)), size_t(val.shape(1)), vp, ip, keep_max);
      },
      py::arg("val").noconvert(), py::arg("ids").noconvert(), py::arg("keep_max"));
  m.def(
      "_merge_knn_results",
      [](const TArray& Dall, const IdArray& Iall, bool keep_max) {
        if (Dall.ndim() != 3 || Iall.ndim() != 3 || Dall.shape(0) != Iall.shape(0) || Dall.shape(1) != Iall.shape(1) ||
            Dall.shape(2) != Iall.shape(2))
          ANNVIL_THROW(value, "Dall and Iall must both have shape (nshard, nq, k)");
        int64_t nshard = Dall.shape(0), n = Dall.shape(1), k = Dall.shape(2);
        py::array_t<T> D({n, k});
        py::array_t<int64_t> I({n, k});
        T* dp = D.mutable_data();
        int64_t* ip = I.mutable_data();
        const T* dap = Dall.data();
        const int64_t* iap = Iall.data();
        {
          py::gil_scoped_release release;
          merge_knn_results<T>(size_t(n), size_t(k), size_t(nshard), dap, iap, dp, ip, keep_max);
        }
        return py::make_tuple(D, I);
      },
      py::arg("Dall").noconvert(), py::arg("Iall"), py::arg("keep_max"));
}

}  // namespace

void init_utils(py::module_& m) {
  // ---- random data (Faiss's generator, the same values for the same seed) ----
  m.def(
      "_float_rand",
      [](int64_t n, int64_t seed) {
        ANNVIL_CHECK(n >= 0, "n must be non-negative");
        py::array_t<float> out(n);
        float* p = out.mutable_data();
        py::gil_scoped_release release;
        float_rand(p, size_t(n), seed);
        return out;
      },
      py::arg("n"), py::arg("seed"));
  m.def(
      "_float_randn",
      [](int64_t n, int64_t seed) {
        ANNVIL_CHECK(n >= 0, "n must be non-negative");
        py::array_t<float> out(n);
        float* p = out.mutable_data();
        py::gil_scoped_release release;
        float_randn(p, size_t(n), seed);
        return out;
      },
      py::arg("n"), py::arg("seed"));
  m.def(
      "_int64_rand",
      [](int64_t n, int64_t seed) {
        ANNVIL_CHECK(n >= 0, "n must be non-negative");
        py::array_t<int64_t> out(n);
        int64_t* p = out.mutable_data();
        py::gil_scoped_release release;
        int64_rand(p, size_t(n), seed);
        return out;
      },
      py::arg("n"), py::arg("seed"));
  m.def(
      "_int64_rand_max",
      [](int64_t n, uint64_t vmax, int64_t seed) {
        ANNVIL_CHECK(n >= 0, "n must be non-negative");
        ANNVIL_CHECK(vmax > 0, "vmax must be positive");
        py::array_t<int64_t> out(n);
        int64_t* p = out.mutable_data();
        py::gil_scoped_release release;
        int64_rand_max(p, size_t(n), vmax, seed);
        return out;
      },
      py::arg("n"), py::arg("vmax"), py::arg("seed"));
  m.def(
      "_byte_rand",
      [](int64_t n, int64_t seed) {
        ANNVIL_CHECK(n >= 0, "n must be non-negative");
        py::array_t<uint8_t> out(n);
        uint8_t* p = out.mutable_data();
        py::gil_scoped_release release;
        byte_rand(p, size_t(n), seed);
        return out;
      },
      py::arg("n"), py::arg("seed"));
  m.def(
      "_rand_perm",
      [](int64_t n, int64_t seed) {
        ANNVIL_CHECK(n >= 0 && n < (int64_t(1) << 31), "n must be in [0, 2^31)");
        py::array_t<int> out(n);
        rand_perm(out.mutable_data(), size_t(n), seed);
        return out;
      },
      py::arg("n"), py::arg("seed"));
  m.def(
      "_rand_smooth_vectors",
      [](int64_t n, int64_t d, int64_t seed) {
        ANNVIL_CHECK(n >= 0 && d > 0, "need n >= 0 and d > 0");
        py::array_t<float> out({n, d});
        float* p = out.mutable_data();
        py::gil_scoped_release release;
        rand_smooth_vectors(size_t(n), size_t(d), p, seed);
        return out;
      },
      py::arg("n"), py::arg("d"), py::arg("seed"));

  // ---- heaps and merges ----
  bind_heap_functions<float>(m);
  bind_heap_functions<int32_t>(m);

  // ---- small helpers ----
  m.def("_ranklist_intersection_size", [](const IdArray& a, const IdArray& b) {
    return ranklist_intersection_size(size_t(length_of(a, "v1")), a.data(), size_t(length_of(b, "v2")), b.data());
  });
  m.def("_imbalance_factor", [](const IdArray& assign, int64_t k) {
    ANNVIL_CHECK(k > 0, "k must be positive");
    return imbalance_factor(size_t(assign.size()), size_t(k), assign.data());
  });
  m.def(
      "_fvec_madd",
      [](const FloatArray& a, float bf, const FloatArray& b, FloatArray& c, bool argmin) {
        size_t n = size_t(a.size());
        if (size_t(b.size()) < n || size_t(c.size()) < n) ANNVIL_THROW(value, "fvec_madd: arrays are too short");
        float* cp = c.mutable_data();
        if (argmin) return fvec_madd_and_argmin(n, a.data(), bf, b.data(), cp);
        fvec_madd(n, a.data(), bf, b.data(), cp);
        return 0;
      },
      py::arg("a"), py::arg("bf"), py::arg("b"), py::arg("c").noconvert(), py::arg("argmin"));
  m.def(
      "_pairwise_indexed",
      [](const FloatArray& x, const IdArray& ix, const FloatArray& y, const IdArray& iy, int metric, FloatArray& dis) {
        if (x.ndim() != 2 || y.ndim() != 2 || x.shape(1) != y.shape(1))
          ANNVIL_THROW(value, "x and y must be 2-D arrays of the same dimension");
        int64_t n = length_of(ix, "ix");
        if (length_of(iy, "iy") != n || dis.size() < n) ANNVIL_THROW(value, "ix, iy and dis must have the same length");
        for (int64_t i = 0; i < n; ++i)
          if (ix.data()[i] >= x.shape(0) || iy.data()[i] >= y.shape(0))
            ANNVIL_THROW(value, "index ", i, " out of range");
        float* dp = dis.mutable_data();
        const float *xp = x.data(), *yp = y.data();
        const int64_t *ixp = ix.data(), *iyp = iy.data();
        size_t d = size_t(x.shape(1));
        py::gil_scoped_release release;
        pairwise_indexed_distances(d, size_t(n), xp, ixp, yp, iyp, MetricType(metric), dp);
      },
      py::arg("x"), py::arg("ix"), py::arg("y"), py::arg("iy"), py::arg("metric"), py::arg("dis").noconvert());

  py::class_<MatrixStats>(m, "MatrixStats", "Statistics of a matrix, with a report of common data problems.")
      .def(py::init([](const FloatArray& x) {
             if (x.ndim() != 2) ANNVIL_THROW(value, "MatrixStats needs a 2-D array");
             const float* p = x.data();
             size_t n = size_t(x.shape(0)), d = size_t(x.shape(1));
             py::gil_scoped_release release;
             return new MatrixStats(n, d, p);
           }),
           py::arg("m"))
      .def_readonly("n", &MatrixStats::n)
      .def_readonly("d", &MatrixStats::d)
      .def_readonly("n_collision", &MatrixStats::n_collision)
      .def_readonly("n_valid", &MatrixStats::n_valid)
      .def_readonly("n0", &MatrixStats::n0)
      .def_readonly("min_norm2", &MatrixStats::min_norm2)
      .def_readonly("max_norm2", &MatrixStats::max_norm2)
      .def_readonly("hash_value", &MatrixStats::hash_value)
      .def_readonly("comments", &MatrixStats::comments);
}

}  // namespace annvil_py
