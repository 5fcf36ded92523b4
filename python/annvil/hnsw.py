"""annvil: HNSW graph indexes (Faiss's IndexHNSWFlat), with deletes and filtered search.

    index = annvil.IndexHNSWFlat(d, 32)            # M = 32, METRIC_L2
    index.hnsw.efConstruction = 80                 # before add()
    index.add(xb)
    index.hnsw.efSearch = 64
    D, I = index.search(xq, 10)
    D, I = index.search(xq, 10, params=annvil.SearchParametersHNSW(efSearch=128, sel=mask))

Deletes: ``remove_ids`` removes vectors as IndexFlat does (the later ids shift
down, so positions keep matching a client's document list; the graph is
repaired around the removed nodes, not rebuilt).  ``mark_deleted`` is the fast
delete of hnswlib: tombstones that are never returned but still route
searches; ids stay stable, ``ntotal`` keeps counting slots and ``n_deleted``
counts the hidden ones; ``compact()`` rebuilds without them.  With
``index.replace_deleted = True``, ``add`` reuses deleted slots first and returns
the ids it assigned.  Under IndexIDMap the user ids stay stable either way.

Filtered search (``params.sel``) is planned per call: with an allowed fraction
f of N vectors, when f^2 * N <= 2M * max(efSearch, k / f) (an exact scan of
the f * N allowed vectors is then cheaper than a graph walk that visits about
ef / f nodes of up to 2M neighbours each) the allowed vectors are scanned
exactly; otherwise the graph is walked through every node, only allowed ids
enter the results, and efSearch is raised to max(efSearch, k / f) (capped at
4096).  ``index.filter_strategy`` ('auto', 'graph', 'exact') overrides it.

Vectors are stored as IEEE half floats while every value added is exactly
representable in half precision (embeddings produced in float16, for
example): distances are the same as with float32 storage, at half the memory
and memory traffic.  The first add with a value that is not exact converts the
storage to float32; ``index.allow_f16 = False`` keeps float32 from the start,
``index.is_f16`` tells which is in use.

Compressed storages (Faiss's classes and signatures): the graph is the same,
the vectors are kept only as codes and every distance is computed from them::

    index = annvil.IndexHNSWSQ(d, annvil.ScalarQuantizer.QT_8bit, 32)   # or QT_8bit_uniform, QT_fp16
    index = annvil.IndexHNSWPQ(d, pq_m, 32, 8)                          # pq_m sub-quantizers of 8 bits
    index.train(xt)          # required (except QT_fp16): is_trained is False until then
    index.add(xb)

SQ distances use the code-domain SIMD kernels (no decoding), PQ distances a
per-query lookup table (pq_m x 2^nbits).  ``reconstruct`` decodes.
"""
from __future__ import annotations

from . import _core
from ._checks import NAN_METRICS, as_matrix
from ._core import HNSW, IndexHNSW, IndexHNSWFlat, IndexHNSWPQ, IndexHNSWSQ, SearchParametersHNSW

__all__ = ["HNSW", "IndexHNSW", "IndexHNSWFlat", "IndexHNSWSQ", "IndexHNSWPQ", "SearchParametersHNSW"]


def _add(self, x):
    """Add vectors x (n, d).  New vectors get ids ntotal, ntotal + 1, ...;
    with replace_deleted set, deleted slots are reused first (lowest first)
    and the assigned ids are returned (else None, as in Faiss)."""
    x = as_matrix(x, self.d, "x", allow_nan=self.metric_type in NAN_METRICS)
    ids = self._add_slots(x)
    return ids if self.replace_deleted else None


def _mark_deleted(self, ids):
    """Hide the given ids (IDSelector, id array or boolean mask) from results
    without renumbering (tombstones, as hnswlib's mark_deleted); returns how
    many were newly marked."""
    return int(self._mark_deleted(_as_selector_arg(ids)))


def _as_selector_arg(x):
    import numpy as np
    from ._checks import as_ids
    from ._selectors import IDSelector, IDSelectorBatch, as_selector
    if isinstance(x, IDSelector):
        return x
    arr = np.asarray(x)
    return as_selector(arr) if arr.dtype == np.bool_ else IDSelectorBatch(as_ids(arr))


IndexHNSW.add = _add
IndexHNSW.mark_deleted = _mark_deleted
_ = _core
