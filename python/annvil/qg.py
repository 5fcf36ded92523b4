"""annvil: IndexQG, a graph index over quantized neighbour blocks.

    index = annvil.IndexQG(d, 64, 96, annvil.METRIC_INNER_PRODUCT)   # R = 64, PQ96x4
    index = annvil.index_factory(d, "QG64,PQ96x4", annvil.METRIC_INNER_PRODUCT)
    index.train(xt)                 # the 4-bit PQ of the neighbour codes
    index.add(xb)                   # HNSW construction (M = R / 2), codes, blocks
    index.hnsw.efSearch = 64        # or params=annvil.SearchParametersQG(efSearch=64)
    D, I = index.search(xq, 10)

Each vertex keeps one contiguous block: its R level-0 neighbour ids and their
4-bit PQ codes in the fast-scan layout.  A search builds one uint8 lookup
table per query, scores a whole block with the byte-shuffle kernel, keeps the
candidate list (efSearch) ordered by those estimates, and re-scores each
expanded vertex exactly from the stored vectors (fp16 when that is lossless,
as IndexHNSW), so results carry exact distances.  Everything else (deletes,
``mark_deleted``, filtered search and its planner, ``remove_ids``, files,
pickle) behaves as IndexHNSW; IndexQG is an IndexHNSW subclass, so
``ParameterSpace`` and ``SearchParametersHNSW`` work unchanged.

d need not be a multiple of pq_M: vectors are zero-padded to ``dpad`` for the
codes (pq_M = 0 picks ceil(d / 4), 4 dimensions per sub-quantizer, or d when
d <= 16).  The default efSearch is 32.
"""
from __future__ import annotations

from ._core import IndexQG, SearchParametersQG

__all__ = ["IndexQG", "SearchParametersQG"]
