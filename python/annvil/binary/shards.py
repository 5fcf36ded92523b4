"""IndexBinaryShards / IndexBinaryReplicas: Python collections of binary indexes."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .._checks import ArrayLike, check_int, check_k, into
from .._core import IndexBinary, InvalidArgumentError, InvalidTypeError, SearchParameters
from .index import as_codes


# ---- shards and replicas --------------------------------------------------------------
class _IndexBinaryCollection:
    """Common part of IndexBinaryShards / IndexBinaryReplicas: a list of binary
    indexes of the same d (each search releases the GIL in its index)."""

    search: Callable[..., tuple[np.ndarray, np.ndarray]]  # each subclass's

    def __init__(self, d: int | bool | None = None, threaded: bool = False, successive_ids: bool = True) -> None:
        if isinstance(d, bool):  # IndexBinaryReplicas(threaded)
            threaded, d = d, None
        self._d = None if d is None else check_int(d, "d", minimum=8)
        self.threaded = bool(threaded)
        self.successive_ids = bool(successive_ids)
        self.own_indices = False
        self._indexes: list[IndexBinary] = []

    @property
    def d(self) -> int | None:
        if self._d is None and self._indexes:
            return self._indexes[0].d
        return self._d

    @property
    def code_size(self) -> int | None:
        return None if self.d is None else self.d // 8

    @property
    def is_trained(self) -> bool:
        return all(i.is_trained for i in self._indexes)

    def count(self) -> int:
        return len(self._indexes)

    def at(self, i: int) -> IndexBinary:
        return self._indexes[i]

    def _add_sub(self, index):
        if not isinstance(index, IndexBinary):
            raise InvalidTypeError(f"expected a binary index, got {type(index).__name__}")
        if self.d is not None and index.d != self.d:
            raise InvalidArgumentError(f"sub-index has d={index.d}, expected d={self.d}")
        self._indexes.append(index)

    def train(self, x: ArrayLike) -> None:
        for i in self._indexes:
            i.train(x)

    def reset(self) -> None:
        for i in self._indexes:
            i.reset()

    def assign(self, x: ArrayLike, k: int, labels: np.ndarray | None = None) -> np.ndarray:
        return self.search(x, k, I=labels)[1]


class IndexBinaryShards(_IndexBinaryCollection):
    """Faiss's IndexBinaryShards: the database split over sub-indexes; a
    search asks every shard and merges (ids offset by the sizes of the
    previous shards when successive_ids)."""

    def add_shard(self, index: IndexBinary) -> None:
        self._add_sub(index)

    addIndex = add_shard

    def remove_shard(self, index: IndexBinary) -> None:
        self._indexes.remove(index)

    @property
    def ntotal(self) -> int:
        return sum(i.ntotal for i in self._indexes)

    def add(self, x: ArrayLike) -> None:
        """Split x over the shards in contiguous blocks of equal size."""
        x = as_codes(x, self.code_size, "x")
        n, m = x.shape[0], len(self._indexes)
        if m == 0:
            raise InvalidArgumentError("IndexBinaryShards has no shard: add_shard() first")
        for j, idx in enumerate(self._indexes):
            idx.add(x[j * n // m:(j + 1) * n // m])

    def search(self, x: ArrayLike, k: int, params: SearchParameters | None = None, D: np.ndarray | None = None,
               I: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        from ..utils import merge_knn_results
        x = as_codes(x, self.code_size, "queries")
        k = check_k(k)
        if not self._indexes:
            raise InvalidArgumentError("IndexBinaryShards has no shard: add_shard() first")
        Ds, Is, off = [], [], 0
        for idx in self._indexes:
            Dj, Ij = idx.search(x, k, params)
            if self.successive_ids:
                Ij = np.where(Ij >= 0, Ij + off, -1)
            off += idx.ntotal
            Ds.append(Dj)
            Is.append(Ij)
        Dr, Ir = merge_knn_results(np.stack(Ds), np.stack(Is))
        return into(D, Dr), into(I, Ir)


class IndexBinaryReplicas(_IndexBinaryCollection):
    """Faiss's IndexBinaryReplicas: copies of the same database; add() goes
    to every replica, a search splits the queries between them."""

    def add_replica(self, index: IndexBinary) -> None:
        self._add_sub(index)

    addIndex = add_replica

    def remove_replica(self, index: IndexBinary) -> None:
        self._indexes.remove(index)

    @property
    def ntotal(self) -> int:
        return self._indexes[0].ntotal if self._indexes else 0

    def add(self, x: ArrayLike) -> None:
        x = as_codes(x, self.code_size, "x")
        for idx in self._indexes:
            idx.add(x)

    def search(self, x: ArrayLike, k: int, params: SearchParameters | None = None, D: np.ndarray | None = None,
               I: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        x = as_codes(x, self.code_size, "queries")
        k = check_k(k)
        m = len(self._indexes)
        if m == 0:
            raise InvalidArgumentError("IndexBinaryReplicas has no replica: add_replica() first")
        n = x.shape[0]
        Dr = np.empty((n, k), np.int32)
        Ir = np.empty((n, k), np.int64)
        for j, idx in enumerate(self._indexes):
            i0, i1 = j * n // m, (j + 1) * n // m
            if i1 > i0:
                Dr[i0:i1], Ir[i0:i1] = idx.search(x[i0:i1], k, params)
        return into(D, Dr), into(I, Ir)
