"""ID selectors with Faiss's constructors, plus conversion of numpy masks and
id arrays (accepted wherever a selector is)."""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import as_ids
from ._core import (IDSelector, IDSelectorAll, IDSelectorAnd, IDSelectorNot, IDSelectorOr, IDSelectorRange,
                    IDSelectorXOr, InvalidArgumentError)

__all__ = ["IDSelector", "IDSelectorRange", "IDSelectorBatch", "IDSelectorBitmap", "IDSelectorArray",
           "IDSelectorNot", "IDSelectorAnd", "IDSelectorOr", "IDSelectorXOr", "IDSelectorAll", "as_selector",
           "IDSelectorTranslated"]


def _n_ids(n, ids):
    """Faiss's (n, ids) arguments: ids a numpy array or a swig_ptr to one."""
    from .compat import SwigPtr, ptr_array  # compat imports this module
    if isinstance(ids, SwigPtr):
        ids = ptr_array(ids, np.int64, int(n), "ids")
    return as_ids(ids)[: int(n)]


class IDSelectorBatch(_core._IDSelectorBatch):
    """Selects the listed ids: IDSelectorBatch(ids) or Faiss's IDSelectorBatch(n, ids)."""

    def __init__(self, *args):
        if len(args) == 2:
            ids = _n_ids(*args)
        elif len(args) == 1:
            ids = as_ids(args[0])
        else:
            raise InvalidArgumentError("IDSelectorBatch(ids) or IDSelectorBatch(n, ids)")
        super().__init__(ids)


class IDSelectorArray(_core._IDSelectorArray):
    """Selects the listed ids (a linear scan: for short lists; IDSelectorBatch
    hashes): IDSelectorArray(ids) or Faiss's IDSelectorArray(n, ids)."""

    def __init__(self, *args):
        if len(args) == 2:
            ids = _n_ids(*args)
        elif len(args) == 1:
            ids = as_ids(args[0])
        else:
            raise InvalidArgumentError("IDSelectorArray(ids) or IDSelectorArray(n, ids)")
        super().__init__(ids)


class IDSelectorBitmap(_core._IDSelectorBitmap):
    """Selects id i when bit i of the bitmap is set (little-endian bit order).

    IDSelectorBitmap(bitmap_uint8), IDSelectorBitmap(n, bitmap_uint8) as in
    Faiss, or IDSelectorBitmap(mask) with a boolean mask over ids.
    """

    def __init__(self, *args):
        if len(args) == 2:
            n, bits = args
            bits = np.asarray(bits)
            if bits.dtype != np.bool_:
                bits = np.ascontiguousarray(bits, dtype=np.uint8)[: (int(n) + 7) // 8]
        elif len(args) == 1:
            bits = np.asarray(args[0])
        else:
            raise InvalidArgumentError("IDSelectorBitmap(bitmap) or IDSelectorBitmap(n, bitmap)")
        if bits.dtype == np.bool_:
            bits = np.packbits(bits.ravel(), bitorder="little")
        if bits.ndim != 1 or bits.dtype != np.uint8:
            raise InvalidArgumentError("bitmap must be a 1-D uint8 array or a boolean mask")
        super().__init__(np.ascontiguousarray(bits))


def as_selector(obj: object) -> _core.IDSelector | None:
    """An IDSelector from a selector, a boolean mask over ids or an array of ids."""
    if obj is None or isinstance(obj, IDSelector):
        return obj
    arr = np.asarray(obj)
    if arr.dtype == np.bool_:
        return IDSelectorBitmap(arr)
    if arr.dtype.kind in "iu":
        return IDSelectorBatch(arr)
    raise InvalidArgumentError(
        "a selector must be an IDSelector, a boolean mask over ids, or an array of ids; "
        f"got {type(obj).__name__}")


class IDSelectorTranslated(_core._IDSelectorTranslated):
    """Faiss's IDSelectorTranslated(id_map, sel): selects position i when
    sel selects id_map[i].  id_map: an IndexIDMap / IndexIDMap2 (its id_map,
    as it is now) or an array of ids; IndexIDMap searches take it as is (it is
    already over positions)."""

    def __init__(self, id_map, sel):
        ids = getattr(id_map, "id_map", id_map)
        super().__init__(as_ids(np.asarray(ids)), as_selector(sel))
