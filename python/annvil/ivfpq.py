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

import numpy as _np

from . import _core
from ._core import IndexIVFPQ, IndexIVFPQFastScan, CodePackerPQ4, IndexIVFStats  # noqa: F401
from ._core import SearchParametersIVF

__all__ = ["IndexIVFPQ", "IndexIVFPQFastScan", "CodePackerPQ4", "IndexIVFStats", "indexIVF_stats", "cvar",
           "quantize_LUT_and_bias", "AlignedTable_to_array", "IVFSearchParameters"]

# Faiss's process-wide IVF search counters (faiss.cvar.indexIVF_stats);
# IndexIVFPQFastScan updates them.
indexIVF_stats = _core.indexIVF_stats
IVFSearchParameters = SearchParametersIVF  # Faiss's older name, the same class


from .compat import cvar  # noqa: E402,F401  (Faiss's one global object; cvar.indexIVF_stats is the same counters)


def _as_array(x):
    # numpy arrays pass as they are (outputs are written in place); objects
    # standing for Faiss's swig_ptr(array) are unwrapped to their array
    if x is None or isinstance(x, _np.ndarray):
        return x
    for attr in ("array", "_array", "base"):
        a = getattr(x, attr, None)
        if isinstance(a, _np.ndarray):
            return a
    return _np.asarray(x)


def quantize_LUT_and_bias(nprobe, M, ksub, lut_is_3d, LUT, bias, LUTq, M2, biasq, a_out, b_out):
    """Faiss's quantize_LUT_and_bias: float LUTs (and per-probe biases) to
    uint8 LUTs (and uint16 biases) with one scale a and offset b, so that
    dis ~= (sum LUTq + biasq) / a + b.  Outputs (LUTq, biasq, a_out, b_out:
    numpy arrays, or swig_ptr of them) are written in place."""
    _core._quantize_LUT_and_bias(int(nprobe), int(M), int(ksub), bool(lut_is_3d), _as_array(LUT),
                                 _as_array(bias), _as_array(LUTq), int(M2), _as_array(biasq),
                                 _as_array(a_out), _as_array(b_out))


def AlignedTable_to_array(t):
    """Faiss's AlignedTable_to_array: annvil's code tables are numpy arrays already (a copy)."""
    return _np.array(t, copy=True)


def _repr(self):
    return (f"<annvil.{type(self).__name__} d={self.d} nlist={self.nlist} M={self.pq.M} nbits={self.pq.nbits} "
            f"ntotal={self.ntotal} metric={'L2' if self.metric_type == _core.METRIC_L2 else 'IP'} "
            f"nprobe={self.nprobe}>")


for _cls in (IndexIVFPQ, IndexIVFPQFastScan):
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

    return property(get, set_, doc=f"Faiss's {name}: accepted and kept, no effect on annvil's results")


for _cls in (IndexIVFPQ, _core.IndexPQ):
    if not hasattr(_cls, "do_polysemous_training"):
        _cls.do_polysemous_training = _flag_property("do_polysemous_training", False)
    if not hasattr(_cls, "polysemous_ht"):
        _cls.polysemous_ht = _flag_property("polysemous_ht", 0)

# ---- IndexIVFPQFastScan.invlists: Faiss's BlockInvertedLists view ---------------------
# Faiss stores fast-scan lists as BlockInvertedLists (code_size ==
# InvertedLists.INVALID_CODE_SIZE, whole blocks of n_per_block vectors);
# clients such as faiss.contrib.inspect_tools.get_invlist branch on that.
_core.InvertedLists.INVALID_CODE_SIZE = (1 << 64) - 1


class BlockInvertedListsView:
    """Read-only view of an IndexIVFPQFastScan's lists in Faiss's block form:
    get_codes(l) gives ceil(list_size / 32) blocks of block_size bytes
    (shape (nblocks, M2 / 2, 32)), the list's tail packed and zero-padded."""

    code_size = (1 << 64) - 1  # InvertedLists.INVALID_CODE_SIZE
    n_per_block = 32

    def __init__(self, index):
        self._index = index
        self._lists = _IVFPQFS_INVLISTS.__get__(index)
        self.nlist = index.nlist
        self.block_size = index.M2 * 16

    def list_size(self, l):
        return self._lists.list_size(l)

    def get_ids(self, l):
        return self._lists.get_ids(l)

    def get_codes(self, l):
        return self._index._list_blocks(l)

    def release_ids(self, l, ids=None):
        pass

    def release_codes(self, l, codes=None):
        pass

    def compute_ntotal(self):
        return self._lists.compute_ntotal()

    def imbalance_factor(self):
        return self._lists.imbalance_factor()

    def __repr__(self):
        return f"<annvil.BlockInvertedListsView nlist={self.nlist} block_size={self.block_size}>"


_IVFPQFS_INVLISTS = _core.IndexIVF.__dict__["invlists"]
IndexIVFPQFastScan.invlists = property(BlockInvertedListsView, doc=BlockInvertedListsView.__doc__)

# Faiss's fast-scan kernel knobs that the C++ class does not define (today
# only `skip`, which disables stages in Faiss's benchmarks): kept so client
# code that sets them runs. `implem` and `qbs` are real C++ attributes.
for _cls in (IndexIVFPQFastScan, _core.IndexPQFastScan):
    for _name, _default in (("implem", 0), ("qbs", 0), ("skip", 0)):
        if not hasattr(_cls, _name):
            setattr(_cls, _name, _flag_property(_name, _default))
