"""Locality-sensitive hashing: IndexLSH (Faiss's: sign bits of a random
rotation, Hamming search) and IndexLSHMultiTable (several hash tables with
multi-probe and exact re-ranking, which reaches high recall on real
embeddings).

    index = IndexLSH(d, nbits, rotate_data=True, train_thresholds=False)
    index = IndexLSHMultiTable(d, ntables=32, nbits=14, metric=METRIC_INNER_PRODUCT)
    index.train(xb); index.add(xb); index.nprobe = 16; D, I = index.search(xq, 10)

Factory strings: ``LSH[{nbits}][r][t]`` (r: rotate, t: train thresholds, as
Faiss), ``ITQ[{d}],LSH[t]``, and ``LSHMT{ntables}x{nbits}`` for the
multi-table index.
"""
from __future__ import annotations

from ._core import IndexLSH, IndexLSHMultiTable, SearchParametersLSHMultiTable  # noqa: F401
from .compat import FieldArray

__all__ = ["IndexLSH", "IndexLSHMultiTable", "SearchParametersLSHMultiTable"]


def _thresholds_get(self):
    return FieldArray.of(self._thresholds, lambda a, self=self: setattr(self, "_thresholds", a))


def _thresholds_set(self, value):
    import numpy as np
    self._thresholds = np.ascontiguousarray(value, dtype=np.float32).reshape(-1)


IndexLSH.thresholds = property(_thresholds_get, _thresholds_set,
                               doc="per-bit thresholds (medians of the training set), nbits floats")
IndexLSHMultiTable.mean = property(lambda self: self._mean, doc="the training mean subtracted before hashing")


def _lsh_repr(self):
    return (f"<annvil.IndexLSH d={self.d} nbits={self.nbits} rotate_data={self.rotate_data} "
            f"train_thresholds={self.train_thresholds} ntotal={self.ntotal}>")


def _mt_repr(self):
    return (f"<annvil.IndexLSHMultiTable d={self.d} ntables={self.ntables} nbits={self.nbits} "
            f"nprobe={self.nprobe} ntotal={self.ntotal}>")


IndexLSH.__repr__ = _lsh_repr
IndexLSHMultiTable.__repr__ = _mt_repr
