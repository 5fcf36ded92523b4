"""Faiss-compatible methods of every index, attached to the compiled Index
base class.  They convert and check arguments once (see _checks) and call the
raw C++ methods (`_add`, `_search`...), which release the GIL."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._checks import NAN_METRICS, ArrayLike, as_ids, as_matrix, check_int, check_k, check_out, check_params, into
from ._core import InvalidArgumentError
from ._selectors import IDSelector, IDSelectorBatch, as_selector

# Checks that need only the index (trained, k > 0, id and range bounds) are the
# C++ core's and the bindings' (Index::check_trained, check_k, ...): they raise
# the same annvil exception whatever the entry point.  This layer converts
# arrays (dtype, shape, finiteness: _checks) and checks Python types only.


def _nan_ok(index):
    return index.metric_type in NAN_METRICS


def train(self, x: ArrayLike) -> None:
    """Train the index on representative vectors x (n, d)."""
    self._train(as_matrix(x, self.d, "training vectors", allow_nan=_nan_ok(self)))


def add(self, x: ArrayLike) -> None:
    """Add vectors x (n, d); their ids are ntotal, ntotal + 1, ..."""
    x = as_matrix(x, self.d, "x", allow_nan=_nan_ok(self))
    self._add(x)


def add_with_ids(self, x: ArrayLike, ids: ArrayLike) -> None:
    """Add vectors x (n, d) under the given int64 ids."""
    x = as_matrix(x, self.d, "x", allow_nan=_nan_ok(self))
    ids = as_ids(ids, x.shape[0])
    self._add_with_ids(x, ids)


def search(self, x: ArrayLike, k: int, params: _core.SearchParameters | None = None, D: np.ndarray | None = None,
           I: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of each query: (D float32 (n, k), I int64 (n, k)).

    Missing results (k > ntotal, filtered out) are -1 with +FLT_MAX (L2) or
    -FLT_MAX (inner product), as in Faiss.  `params` overrides search parameters for this call.
    """
    x = as_matrix(x, self.d, "queries", allow_nan=_nan_ok(self))
    k = check_k(k)
    if D is not None:
        check_out(D, (x.shape[0], k), np.float32, "D")
    if I is not None:
        check_out(I, (x.shape[0], k), np.int64, "I")
    Dr, Ir = self._search(x, k, check_params(params))
    return into(D, Dr), into(I, Ir)


def assign(self, x: ArrayLike, k: int, labels: np.ndarray | None = None) -> np.ndarray:
    """Ids of the k nearest neighbours (the I of search)."""
    return self.search(x, k, I=labels)[1]


def range_search(self, x: ArrayLike, thresh: float,
                 params: _core.SearchParameters | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All neighbours within thresh: (lims, D, I); results of query i are
    D[lims[i]:lims[i+1]], I[lims[i]:lims[i+1]] (L2: distance < thresh; inner
    product: similarity > thresh)."""
    x = as_matrix(x, self.d, "queries", allow_nan=_nan_ok(self))
    return self._range_search(x, float(thresh), check_params(params))


def reconstruct(self, key: int, x: np.ndarray | None = None) -> np.ndarray:
    """The stored (or decoded) vector with id `key`."""
    key = check_int(key, "key")
    if x is not None:
        check_out(x, (self.d,), np.float32, "x")
    out = self._reconstruct(key)
    if x is not None:
        x[...] = out
        return x
    return out


def reconstruct_n(self, n0: int = 0, ni: int = -1, x: np.ndarray | None = None) -> np.ndarray:
    """Vectors n0 .. n0 + ni - 1 as an (ni, d) array (ni = -1: up to ntotal)."""
    n0 = check_int(n0, "n0", minimum=0)
    ni = check_int(ni, "ni")
    if ni < 0:
        ni = self.ntotal - n0
    if x is not None:
        check_out(x, (ni, self.d), np.float32, "x")
    out = self._reconstruct_n(n0, ni)
    if x is not None:
        x[...] = out
        return x
    return out


def reconstruct_batch(self, keys: ArrayLike, x: np.ndarray | None = None) -> np.ndarray:
    keys = as_ids(keys)
    out = np.stack([self.reconstruct(int(k)) for k in keys]) if len(keys) else np.zeros((0, self.d), np.float32)
    if x is not None:
        x[...] = out
        return x
    return out


def remove_ids(self, x: IDSelector | ArrayLike) -> int:
    """Remove the vectors whose ids are selected (IDSelector, id array or
    boolean mask); returns how many were removed."""
    if not isinstance(x, IDSelector):
        arr = np.asarray(x)
        sel = IDSelectorBatch(as_ids(arr)) if arr.dtype != np.bool_ else as_selector(arr)
    else:
        sel = x
    return int(self._remove_ids(sel))


def _as_codes(self, codes):
    arr = np.asarray(codes)
    if arr.dtype != np.uint8:
        raise InvalidArgumentError(f"codes must be uint8, got {arr.dtype}")
    cs = int(self.sa_code_size())
    if arr.ndim == 1 and arr.size % max(cs, 1) == 0:
        arr = arr.reshape(-1, cs)
    if arr.ndim != 2 or arr.shape[1] != cs:
        raise InvalidArgumentError(
            f"codes must have shape (n, {cs}) (sa_code_size() bytes per vector), got {arr.shape}")
    return np.ascontiguousarray(arr)


def sa_encode(self, x: ArrayLike, codes: np.ndarray | None = None) -> np.ndarray:
    """Standalone codes (n, sa_code_size()) uint8 of vectors x (n, d), in Faiss's layout."""
    x = as_matrix(x, self.d, "x")
    out = self._sa_encode(x)
    if codes is not None:
        codes[...] = out.reshape(codes.shape)
        return codes
    return out


def sa_decode(self, codes: ArrayLike, x: np.ndarray | None = None) -> np.ndarray:
    """Vectors (n, d) float32 decoded from standalone codes (n, sa_code_size())."""
    out = self._sa_decode(_as_codes(self, codes))
    if x is not None:
        x[...] = out
        return x
    return out


def add_sa_codes(self, codes: ArrayLike, ids: ArrayLike | None = None) -> None:
    """Add vectors given as standalone codes (sa_encode's output), with their
    ids where the index stores ids (IndexIDMap needs them)."""
    arr = _as_codes(self, codes)
    self._add_sa_codes(arr, None if ids is None else as_ids(ids, arr.shape[0]))


def search_and_reconstruct(self, x: ArrayLike, k: int, params: _core.SearchParameters | None = None,
                           D: np.ndarray | None = None, I: np.ndarray | None = None,
                           R: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """search(), plus the stored (decoded) vector of every result:
    (D (n, k), I (n, k), R (n, k, d)); rows of R for label -1 are NaN."""
    x = as_matrix(x, self.d, "queries")
    k = check_k(k)
    Dr, Ir, Rr = self._search_and_reconstruct(x, k, check_params(params))
    for given, got in ((D, Dr), (I, Ir), (R, Rr)):
        if given is not None:
            given[...] = got
    return (Dr if D is None else D), (Ir if I is None else I), (Rr if R is None else R)


def __reduce__(self):
    # bytes written by the C++ serialiser directly: pickling costs the pickle
    # output plus one copy of the index, as in Faiss
    from . import _core, deserialize_index
    return deserialize_index, (_core.serialize_index_bytes(self),)


def __reduce_ex__(self, protocol):
    # protocol 5: the serialised image travels as a PickleBuffer, so with
    # pickle.dumps(..., protocol=5, buffer_callback=...) it is handed over
    # out of band without a copy (one copy of the index in all); in band it
    # is written into the pickle once, as with bytes
    if protocol >= 5:
        import pickle
        from . import _core, deserialize_index
        return deserialize_index, (pickle.PickleBuffer(_core.serialize_index(self)),)
    return self.__reduce__()


def __repr__(self):
    metric = "L2" if self.metric_type == 1 else "IP"
    return f"<annvil.{type(self).__name__} d={self.d} ntotal={self.ntotal} metric={metric}>"


# ---- attributes: unknown names raise, as in Faiss ----------------------------------
# Faiss refuses to create new attributes on its objects (a typo such as
# `index.nprob = 16` would otherwise be silently ignored).  Allowed: names the
# class or the instance already has, SWIG's ownership names, and names starting
# with '_' (annvil's Python layer keeps referenced objects alive under them).
_ALWAYS_SETTABLE = frozenset(("this", "thisown", "referenced_objects", "own_fields", "own_invlists"))


def strict_setattr(self, name: str, value: object) -> None:
    if name in _ALWAYS_SETTABLE or name.startswith("_") or hasattr(type(self), name):
        object.__setattr__(self, name, value)
        return
    try:
        d = object.__getattribute__(self, "__dict__")
    except AttributeError:
        d = {}
    if name in d:
        object.__setattr__(self, name, value)
        return
    raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")


def _this(self):
    from .compat import SWIG_THIS
    return SWIG_THIS


def _get_own_fields(self):
    return self.__dict__.get("own_fields", True)


def params_setattr(self, name: str, value: object) -> None:
    """SearchParameters: as strict_setattr; object-valued fields (sel,
    quantizer_params...) also keep the Python object referenced while it is
    assigned (one reference per field, released on reassignment or None)."""
    strict_setattr(self, name, value)
    if name.startswith("_") or name in _ALWAYS_SETTABLE:
        return
    refs = self.__dict__.setdefault("_field_refs", {})
    if value is None or isinstance(value, (bool, int, float, str)):
        refs.pop(name, None)
    else:
        refs[name] = value


def _keep_init_refs(init):
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        refs = self.__dict__.setdefault("_field_refs", {})
        for name, value in kwargs.items():
            if value is not None and not isinstance(value, (bool, int, float, str)):
                refs[name] = value
    __init__.__doc__ = init.__doc__
    return __init__


def attach_params(cls: Any) -> None:
    """Faiss's attribute rules on SearchParameters (subclasses inherit
    __setattr__; each class's constructor keeps its object arguments)."""
    cls.__setattr__ = params_setattr
    cls.this = property(_this)
    cls.thisown = property(lambda self: True, lambda self, v: None)


def keep_constructor_refs(cls: Any) -> None:
    if "__init__" in cls.__dict__:
        cls.__init__ = _keep_init_refs(cls.__dict__["__init__"])


def attach(cls: Any) -> None:
    for name, fn in [("train", train), ("add", add), ("add_with_ids", add_with_ids), ("search", search),
                     ("assign", assign), ("range_search", range_search), ("reconstruct", reconstruct),
                     ("reconstruct_n", reconstruct_n), ("reconstruct_batch", reconstruct_batch),
                     ("remove_ids", remove_ids), ("sa_encode", sa_encode), ("sa_decode", sa_decode),
                     ("add_sa_codes", add_sa_codes), ("search_and_reconstruct", search_and_reconstruct),
                     ("__reduce__", __reduce__), ("__reduce_ex__", __reduce_ex__), ("__repr__", __repr__),
                     ("__setattr__", strict_setattr)]:
        setattr(cls, name, fn)
    if not hasattr(cls, "own_fields"):
        cls.own_fields = property(lambda self: self.__dict__.get("_own_fields", True),
                                  lambda self, v: self.__dict__.__setitem__("_own_fields", bool(v)),
                                  doc="SWIG ownership flag in Faiss; annvil's sub-objects are reference counted")
    cls.this = property(_this, doc="SWIG's pointer object in Faiss; ownership calls on it do nothing here")
    cls.thisown = property(lambda self: True, lambda self, v: None)
