"""index_binary_factory: binary indexes from Faiss's description strings."""
from __future__ import annotations

from .._checks import check_int
from .._core import (
    IndexBinary,
    IndexBinaryFlat,
    IndexBinaryHash,
    IndexBinaryHNSW,
    IndexBinaryIDMap,
    IndexBinaryIDMap2,
    IndexBinaryIVF,
    IndexBinaryMultiHash,
    InvalidArgumentError,
    InvalidTypeError,
)


# ---- factory ---------------------------------------------------------------------
def index_binary_factory(d: int, description: str) -> IndexBinary:
    """Build an (untrained, empty) binary index from a Faiss description:
    BFlat, BIVF{nlist}, BIVF{nlist}_HNSW{M} (or _BHNSW{M}: HNSW quantizer),
    BHNSW{M}, BHash{b}, BHash{nhash}x{b}, each optionally wrapped as
    "IDMap,..." / "IDMap2,..." (or with the wrapper as a suffix)."""
    import re
    d = check_int(d, "d", minimum=1)
    if d % 8:
        raise InvalidArgumentError(f"binary indexes need d (in bits) to be a multiple of 8, got {d}")
    if not isinstance(description, str):
        raise InvalidTypeError(f"description must be a string, got {type(description).__name__}")
    parts = [p.strip() for p in description.split(",")]
    wrap = None
    if len(parts) == 2 and parts[0] in ("IDMap", "IDMap2"):
        wrap, body = parts[0], parts[1]
    elif len(parts) == 2 and parts[1] in ("IDMap", "IDMap2"):
        wrap, body = parts[1], parts[0]
    elif len(parts) == 1:
        body = parts[0]
    else:
        raise InvalidArgumentError(f"index_binary_factory: cannot parse '{description}'")
    m = None
    index: IndexBinary
    if body == "BFlat":
        index = IndexBinaryFlat(d)
    elif (m := re.fullmatch(r"BIVF([0-9]+)", body)):
        index = IndexBinaryIVF(IndexBinaryFlat(d), d, int(m.group(1)))
    elif (m := re.fullmatch(r"BIVF([0-9]+)_B?HNSW([0-9]+)", body)):
        index = IndexBinaryIVF(IndexBinaryHNSW(d, int(m.group(2))), d, int(m.group(1)))
    elif (m := re.fullmatch(r"BHNSW([0-9]+)", body)):
        index = IndexBinaryHNSW(d, int(m.group(1)))
    elif (m := re.fullmatch(r"BHash([0-9]+)x([0-9]+)", body)):
        index = IndexBinaryMultiHash(d, int(m.group(1)), int(m.group(2)))
    elif (m := re.fullmatch(r"BHash([0-9]+)", body)):
        index = IndexBinaryHash(d, int(m.group(1)))
    else:
        raise InvalidArgumentError(
            f"index_binary_factory: unknown description '{body}'; supported: BFlat, BIVF<nlist>, "
            "BIVF<nlist>_HNSW<M>, BHNSW<M>, BHash<b>, BHash<nhash>x<b>, with an optional IDMap/IDMap2 wrapper")
    if wrap == "IDMap":
        index = IndexBinaryIDMap(index)
    elif wrap == "IDMap2":
        index = IndexBinaryIDMap2(index)
    return index
