"""Methods of every binary index (input conversion, train/add/search...)
and the IndexBinaryIVF extras, attached to the compiled classes."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _core
from .._checks import ArrayLike, as_ids, check_int, check_k, check_params, into
from .._core import IndexBinary, IndexBinaryIVF, InvalidArgumentError, InvalidTypeError
from .._index_methods import strict_setattr
from .._selectors import IDSelector, IDSelectorBatch, as_selector


# ---- input conversion --------------------------------------------------------------
def as_codes(x: ArrayLike, code_size: int | None = None, what: str = "x") -> np.ndarray:
    """x as a C-contiguous uint8 (n, code_size) array.  Integer arrays with
    values in [0, 255] are converted (Faiss casts them too); anything else raises."""
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "iu":
            raise InvalidTypeError(
                f"{what} must hold binary codes as uint8 (d / 8 bytes per vector), got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise InvalidArgumentError(f"{what} holds values outside [0, 255]: codes are bytes")
    if arr.ndim == 1 and code_size is not None:
        if arr.shape[0] != code_size:
            raise InvalidArgumentError(
                f"{what} is a 1-D array of length {arr.shape[0]}; expected one code of {code_size} bytes "
                f"or a 2-D array of shape (n, {code_size})")
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise InvalidArgumentError(f"{what} must be a 2-D uint8 array of shape (n, d / 8), got shape {arr.shape}")
    if code_size is not None and arr.shape[1] != code_size:
        raise InvalidArgumentError(
            f"{what} has {arr.shape[1]} bytes per vector, but the index has code_size={code_size} "
            f"(d={code_size * 8} bits)")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _check_radius(radius):
    if isinstance(radius, (float, np.floating)):
        if not np.isfinite(radius):
            raise InvalidArgumentError(f"radius must be finite, got {radius}")
        radius = int(np.ceil(radius))  # distance < radius, distances are integers
    if isinstance(radius, bool) or not isinstance(radius, numbers.Integral):
        raise InvalidTypeError(f"radius must be an integer Hamming distance, got {type(radius).__name__}")
    return int(max(min(int(radius), 2**31 - 1), -2**31))


# ---- methods of every binary index ---------------------------------------------------
def _train(self, x: ArrayLike) -> None:
    """Train on representative codes x (n, code_size) uint8."""
    self._train(as_codes(x, self.code_size, "training vectors"))


def _add(self, x: ArrayLike) -> None:
    """Add codes x (n, code_size) uint8; their ids are ntotal, ntotal + 1, ..."""
    x = as_codes(x, self.code_size, "x")
    self._add(x)


def _add_with_ids(self, x: ArrayLike, ids: ArrayLike) -> None:
    """Add codes x (n, code_size) under the given int64 ids."""
    x = as_codes(x, self.code_size, "x")
    ids = as_ids(ids, x.shape[0])
    self._add_with_ids(x, ids)


def _search(self, x: ArrayLike, k: int, params: _core.SearchParameters | None = None, D: np.ndarray | None = None,
            I: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """k nearest codes of each query: (D int32 (n, k) Hamming distances,
    I int64 (n, k)); missing results are (INT32_MAX, -1), as in Faiss."""
    x = as_codes(x, self.code_size, "queries")
    k = check_k(k)
    Dr, Ir = self._search(x, k, check_params(params))
    return into(D, Dr), into(I, Ir)


def _assign(self, x: ArrayLike, k: int, labels: np.ndarray | None = None) -> np.ndarray:
    """Ids of the k nearest codes (the I of search)."""
    return self.search(x, k, I=labels)[1]


def _range_search(self, x: ArrayLike, thresh: float,
                  params: _core.SearchParameters | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All codes at Hamming distance < thresh: (lims, D int32, I int64); the
    results of query i are D[lims[i]:lims[i+1]], I[lims[i]:lims[i+1]]."""
    x = as_codes(x, self.code_size, "queries")
    radius = _check_radius(thresh)
    return self._range_search(x, radius, check_params(params))


def _reconstruct(self, key: int, x: np.ndarray | None = None) -> np.ndarray:
    """The stored code with id `key` (code_size bytes)."""
    out = self._reconstruct(check_int(key, "key"))
    if x is not None:
        x[...] = out
        return x
    return out


def _reconstruct_n(self, n0: int = 0, ni: int = -1, x: np.ndarray | None = None) -> np.ndarray:
    """Codes n0 .. n0 + ni - 1 as an (ni, code_size) uint8 array (ni = -1: up to ntotal)."""
    n0 = check_int(n0, "n0", minimum=0)
    ni = check_int(ni, "ni")
    if ni < 0:
        ni = self.ntotal - n0
    out = self._reconstruct_n(n0, ni)
    if x is not None:
        x[...] = out
        return x
    return out


def _remove_ids(self, x: IDSelector | ArrayLike) -> int:
    """Remove the codes whose ids are selected (IDSelector, id array or boolean
    mask); returns how many were removed."""
    if not isinstance(x, IDSelector):
        arr = np.asarray(x)
        sel = IDSelectorBatch(as_ids(arr)) if arr.dtype != np.bool_ else as_selector(arr)
    else:
        sel = x
    return int(self._remove_ids(sel))


def _reduce(self):
    from .io import deserialize_index_binary, serialize_index_binary
    return deserialize_index_binary, (serialize_index_binary(self),)


def _repr(self):
    return f"<annvil.{type(self).__name__} d={self.d} ntotal={self.ntotal}>"


for _name, _fn in [("train", _train), ("add", _add), ("add_with_ids", _add_with_ids), ("search", _search),
                   ("assign", _assign), ("range_search", _range_search), ("reconstruct", _reconstruct),
                   ("reconstruct_n", _reconstruct_n), ("remove_ids", _remove_ids), ("__reduce__", _reduce),
                   ("__repr__", _repr), ("__setattr__", strict_setattr)]:
    setattr(IndexBinary, _name, _fn)


# ---- IndexBinaryIVF extras -----------------------------------------------------------
def _ivf_search_preassigned(self, x, k, assign, centroid_dis=None, params=None, *, D=None, I=None):
    """Search with given coarse assignments (n, nprobe) (-1: skip);
    centroid_dis is accepted for Faiss's signature and not used."""
    x = as_codes(x, self.code_size, "queries")
    k = check_k(k)
    assign = np.ascontiguousarray(assign, dtype=np.int64).reshape(x.shape[0], -1)
    Dr, Ir = self._search_preassigned(x, k, assign, check_params(params))
    return into(D, Dr), into(I, Ir)


def _ivf_range_search_preassigned(self, x, thresh, assign, centroid_dis=None, params=None):
    x = as_codes(x, self.code_size, "queries")
    assign = np.ascontiguousarray(assign, dtype=np.int64).reshape(x.shape[0], -1)
    return self._range_search_preassigned(x, _check_radius(thresh), assign, check_params(params))


def _ivf_add_preassigned(self, x, list_nos, ids=None):
    """Add codes to the given lists (list_nos: n ints, -1: not added)."""
    x = as_codes(x, self.code_size, "x")
    list_nos = as_ids(list_nos, x.shape[0], "list_nos")
    ids = np.arange(self.ntotal, self.ntotal + x.shape[0], dtype=np.int64) if ids is None else \
        as_ids(ids, x.shape[0])
    self._add_preassigned(x, list_nos, ids)


def _get_clustering_index(self):
    return self.__dict__.get("_clustering_index")


def _set_clustering_index(self, index):
    # Faiss clusters the +-1 expansion of the codes with this float index's
    # assignments; annvil's k-means always assigns exactly (see kmeans.py), so
    # the index is kept (and must have dimension d) but does not change the result
    if index is not None:
        if not isinstance(index, _core.Index):
            raise InvalidTypeError(f"clustering_index must be a float index, got {type(index).__name__}")
        if index.d != self.d:
            raise InvalidArgumentError(f"clustering_index has d={index.d}, the binary index has d={self.d}")
    self.__dict__["_clustering_index"] = index


IndexBinaryIVF.search_preassigned = _ivf_search_preassigned
IndexBinaryIVF.range_search_preassigned = _ivf_range_search_preassigned
IndexBinaryIVF.add_preassigned = _ivf_add_preassigned
IndexBinaryIVF.clustering_index = property(_get_clustering_index, _set_clustering_index,
                                           doc="float index for the k-means assignments (see above)")
IndexBinaryIVF.own_invlists = property(lambda self: True, lambda self, v: None)
