"""Faiss-compatible methods of every index, attached to the compiled Index
base class.  They convert and check arguments once (see _checks) and call the
raw C++ methods (`_add`, `_search`...), which release the GIL."""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import as_ids, as_matrix, check_int, check_k
from ._core import InvalidArgumentError, NotTrainedError
from ._selectors import IDSelector, IDSelectorBatch, as_selector


def _require_trained(index):
    if not index.is_trained:
        raise NotTrainedError(
            f"{type(index).__name__} is not trained: call index.train(x) before add() or search()")


def train(self, x):
    """Train the index on representative vectors x (n, d)."""
    self._train(as_matrix(x, self.d, "training vectors"))


def add(self, x):
    """Add vectors x (n, d); their ids are ntotal, ntotal + 1, ..."""
    x = as_matrix(x, self.d, "x")
    _require_trained(self)
    self._add(x)


def add_with_ids(self, x, ids):
    """Add vectors x (n, d) under the given int64 ids."""
    x = as_matrix(x, self.d, "x")
    ids = as_ids(ids, x.shape[0])
    _require_trained(self)
    self._add_with_ids(x, ids)


def _check_params(params):
    if params is not None and not isinstance(params, _core.SearchParameters):
        raise InvalidArgumentError(
            f"params must be a SearchParameters object, got {type(params).__name__}")
    return params


def search(self, x, k, params=None, D=None, I=None):
    """k nearest neighbours of each query: (D float32 (n, k), I int64 (n, k)).

    Missing results (k > ntotal, filtered out) are -1 with +inf (L2) or -inf
    (inner product).  `params` overrides search parameters for this call.
    """
    x = as_matrix(x, self.d, "queries")
    k = check_k(k)
    _require_trained(self)
    Dr, Ir = self._search(x, k, _check_params(params))
    if D is not None:
        D[...] = Dr
        Dr = D
    if I is not None:
        I[...] = Ir
        Ir = I
    return Dr, Ir


def assign(self, x, k, labels=None):
    """Ids of the k nearest neighbours (the I of search)."""
    return self.search(x, k, I=labels)[1]


def range_search(self, x, thresh, params=None):
    """All neighbours within thresh: (lims, D, I); results of query i are
    D[lims[i]:lims[i+1]], I[lims[i]:lims[i+1]] (L2: distance < thresh; inner
    product: similarity > thresh)."""
    x = as_matrix(x, self.d, "queries")
    thresh = float(thresh)
    if not np.isfinite(thresh):
        raise InvalidArgumentError(f"radius must be finite, got {thresh}")
    _require_trained(self)
    return self._range_search(x, thresh, _check_params(params))


def reconstruct(self, key, x=None):
    """The stored (or decoded) vector with id `key`."""
    key = check_int(key, "key")
    out = self._reconstruct(key)
    if x is not None:
        x[...] = out
        return x
    return out


def reconstruct_n(self, n0=0, ni=-1, x=None):
    """Vectors n0 .. n0 + ni - 1 as an (ni, d) array (ni = -1: up to ntotal)."""
    n0 = check_int(n0, "n0", minimum=0)
    ni = check_int(ni, "ni")
    if ni < 0:
        ni = self.ntotal - n0
    if n0 + ni > self.ntotal:
        raise InvalidArgumentError(f"reconstruct_n({n0}, {ni}) goes past ntotal={self.ntotal}")
    out = self._reconstruct_n(n0, ni)
    if x is not None:
        x[...] = out
        return x
    return out


def reconstruct_batch(self, keys, x=None):
    keys = as_ids(keys)
    out = np.stack([self.reconstruct(int(k)) for k in keys]) if len(keys) else np.zeros((0, self.d), np.float32)
    if x is not None:
        x[...] = out
        return x
    return out


def remove_ids(self, x):
    """Remove the vectors whose ids are selected (IDSelector, id array or
    boolean mask); returns how many were removed."""
    if not isinstance(x, IDSelector):
        arr = np.asarray(x)
        sel = IDSelectorBatch(as_ids(arr)) if arr.dtype != np.bool_ else as_selector(arr)
    else:
        sel = x
    return int(self._remove_ids(sel))


def __reduce__(self):
    from . import deserialize_index, serialize_index
    return deserialize_index, (serialize_index(self),)


def __repr__(self):
    return f"<annvil.{type(self).__name__} d={self.d} ntotal={self.ntotal} metric={'L2' if self.metric_type == 1 else 'IP'}>"


def attach(cls):
    for name, fn in [("train", train), ("add", add), ("add_with_ids", add_with_ids), ("search", search),
                     ("assign", assign), ("range_search", range_search), ("reconstruct", reconstruct),
                     ("reconstruct_n", reconstruct_n), ("reconstruct_batch", reconstruct_batch),
                     ("remove_ids", remove_ids), ("__reduce__", __reduce__), ("__repr__", __repr__)]:
        setattr(cls, name, fn)
