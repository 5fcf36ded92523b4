"""annvil: inverted-file indexes and scalar quantization (Faiss's IndexIVF,
IndexIVFFlat, ScalarQuantizer, IndexScalarQuantizer, IndexIVFScalarQuantizer).

    quantizer = annvil.IndexFlatL2(d)
    index = annvil.IndexIVFFlat(quantizer, d, nlist)
    index.train(xt); index.add(xb)
    index.nprobe = 16
    D, I = index.search(xq, k)
    D, I = index.search(xq, k, params=annvil.SearchParametersIVF(nprobe=32))
"""
from __future__ import annotations

from . import _core
import numpy as _np

from ._checks import as_matrix as _as_matrix
from ._core import (  # noqa: F401
    IndexIVF,
    IndexIVFFlat,
    IndexIVFScalarQuantizer,
    IndexScalarQuantizer,
    InvertedLists,
    ScalarQuantizer,
    ScalarQuantizer_QT_4bit,
    ScalarQuantizer_QT_4bit_uniform,
    ScalarQuantizer_QT_8bit,
    ScalarQuantizer_QT_8bit_uniform,
    ScalarQuantizer_QT_fp16,
    SearchParametersIVF,
)

__all__ = ["IndexIVF", "IndexIVFFlat", "InvertedLists", "SearchParametersIVF", "IVFSearchParameters", "DirectMap",
           "extract_index_ivf", "try_extract_index_ivf",
           "ScalarQuantizer", "IndexScalarQuantizer", "IndexIVFScalarQuantizer",
           "ScalarQuantizer_QT_8bit", "ScalarQuantizer_QT_4bit", "ScalarQuantizer_QT_8bit_uniform",
           "ScalarQuantizer_QT_4bit_uniform", "ScalarQuantizer_QT_fp16"]


class DirectMap:
    """Direct map types for IndexIVF.set_direct_map_type (Faiss's values)."""
    NoMap = 0
    Array = 1
    Hashtable = 2


def try_extract_index_ivf(index):
    """The IndexIVF inside index: itself, or the one wrapped by IndexIDMap /
    IndexIDMap2 / IndexPreTransform (`index`) or IndexRefine (`base_index`),
    through any number of wrappers; None when there is none."""
    seen = 0
    while index is not None and not isinstance(index, IndexIVF) and seen < 64:
        inner = getattr(index, "index", None)
        if inner is None:
            inner = getattr(index, "base_index", None)
        index, seen = inner, seen + 1
    return index if isinstance(index, IndexIVF) else None


def extract_index_ivf(index):
    """As try_extract_index_ivf, raising InvalidArgumentError when there is no IndexIVF."""
    ivf = try_extract_index_ivf(index)
    if ivf is None:
        raise _core.InvalidArgumentError(f"{type(index).__name__} is not (and does not wrap) an IndexIVF")
    return ivf


# IndexIVF-only Python helpers (attached to the compiled class)
PARALLEL_MODE_NO_HEAP_INIT = 1024


def _search_preassigned(self, x, k, assign, centroid_dis=None, params=None, *, D=None, I=None):
    """Search with given coarse assignments (n, nprobe) (-1: skip) and their
    distances.  With D / I given, the results are written there; when
    parallel_mode has PARALLEL_MODE_NO_HEAP_INIT, D / I are result heaps
    being accumulated (faiss.ResultHeap's D / I) and the new results are
    merged into them instead."""
    import numpy as np
    from ._checks import as_matrix, check_k
    x = as_matrix(x, self.d, "queries")
    k = check_k(k)
    assign = np.ascontiguousarray(assign, dtype=np.int64)
    if centroid_dis is None:
        centroid_dis = np.zeros(assign.shape, np.float32)
    centroid_dis = np.ascontiguousarray(centroid_dis, dtype=np.float32)
    Dr, Ir = self._search_preassigned(x, k, assign, centroid_dis, params)
    if D is None and I is None:
        return Dr, Ir
    if D is None or I is None:
        raise _core.InvalidArgumentError("search_preassigned: give both D and I, or neither")
    if self.parallel_mode & PARALLEL_MODE_NO_HEAP_INIT:
        keep_max = self.metric_type == _core.METRIC_INNER_PRODUCT
        _core._heap_addn(D, I, keep_max, Dr, Ir, None, 0)
    else:
        D[...] = Dr
        I[...] = Ir
    return D, I


IndexIVF.search_preassigned = _search_preassigned


def _range_search_preassigned(self, x, thresh, assign, centroid_dis=None, params=None):
    """Range search with given coarse assignments (n, nprobe) (-1: skip):
    (lims, D, I) as range_search."""
    import numpy as np
    from ._checks import as_matrix
    x = as_matrix(x, self.d, "queries")
    thresh = float(thresh)  # the bindings check it is finite
    assign = np.ascontiguousarray(assign, dtype=np.int64)
    if centroid_dis is None:
        centroid_dis = np.zeros(assign.shape, np.float32)
    centroid_dis = np.ascontiguousarray(centroid_dis, dtype=np.float32)
    return self._range_search_preassigned(x, thresh, assign, centroid_dis, params)


IndexIVF.range_search_preassigned = _range_search_preassigned


def _get_parallel_mode(self):
    return self.__dict__.get("_parallel_mode", 0)


def _set_parallel_mode(self, v):
    self.__dict__["_parallel_mode"] = int(v)


# Faiss's parallel_mode chooses how queries and lists are split over threads;
# annvil plans that itself (the results do not depend on it).  The value is
# kept, and PARALLEL_MODE_NO_HEAP_INIT is honoured by search_preassigned.
IndexIVF.parallel_mode = property(_get_parallel_mode, _set_parallel_mode)
IndexIVF.PARALLEL_MODE_NO_HEAP_INIT = PARALLEL_MODE_NO_HEAP_INIT
IVFSearchParameters = SearchParametersIVF  # Faiss's old name


# ---- ScalarQuantizer: Faiss's methods, with the inputs checked and converted once ----
def _sq_train(self, x):
    """Learn the quantization ranges from x (n, d) (nothing to learn for QT_fp16)."""
    self._train(_as_matrix(x, self.d, "training vectors"))


def _sq_compute_codes(self, x):
    """Codes of x (n, d) as a (n, code_size) uint8 array."""
    return self._compute_codes(_as_matrix(x, self.d, "x"))


def _sq_decode(self, codes):
    """Vectors (n, d) decoded from (n, code_size) uint8 codes."""
    c = _np.asarray(codes)
    if c.dtype != _np.uint8:
        raise _core.InvalidTypeError(f"codes must be uint8, got {c.dtype}")
    if c.ndim == 1:
        c = c.reshape(1, -1)
    return self._decode(_np.ascontiguousarray(c))


ScalarQuantizer.train = _sq_train
ScalarQuantizer.compute_codes = _sq_compute_codes
ScalarQuantizer.decode = _sq_decode
