"""IVF with product quantization (Faiss's IndexIVFPQ and IndexIVFPQFastScan).

    quantizer = annvil.IndexFlatL2(d)
    index = annvil.IndexIVFPQ(quantizer, d, nlist, M, 8)     # M bytes per vector
    index.train(xt); index.add(xb)
    index.nprobe = 16
    D, I = index.search(xq, k)

    # 4-bit codes scanned with SIMD shuffles, exact re-ranking on top
    index = annvil.IndexRefineFlat(annvil.IndexIVFPQFastScan(quantizer, d, nlist, M, 4))
    index.k_factor = 8

IndexIVFPQ encodes residuals x - centroid (by_residual=True, as Faiss); for L2
it precomputes, per list, the query-independent part of the distance
(use_precomputed_table, switched on by train()).  IndexIVFPQFastScan follows
Faiss's default by_residual=False ("PQ..x4fs"; set by_residual=True before
adding for "PQ..x4fsr").
"""
from __future__ import annotations

from . import _core
from ._core import IndexIVFPQ, IndexIVFPQFastScan  # noqa: F401
from ._core import InvalidArgumentError

__all__ = ["IndexIVFPQ", "IndexIVFPQFastScan"]


def _pq_train_check(self, x):
    """Train the coarse quantizer (unless it already holds nlist centroids),
    then the product quantizer on the residuals of (a subsample of) x."""
    from ._checks import as_matrix
    x = as_matrix(x, self.d, "training vectors")
    n = x.shape[0]
    q = self.quantizer
    if not (q.is_trained and q.ntotal == self.nlist) and n < self.nlist:
        raise InvalidArgumentError(
            f"{type(self).__name__} training needs at least nlist={self.nlist} vectors, got {n}: "
            "pass more training vectors or use fewer lists")
    if n < self.pq.ksub:
        raise InvalidArgumentError(
            f"{type(self).__name__} with nbits={self.pq.nbits} needs at least 2**nbits={self.pq.ksub} "
            f"training vectors, got {n}: pass more training vectors or lower nbits")
    self._train(x)


def _repr(self):
    return (f"<annvil.{type(self).__name__} d={self.d} nlist={self.nlist} M={self.pq.M} nbits={self.pq.nbits} "
            f"ntotal={self.ntotal} metric={'L2' if self.metric_type == _core.METRIC_L2 else 'IP'} "
            f"nprobe={self.nprobe}>")


for _cls in (IndexIVFPQ, IndexIVFPQFastScan):
    _cls.train = _pq_train_check
    _cls.__repr__ = _repr


# Faiss's polysemous-training flag.  annvil never reorders PQ codes for
# polysemous filtering: the flag is kept (index_factory sets it unless the
# description says "np", as Faiss) so client code that reads or sets it works.
def _flag_property(name, default):
    key = "_" + name

    def get(self):
        return self.__dict__.get(key, default)

    def set_(self, v):
        self.__dict__[key] = type(default)(v)

    return property(get, set_, doc=f"Faiss's {name} (accepted; annvil does no polysemous training)")


for _cls in (IndexIVFPQ, _core.IndexPQ):
    if not hasattr(_cls, "do_polysemous_training"):
        _cls.do_polysemous_training = _flag_property("do_polysemous_training", False)
    if not hasattr(_cls, "polysemous_ht"):
        _cls.polysemous_ht = _flag_property("polysemous_ht", 0)
