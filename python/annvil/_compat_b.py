"""Faiss surface details that clients and Faiss's own tests touch (second
batch): small methods and attributes with Faiss's names and semantics, on top
of the native classes.  Nothing here computes results: it forwards to the
engine or records what Faiss records."""
from __future__ import annotations

from . import _core


# ---- IndexFlat: Faiss's cached-norm switches ------------------------------------------
# Faiss's IndexFlatL2 can cache the squared norms of the stored vectors
# (sync_l2norms) to speed up search; annvil's kernels compute the norms of the
# stored rows in the distance loop, so there is nothing to cache: both calls
# keep results exactly as they are, as in Faiss.
def _sync_l2norms(self):
    """Faiss's norm cache: nothing to do in annvil (results are unchanged)."""


def _clear_l2norms(self):
    """Faiss's norm cache: nothing to do in annvil (results are unchanged)."""


_core.IndexFlat.sync_l2norms = _sync_l2norms
_core.IndexFlat.clear_l2norms = _clear_l2norms


# ---- DistanceComputer --------------------------------------------------------------------
def _unwrap_array(x):
    """numpy arrays as they are; Faiss's swig_ptr(array) stand-ins unwrapped."""
    import numpy as np
    if isinstance(x, np.ndarray):
        return x
    for attr in ("array", "_array", "base"):
        a = getattr(x, attr, None)
        if isinstance(a, np.ndarray):
            return a
    return np.asarray(x)


_core.DistanceComputer.this = property(lambda self: _swig_this(), doc="SWIG's pointer object in Faiss")
_dc_set_query = _core.DistanceComputer.set_query


def _set_query(self, x):
    """Set the query (d floats: a numpy vector, or swig_ptr of one)."""
    _dc_set_query(self, _unwrap_array(x).reshape(-1))


_core.DistanceComputer.set_query = _set_query


def _swig_this():
    from .compat import SWIG_THIS
    return SWIG_THIS


def get_distance_computer(self):
    """Faiss's get_distance_computer(): a DistanceComputer whose dc(i) is the
    distance (L2) or similarity (inner product) from the query set with
    dc.set_query(x) to stored vector i, as this index's search computes it."""
    return _core._get_distance_computer(self)


_core.Index.get_distance_computer = get_distance_computer
# Faiss's IndexFlatCodes::get_FlatCodesDistanceComputer: the same computer
_core.Index.get_FlatCodesDistanceComputer = get_distance_computer
