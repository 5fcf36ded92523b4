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
from ._core import IndexIVF, IndexIVFFlat, InvertedLists, SearchParametersIVF  # noqa: F401

__all__ = ["IndexIVF", "IndexIVFFlat", "InvertedLists", "SearchParametersIVF", "DirectMap",
           "extract_index_ivf", "try_extract_index_ivf"]


class DirectMap:
    """Direct map types for IndexIVF.set_direct_map_type (Faiss's values)."""
    NoMap = 0
    Array = 1
    Hashtable = 2


def try_extract_index_ivf(index):
    """The IndexIVF inside index (itself, or the index wrapped by an IDMap), or None."""
    while index is not None and not isinstance(index, IndexIVF):
        index = getattr(index, "index", None)
    return index


def extract_index_ivf(index):
    ivf = try_extract_index_ivf(index)
    if ivf is None:
        raise _core.InvalidArgumentError(f"{type(index).__name__} is not (and does not wrap) an IndexIVF")
    return ivf


# IndexIVF-only Python helpers (attached to the compiled class)
def _search_preassigned(self, x, k, assign, centroid_dis=None, params=None):
    """Search with given coarse assignments (n, nprobe) and their distances."""
    import numpy as np
    from ._checks import as_matrix, check_k
    x = as_matrix(x, self.d, "queries")
    k = check_k(k)
    assign = np.ascontiguousarray(assign, dtype=np.int64)
    if centroid_dis is None:
        centroid_dis = np.zeros(assign.shape, np.float32)
    centroid_dis = np.ascontiguousarray(centroid_dis, dtype=np.float32)
    return self._search_preassigned(x, k, assign, centroid_dis, params)


IndexIVF.search_preassigned = _search_preassigned
