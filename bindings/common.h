// Shared helpers for the binding files: array conversion at the boundary and
// the init functions of each binding file.  Arrays reaching these functions
// have already been validated and converted by python/annvil (C-contiguous
// float32 / int64); the checks here only make sure a direct call with the
// wrong shape raises instead of reading out of bounds.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>

#include "core/error.h"
#include "core/index.h"

namespace py = pybind11;

namespace annvil_py {

using FloatArray = py::array_t<float, py::array::c_style>;
using IdArray = py::array_t<int64_t, py::array::c_style>;
using ByteArray = py::array_t<uint8_t, py::array::c_style>;

// rows of a (n, d) float32 matrix, checked
inline int64_t rows_of(const FloatArray& x, int64_t d, const char* what) {
  if (x.ndim() != 2) ANNVIL_THROW(value, what, " must be a 2-D array, got ", x.ndim(), " dimensions");
  if (x.shape(1) != d) ANNVIL_THROW(value, what, " has dimension ", x.shape(1), ", expected ", d);
  return x.shape(0);
}

inline int64_t length_of(const IdArray& ids, const char* what) {
  if (ids.ndim() != 1) ANNVIL_THROW(value, what, " must be a 1-D array");
  return ids.shape(0);
}

// Run `f` with the GIL released and the index's lock held: shared (`reading`)
// or exclusive (`writing`).  The GIL goes first, so a thread waiting for the
// lock never blocks the interpreter.
template <class F>
auto reading(const annvil::Index& index, F&& f) {
  py::gil_scoped_release release;
  auto lock = index.lock.read();
  return f();
}
template <class F>
auto writing(const annvil::Index& index, F&& f) {
  py::gil_scoped_release release;
  auto lock = index.lock.write();
  return f();
}

// Any selector-like Python object (IDSelector, boolean mask, id array) to a
// selector; None gives null.  Conversion of non-selectors is done by
// annvil._selectors.as_selector.
inline std::shared_ptr<annvil::IDSelector> to_selector(const py::object& obj) {
  if (obj.is_none()) return nullptr;
  if (py::isinstance<annvil::IDSelector>(obj)) return obj.cast<std::shared_ptr<annvil::IDSelector>>();
  return py::module_::import("annvil._selectors").attr("as_selector")(obj).cast<std::shared_ptr<annvil::IDSelector>>();
}

// Binds the `sel` property common to every SearchParameters class.
template <class Cls>
void def_selector_property(Cls& cls) {
  cls.def_property(
      "sel", [](const annvil::SearchParameters& p) { return std::const_pointer_cast<annvil::IDSelector>(p.sel_owner); },
      [](annvil::SearchParameters& p, const py::object& sel) { p.set_selector(to_selector(sel)); });
}

void init_errors(py::module_& m);
void init_index(py::module_& m);
void init_distances(py::module_& m);
void init_flat_codes(py::module_& m);  // IndexFlatCodes, before its subclasses
void init_flat(py::module_& m);
void init_idmap(py::module_& m);
void init_kmeans(py::module_& m);
void init_io(py::module_& m);
void init_faiss_io(py::module_& m);  // Faiss's file format (bind_faiss_io.cpp)
void init_pq(py::module_& m);
void init_pq_fastscan(py::module_& m);
void init_refine(py::module_& m);
void init_transform(py::module_& m);
void init_linalg(py::module_& m);        // called by init_transform
void init_pretransform(py::module_& m);  // called by init_transform
void init_ivf(py::module_& m);
void init_sq(py::module_& m);  // after init_ivf (IndexIVFScalarQuantizer)
void init_ivfpq(py::module_& m);
void init_hnsw(py::module_& m);
void init_qg(py::module_& m);
void init_binary(py::module_& m);
void init_lsh(py::module_& m);
void init_gpu(py::module_& m);
void init_utils(py::module_& m);
void init_kmeans_links(py::module_& m);
void init_shards(py::module_& m);
void init_ivf_extra(py::module_& m);
void init_distance_computer(py::module_& m);

}  // namespace annvil_py
