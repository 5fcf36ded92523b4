"""annvil: HNSW graph indexes (Faiss's IndexHNSWFlat), with deletes and filtered search.

    index = annvil.IndexHNSWFlat(d, 32)            # M = 32, METRIC_L2
    index.hnsw.efConstruction = 80                 # before add()
    index.add(xb)
    index.hnsw.efSearch = 64
    D, I = index.search(xq, 10)
    D, I = index.search(xq, 10, params=annvil.SearchParametersHNSW(efSearch=128, sel=mask))

Deletes are tombstones: ``remove_ids`` hides vectors from results (they still
route searches), ``ntotal`` keeps counting slots and ``n_deleted`` counts the
hidden ones; ``compact()`` rebuilds without them.  With
``index.replace_deleted = True``, ``add`` reuses deleted slots first and returns
the ids it assigned.

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


IndexHNSW.add = _add
_ = _core
