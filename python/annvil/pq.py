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
from ._checks import as_matrix
from ._core import (  # noqa: F401  (re-exported)
    IndexPQ,
    IndexPQFastScan,
    IndexRefine,
    IndexRefineFlat,
    IndexRefineSearchParameters,
    ProductQuantizer,
)
from ._core import InvalidArgumentError, InvalidTypeError, NotTrainedError

__all__ = [
    "ProductQuantizer",
    "IndexPQ",
    "IndexPQFastScan",
    "IndexRefine",
    "IndexRefineFlat",
    "IndexRefineSearchParameters",
]


# ---- ProductQuantizer ----------------------------------------------------------------
def _pq_train(self, x):
    """Train the sub-space codebooks on x (n, d); needs n >= ksub = 2**nbits."""
    x = as_matrix(x, self.d, "training vectors")
    if x.shape[0] < self.ksub:
        raise InvalidArgumentError(
            f"ProductQuantizer with nbits={self.nbits} needs at least ksub={self.ksub} training vectors, "
            f"got {x.shape[0]}")
    self._train(x)


def _pq_require_trained(self):
    if not self.is_trained:
        raise NotTrainedError("ProductQuantizer is not trained: call train(x) first")


def _pq_compute_codes(self, x):
    """Codes of x (n, d) as uint8 (n, code_size), Faiss's bit layout."""
    x = as_matrix(x, self.d, "vectors")
    _pq_require_trained(self)
    return self._compute_codes(x)


def _pq_decode(self, codes):
    """Reconstructions (n, d) float32 of uint8 codes (n, code_size)."""
    c = np.asarray(codes)
    if c.dtype != np.uint8:
        raise InvalidTypeError(f"codes must be uint8, got {c.dtype}")
    if c.ndim == 1:
        c = c.reshape(1, -1)
    if c.ndim != 2 or c.shape[1] != self.code_size:
        raise InvalidArgumentError(f"codes must have shape (n, {self.code_size}), got {c.shape}")
    _pq_require_trained(self)
    return self._decode(np.ascontiguousarray(c))


def _pq_compute_distance_tables(self, x):
    """Squared L2 distances of each query's sub-vectors to every centroid: (n, M, ksub)."""
    x = as_matrix(x, self.d, "queries")
    _pq_require_trained(self)
    return self._compute_tables(x, _core.METRIC_L2)


def _pq_compute_inner_prod_tables(self, x):
    """Inner products of each query's sub-vectors with every centroid: (n, M, ksub)."""
    x = as_matrix(x, self.d, "queries")
    _pq_require_trained(self)
    return self._compute_tables(x, _core.METRIC_INNER_PRODUCT)


def _pq_get_centroids(self, m, i):
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
