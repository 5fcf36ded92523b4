"""Product quantization family: ProductQuantizer, IndexPQ, IndexPQFastScan
(4-bit codes scanned with SIMD byte shuffles), IndexRefine / IndexRefineFlat
(exact re-ranking of an approximate index's candidates).  The vector
transforms and IndexPreTransform are in transforms.py.

Names, parameters and attributes follow Faiss:

    pq = ProductQuantizer(d, M, nbits); pq.train(x); codes = pq.compute_codes(x)
    index = IndexRefineFlat(IndexPQFastScan(d, M, 4, METRIC_L2)); index.k_factor = 4
    index = IndexPreTransform(OPQMatrix(d, M), IndexPQ(d, M, 8))
"""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import ArrayLike, as_matrix
from .compat import FieldArray, ptr_array
from ._core import (  # noqa: F401  (re-exported)
    IndexPQ,
    IndexPQFastScan,
    IndexRefine,
    IndexRefineFlat,
    IndexRefineSearchParameters,
    ProductQuantizer,
)
from ._core import InvalidArgumentError, InvalidTypeError

__all__ = [
    "ProductQuantizer",
    "IndexPQ",
    "IndexPQFastScan",
    "IndexRefine",
    "IndexRefineFlat",
    "IndexRefineSearchParameters",
]


# ---- ProductQuantizer ----------------------------------------------------------------
def _pq_train(self, x: ArrayLike) -> None:
    """Train the sub-space codebooks on x (n, d); needs n >= ksub = 2**nbits."""
    self._train(as_matrix(x, self.d, "training vectors"))  # the core checks n >= ksub


def _pq_compute_codes(self, x: ArrayLike) -> np.ndarray:
    """Codes of x (n, d) as uint8 (n, code_size), Faiss's bit layout."""
    x = as_matrix(x, self.d, "vectors")
    return self._compute_codes(x)


def _pq_decode(self, codes: ArrayLike) -> np.ndarray:
    """Reconstructions (n, d) float32 of uint8 codes (n, code_size)."""
    c = np.asarray(codes)
    if c.dtype != np.uint8:
        raise InvalidTypeError(f"codes must be uint8, got {c.dtype}")
    if c.ndim == 1:
        c = c.reshape(1, -1)
    if c.ndim != 2 or c.shape[1] != self.code_size:
        raise InvalidArgumentError(f"codes must have shape (n, {self.code_size}), got {c.shape}")
    return self._decode(np.ascontiguousarray(c))


def _pq_tables(self, metric, x, rest, what):
    if rest:  # Faiss's pointer form: (n, x_ptr, out_ptr)
        if len(rest) != 2:
            raise InvalidArgumentError(f"{what} takes (x) or (n, x_ptr, out_ptr)")
        n = int(x)
        xs = ptr_array(rest[0], np.float32, n * self.d, "x").reshape(n, self.d)
        out = ptr_array(rest[1], np.float32, n * self.M * self.ksub, "tables", writable=True)
        out[...] = self._compute_tables(np.ascontiguousarray(xs), metric).ravel()
        return None
    x = as_matrix(x, self.d, "queries")
    return self._compute_tables(x, metric)


def _pq_compute_distance_tables(self, x: ArrayLike, *rest: object) -> np.ndarray | None:
    """Squared L2 distances of each query's sub-vectors to every centroid: (n, M, ksub).
    Faiss's pointer form compute_distance_tables(n, x_ptr, out_ptr) is accepted."""
    return _pq_tables(self, _core.METRIC_L2, x, rest, "compute_distance_tables")


def _pq_compute_inner_prod_tables(self, x: ArrayLike, *rest: object) -> np.ndarray | None:
    """Inner products of each query's sub-vectors with every centroid: (n, M, ksub).
    Faiss's pointer form compute_inner_prod_tables(n, x_ptr, out_ptr) is accepted."""
    return _pq_tables(self, _core.METRIC_INNER_PRODUCT, x, rest, "compute_inner_prod_tables")


def _pq_codes_with_assign_index(self, x, codes=None, n=None):
    """Faiss's compute_codes_with_assign_index: each sub-vector encoded by a
    1-NN search in `pq.assign_index` (an index of dimension dsub, reset and
    filled with the sub-space's centroids).  Pointer form (x_ptr, codes_ptr, n)
    or compute_codes_with_assign_index(x) -> codes."""
    index = getattr(self, "assign_index", None)
    if index is None:
        raise InvalidArgumentError("compute_codes_with_assign_index needs pq.assign_index (an index of d=dsub)")
    if index.d != self.dsub:
        raise InvalidArgumentError(f"assign_index has d={index.d}, expected dsub={self.dsub}")
    if n is not None:
        xs = ptr_array(x, np.float32, int(n) * self.d, "x").reshape(int(n), self.d)
    else:
        xs = as_matrix(x, self.d, "vectors")
    cents = self.centroids.reshape(self.M, self.ksub, self.dsub)
    idx = np.empty((xs.shape[0], self.M), dtype=np.int64)
    for m in range(self.M):
        index.reset()
        index.add(np.ascontiguousarray(cents[m]))
        _, I = index.search(np.ascontiguousarray(xs[:, m * self.dsub:(m + 1) * self.dsub]), 1)
        idx[:, m] = I[:, 0]
    out = self._pack_codes(idx)
    if n is not None and codes is not None:
        ptr_array(codes, np.uint8, out.size, "codes", writable=True)[...] = out.ravel()
        return None
    return out


def _pq_centroids_get(self):
    return FieldArray.of(self._centroids_raw, lambda a, self=self: setattr(self, "_centroids_raw", a))


def _pq_centroids_set(self, value):
    self._centroids_raw = np.ascontiguousarray(value, dtype=np.float32).reshape(-1)


ProductQuantizer._centroids_raw = ProductQuantizer.centroids
ProductQuantizer.centroids = property(_pq_centroids_get, _pq_centroids_set,
                                      doc="M * ksub * dsub floats (Faiss layout); reshape to (M, ksub, dsub)")
ProductQuantizer.compute_codes_with_assign_index = _pq_codes_with_assign_index


def _pq_get_centroids(self, m: int, i: int) -> np.ndarray:
    return self.centroids.reshape(self.M, self.ksub, self.dsub)[m, i].copy()


def _pq_repr(self):
    return f"<annvil.ProductQuantizer d={self.d} M={self.M} nbits={self.nbits} trained={self.is_trained}>"


# pq.cp (the k-means settings, every Faiss ClusteringParameters field) is bound in bind_kmeans.cpp

for _name, _fn in [("train", _pq_train), ("compute_codes", _pq_compute_codes), ("decode", _pq_decode),
                   ("compute_distance_tables", _pq_compute_distance_tables),
                   ("compute_inner_prod_tables", _pq_compute_inner_prod_tables),
                   ("get_centroids", _pq_get_centroids), ("__repr__", _pq_repr)]:
    setattr(ProductQuantizer, _name, _fn)


# the standalone codec (sa_encode / sa_decode / sa_code_size) is the Index one (_index_methods)
ProductQuantizer.assign_index = None  # Faiss's optional sub-space assignment index (compute_codes_with_assign_index)
