"""Binary index files (annvil's and Faiss's formats), cloning, and ivflib's
shard_binary_ivf_index_centroids (which writes one file per shard)."""
from __future__ import annotations

import os

import numpy as np

from .. import _core
from .._checks import ArrayLike, check_int
from .._core import (
    IndexBinary,
    IndexBinaryFlat,
    IndexBinaryHNSW,
    IndexBinaryIDMap2,
    IndexBinaryIVF,
    InvalidArgumentError,
    InvalidTypeError,
)


# ---- files -------------------------------------------------------------------------
def _check_binary(index, fn):
    if not isinstance(index, IndexBinary):
        raise InvalidTypeError(f"{fn} needs an annvil binary index, got {type(index).__name__}")


def write_index_binary(index: IndexBinary, path: str | os.PathLike | object, format: str = "annvil") -> None:
    """Write a binary index to path atomically (or to an IOWriter / file object);
    format="faiss" writes Faiss's format (faiss.read_index_binary reads it)."""
    _check_binary(index, "write_index_binary")
    from .. import _check_format
    faiss_fmt = _check_format(format)
    if not isinstance(path, (str, bytes, os.PathLike)):
        from ..pyio import write_to
        write_to(path, serialize_index_binary(index, format=format))
        return
    if faiss_fmt:
        _core.faiss_write_index_binary(index, os.fsdecode(path))
        return
    _core.write_index_binary(index, os.fsdecode(path))


def _is_faiss_file(path):
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False  # the reader reports the error
    return _core.is_faiss_data(head)  # a float Faiss file gets a clear error there


def read_index_binary(path: str | os.PathLike | object, io_flags: int = 0, *, mmap: bool = False,
                      verify: bool | None = None) -> IndexBinary:
    """Read a binary index written by write_index_binary (mmap as read_index)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        from ..pyio import read_from
        return deserialize_index_binary(read_from(path))
    from .. import IO_FLAG_MMAP
    if _is_faiss_file(path):  # Faiss's format: read (copied), mmap or not
        return _core.faiss_read_index_binary(os.fsdecode(path))
    use_mmap = bool(mmap) or (int(io_flags) & IO_FLAG_MMAP) == IO_FLAG_MMAP
    if verify is None:
        verify = not use_mmap
    return _core.read_index_binary(os.fsdecode(path), use_mmap, bool(verify))


def serialize_index_binary(index: IndexBinary, format: str = "annvil") -> np.ndarray:
    """The binary index file bytes as a uint8 numpy array (format="faiss": Faiss's format)."""
    _check_binary(index, "serialize_index_binary")
    from .. import _check_format
    if _check_format(format):
        return _core.faiss_serialize_index_binary(index)
    return _core.serialize_index_binary(index)


def deserialize_index_binary(data: ArrayLike | bytes) -> IndexBinary:
    """Inverse of serialize_index_binary (a uint8 array or bytes)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = np.frombuffer(data, dtype=np.uint8)
    arr = np.asarray(data)
    if arr.dtype != np.uint8:
        raise InvalidTypeError(f"serialized index must be uint8, got {arr.dtype}")
    arr = np.ascontiguousarray(arr.ravel())
    if _core.is_faiss_data(arr[:4].tobytes()):  # Faiss's format
        return _core.faiss_deserialize_index_binary(arr)
    return _core.deserialize_index_binary(arr)


def clone_binary_index(index: IndexBinary) -> IndexBinary:
    """A deep copy of a binary index (through its serialized form)."""
    return deserialize_index_binary(serialize_index_binary(index))


def downcast_IndexBinary(index: IndexBinary) -> IndexBinary:
    """Identity: annvil returns the most derived type already."""
    return index


# ---- ivflib -------------------------------------------------------------------------
def _empty_like_quantizer(q):
    if isinstance(q, IndexBinaryHNSW):
        out = IndexBinaryHNSW(q.d, q.hnsw.M)
        out.hnsw.efConstruction, out.hnsw.efSearch = q.hnsw.efConstruction, q.hnsw.efSearch
        return out
    if isinstance(q, IndexBinaryFlat):
        return IndexBinaryFlat(q.d)
    raise InvalidArgumentError(
        f"shard_binary_ivf_index_centroids supports IndexBinaryFlat and IndexBinaryHNSW quantizers, "
        f"got {type(q).__name__}")


def shard_binary_ivf_index_centroids(index, shard_count=20, filename_template="shard.%d.index",
                                     sharding_function=None, generate_ids=False):
    """Faiss's ivflib.shard_binary_ivf_index_centroids: split the centroids
    held by index.quantizer over shard_count empty IVF indexes (centroid i goes
    to shard sharding_function(i, shard_count), default i % shard_count) and
    write shard j to filename_template % j.  With generate_ids each shard's
    quantizer is an IndexBinaryIDMap2 keeping the centroids' original ids."""
    if not isinstance(index, IndexBinaryIVF):
        raise InvalidTypeError(f"expected an IndexBinaryIVF, got {type(index).__name__}")
    shard_count = check_int(shard_count, "shard_count", minimum=1)
    q = index.quantizer
    if q.ntotal == 0:
        raise InvalidArgumentError("the quantizer holds no centroids: add them before sharding")
    cent = q.reconstruct_n(0, q.ntotal)
    if sharding_function is None:
        shard_of = np.arange(q.ntotal) % shard_count
    else:
        fn = sharding_function if callable(sharding_function) else sharding_function.__call__
        shard_of = np.array([int(fn(i, shard_count)) for i in range(q.ntotal)])
        if shard_of.size and (shard_of.min() < 0 or shard_of.max() >= shard_count):
            raise InvalidArgumentError("sharding_function returned a shard number out of [0, shard_count)")
    for j in range(shard_count):
        ids = np.nonzero(shard_of == j)[0].astype(np.int64)
        sub = _empty_like_quantizer(q)
        if generate_ids:
            sub = IndexBinaryIDMap2(sub)
            sub.add_with_ids(cent[ids], ids)
        else:
            sub.add(cent[ids])
        shard = IndexBinaryIVF(sub, index.d, index.nlist)
        shard.nprobe = index.nprobe
        write_index_binary(shard, filename_template % j)
