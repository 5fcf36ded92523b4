"""annvil: binary indexes (Faiss's IndexBinary family) and Hamming utilities.

    index = annvil.IndexBinaryFlat(d)          # d bits, codes of d // 8 bytes
    index.add(codes)                            # uint8 (n, d // 8)
    D, I = index.search(queries, k)             # D int32 Hamming distances, I int64

Other indexes: IndexBinaryIVF(quantizer, d, nlist), IndexBinaryHNSW(d, M),
IndexBinaryHash(d, b), IndexBinaryMultiHash(d, nhash, b),
IndexBinaryFromFloat(float_index), IndexBinaryIDMap / IndexBinaryIDMap2,
IndexBinaryShards / IndexBinaryReplicas; index_binary_factory(d, "BIVF1024").
Files: write_index_binary / read_index_binary (annvil's format, see io.h).
"""
from __future__ import annotations

import numbers
import os

import numpy as np

from . import _core
from ._checks import as_ids, check_int, check_k
from ._core import (  # noqa: F401
    IndexBinary,
    IndexBinaryFlat,
    IndexBinaryFromFloat,
    IndexBinaryHash,
    IndexBinaryHashStats,
    IndexBinaryHNSW,
    IndexBinaryIDMap,
    IndexBinaryIDMap2,
    IndexBinaryIVF,
    IndexBinaryMultiHash,
    InvalidArgumentError,
    InvalidTypeError,
    NotTrainedError,
)
from ._index_methods import strict_setattr
from ._selectors import IDSelector, IDSelectorBatch, as_selector
from .compat import ptr_array

__all__ = ["IndexBinary", "IndexBinaryFlat", "IndexBinaryIVF", "IndexBinaryHNSW", "IndexBinaryHash",
           "IndexBinaryMultiHash", "IndexBinaryHashStats", "IndexBinaryFromFloat", "IndexBinaryIDMap",
           "IndexBinaryIDMap2", "IndexBinaryShards", "IndexBinaryReplicas", "index_binary_factory",
           "write_index_binary", "read_index_binary", "serialize_index_binary", "deserialize_index_binary",
           "clone_binary_index", "downcast_IndexBinary", "knn_hamming", "hamming_knn", "pairwise_hamming",
           "hammings", "hammings_knn", "hammings_knn_hc", "hammings_knn_mc", "hamming_count_thres",
           "crosshamming_count_thres", "match_hamming_thres", "generalized_hammings_knn_hc",
           "int_maxheap_array_t", "bitvec_shuffle", "popcount64", "binary_to_real", "real_to_binary",
           "fvecs2bitvecs", "bitvecs2fvecs", "shard_binary_ivf_index_centroids"]


# ---- input conversion --------------------------------------------------------------
def as_codes(x, code_size=None, what="x"):
    """x as a C-contiguous uint8 (n, code_size) array.  Integer arrays with
    values in [0, 255] are converted (Faiss casts them too); anything else raises."""
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "iu":
            raise InvalidTypeError(
                f"{what} must hold binary codes as uint8 (d / 8 bytes per vector), got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise InvalidArgumentError(f"{what} holds values outside [0, 255]: codes are bytes")
    if arr.ndim == 1 and code_size is not None:
        if arr.shape[0] != code_size:
            raise InvalidArgumentError(
                f"{what} is a 1-D array of length {arr.shape[0]}; expected one code of {code_size} bytes "
                f"or a 2-D array of shape (n, {code_size})")
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise InvalidArgumentError(f"{what} must be a 2-D uint8 array of shape (n, d / 8), got shape {arr.shape}")
    if code_size is not None and arr.shape[1] != code_size:
        raise InvalidArgumentError(
            f"{what} has {arr.shape[1]} bytes per vector, but the index has code_size={code_size} "
            f"(d={code_size * 8} bits)")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _require_trained(index):
    if not index.is_trained:
        raise NotTrainedError(
            f"{type(index).__name__} is not trained: call index.train(x) before add() or search()")


def _check_params(params):
    if params is not None and not isinstance(params, _core.SearchParameters):
        raise InvalidArgumentError(f"params must be a SearchParameters object, got {type(params).__name__}")
    return params


def _check_radius(radius):
    if isinstance(radius, (float, np.floating)):
        if not np.isfinite(radius):
            raise InvalidArgumentError(f"radius must be finite, got {radius}")
        radius = int(np.ceil(radius))  # distance < radius, distances are integers
    if isinstance(radius, bool) or not isinstance(radius, numbers.Integral):
        raise InvalidTypeError(f"radius must be an integer Hamming distance, got {type(radius).__name__}")
    return int(max(min(int(radius), 2**31 - 1), -2**31))


# ---- methods of every binary index ---------------------------------------------------
def _train(self, x):
    """Train on representative codes x (n, code_size) uint8."""
    self._train(as_codes(x, self.code_size, "training vectors"))


def _add(self, x):
    """Add codes x (n, code_size) uint8; their ids are ntotal, ntotal + 1, ..."""
    x = as_codes(x, self.code_size, "x")
    _require_trained(self)
    self._add(x)


def _add_with_ids(self, x, ids):
    """Add codes x (n, code_size) under the given int64 ids."""
    x = as_codes(x, self.code_size, "x")
    ids = as_ids(ids, x.shape[0])
    _require_trained(self)
    self._add_with_ids(x, ids)


def _search(self, x, k, params=None, D=None, I=None):
    """k nearest codes of each query: (D int32 (n, k) Hamming distances,
    I int64 (n, k)); missing results are (INT32_MAX, -1), as in Faiss."""
    x = as_codes(x, self.code_size, "queries")
    k = check_k(k)
    _require_trained(self)
    Dr, Ir = self._search(x, k, _check_params(params))
    if D is not None:
        D[...] = Dr
        Dr = D
    if I is not None:
        I[...] = Ir
        Ir = I
    return Dr, Ir


def _assign(self, x, k, labels=None):
    """Ids of the k nearest codes (the I of search)."""
    return self.search(x, k, I=labels)[1]


def _range_search(self, x, thresh, params=None):
    """All codes at Hamming distance < thresh: (lims, D int32, I int64); the
    results of query i are D[lims[i]:lims[i+1]], I[lims[i]:lims[i+1]]."""
    x = as_codes(x, self.code_size, "queries")
    radius = _check_radius(thresh)
    _require_trained(self)
    return self._range_search(x, radius, _check_params(params))


def _reconstruct(self, key, x=None):
    """The stored code with id `key` (code_size bytes)."""
    out = self._reconstruct(check_int(key, "key"))
    if x is not None:
        x[...] = out
        return x
    return out


def _reconstruct_n(self, n0=0, ni=-1, x=None):
    """Codes n0 .. n0 + ni - 1 as an (ni, code_size) uint8 array (ni = -1: up to ntotal)."""
    n0 = check_int(n0, "n0", minimum=0)
    ni = check_int(ni, "ni")
    if ni < 0:
        ni = self.ntotal - n0
    if n0 + ni > self.ntotal:
        raise InvalidArgumentError(f"reconstruct_n({n0}, {ni}) goes past ntotal={self.ntotal}")
    out = self._reconstruct_n(n0, ni)
    if x is not None:
        x[...] = out
        return x
    return out


def _remove_ids(self, x):
    """Remove the codes whose ids are selected (IDSelector, id array or boolean
    mask); returns how many were removed."""
    if not isinstance(x, IDSelector):
        arr = np.asarray(x)
        sel = IDSelectorBatch(as_ids(arr)) if arr.dtype != np.bool_ else as_selector(arr)
    else:
        sel = x
    return int(self._remove_ids(sel))


def _reduce(self):
    return deserialize_index_binary, (serialize_index_binary(self),)


def _repr(self):
    return f"<annvil.{type(self).__name__} d={self.d} ntotal={self.ntotal}>"


for _name, _fn in [("train", _train), ("add", _add), ("add_with_ids", _add_with_ids), ("search", _search),
                   ("assign", _assign), ("range_search", _range_search), ("reconstruct", _reconstruct),
                   ("reconstruct_n", _reconstruct_n), ("remove_ids", _remove_ids), ("__reduce__", _reduce),
                   ("__repr__", _repr), ("__setattr__", strict_setattr)]:
    setattr(IndexBinary, _name, _fn)


# ---- IndexBinaryIVF extras -----------------------------------------------------------
def _ivf_search_preassigned(self, x, k, assign, centroid_dis=None, params=None, *, D=None, I=None):
    """Search with given coarse assignments (n, nprobe) (-1: skip);
    centroid_dis is accepted for Faiss's signature and not used."""
    x = as_codes(x, self.code_size, "queries")
    k = check_k(k)
    assign = np.ascontiguousarray(assign, dtype=np.int64).reshape(x.shape[0], -1)
    Dr, Ir = self._search_preassigned(x, k, assign, _check_params(params))
    if D is not None:
        D[...] = Dr
        Dr = D
    if I is not None:
        I[...] = Ir
        Ir = I
    return Dr, Ir


def _ivf_range_search_preassigned(self, x, thresh, assign, centroid_dis=None, params=None):
    x = as_codes(x, self.code_size, "queries")
    assign = np.ascontiguousarray(assign, dtype=np.int64).reshape(x.shape[0], -1)
    return self._range_search_preassigned(x, _check_radius(thresh), assign, _check_params(params))


def _ivf_add_preassigned(self, x, list_nos, ids=None):
    """Add codes to the given lists (list_nos: n ints, -1: not added)."""
    x = as_codes(x, self.code_size, "x")
    list_nos = as_ids(list_nos, x.shape[0], "list_nos")
    ids = np.arange(self.ntotal, self.ntotal + x.shape[0], dtype=np.int64) if ids is None else \
        as_ids(ids, x.shape[0])
    self._add_preassigned(x, list_nos, ids)


def _get_clustering_index(self):
    return self.__dict__.get("_clustering_index")


def _set_clustering_index(self, index):
    # Faiss clusters the +-1 expansion of the codes with this float index's
    # assignments; annvil's k-means always assigns exactly (see kmeans.py), so
    # the index is kept (and must have dimension d) but does not change the result
    if index is not None:
        if not isinstance(index, _core.Index):
            raise InvalidTypeError(f"clustering_index must be a float index, got {type(index).__name__}")
        if index.d != self.d:
            raise InvalidArgumentError(f"clustering_index has d={index.d}, the binary index has d={self.d}")
    self.__dict__["_clustering_index"] = index


IndexBinaryIVF.search_preassigned = _ivf_search_preassigned
IndexBinaryIVF.range_search_preassigned = _ivf_range_search_preassigned
IndexBinaryIVF.add_preassigned = _ivf_add_preassigned
IndexBinaryIVF.clustering_index = property(_get_clustering_index, _set_clustering_index,
                                           doc="float index for the k-means assignments (see above)")
IndexBinaryIVF.own_invlists = property(lambda self: True, lambda self, v: None)


# ---- shards and replicas --------------------------------------------------------------
class _IndexBinaryCollection:
    """Common part of IndexBinaryShards / IndexBinaryReplicas: a list of binary
    indexes of the same d (each search releases the GIL in its index)."""

    def __init__(self, d=None, threaded=False, successive_ids=True):
        if isinstance(d, bool):  # IndexBinaryReplicas(threaded)
            threaded, d = d, None
        self._d = None if d is None else check_int(d, "d", minimum=8)
        self.threaded = bool(threaded)
        self.successive_ids = bool(successive_ids)
        self.own_indices = False
        self._indexes = []

    @property
    def d(self):
        if self._d is None and self._indexes:
            return self._indexes[0].d
        return self._d

    @property
    def code_size(self):
        return None if self.d is None else self.d // 8

    @property
    def is_trained(self):
        return all(i.is_trained for i in self._indexes)

    def count(self):
        return len(self._indexes)

    def at(self, i):
        return self._indexes[i]

    def _add_sub(self, index):
        if not isinstance(index, IndexBinary):
            raise InvalidTypeError(f"expected a binary index, got {type(index).__name__}")
        if self.d is not None and index.d != self.d:
            raise InvalidArgumentError(f"sub-index has d={index.d}, expected d={self.d}")
        self._indexes.append(index)

    def train(self, x):
        for i in self._indexes:
            i.train(x)

    def reset(self):
        for i in self._indexes:
            i.reset()

    def assign(self, x, k, labels=None):
        return self.search(x, k, I=labels)[1]


class IndexBinaryShards(_IndexBinaryCollection):
    """Faiss's IndexBinaryShards: the database split over sub-indexes; a
    search asks every shard and merges (ids offset by the sizes of the
    previous shards when successive_ids)."""

    def add_shard(self, index):
        self._add_sub(index)

    addIndex = add_shard

    def remove_shard(self, index):
        self._indexes.remove(index)

    @property
    def ntotal(self):
        return sum(i.ntotal for i in self._indexes)

    def add(self, x):
        """Split x over the shards in contiguous blocks of equal size."""
        x = as_codes(x, self.code_size, "x")
        n, m = x.shape[0], len(self._indexes)
        if m == 0:
            raise InvalidArgumentError("IndexBinaryShards has no shard: add_shard() first")
        for j, idx in enumerate(self._indexes):
            idx.add(x[j * n // m:(j + 1) * n // m])

    def search(self, x, k, params=None, D=None, I=None):
        from .utils import merge_knn_results
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
        if D is not None:
            D[...] = Dr
            Dr = D
        if I is not None:
            I[...] = Ir
            Ir = I
        return Dr, Ir


class IndexBinaryReplicas(_IndexBinaryCollection):
    """Faiss's IndexBinaryReplicas: copies of the same database; add() goes
    to every replica, a search splits the queries between them."""

    def add_replica(self, index):
        self._add_sub(index)

    addIndex = add_replica

    def remove_replica(self, index):
        self._indexes.remove(index)

    @property
    def ntotal(self):
        return self._indexes[0].ntotal if self._indexes else 0

    def add(self, x):
        x = as_codes(x, self.code_size, "x")
        for idx in self._indexes:
            idx.add(x)

    def search(self, x, k, params=None, D=None, I=None):
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
        if D is not None:
            D[...] = Dr
            Dr = D
        if I is not None:
            I[...] = Ir
            Ir = I
        return Dr, Ir


# ---- factory ---------------------------------------------------------------------
def index_binary_factory(d, description):
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


# ---- files -------------------------------------------------------------------------
def _check_binary(index, fn):
    if not isinstance(index, IndexBinary):
        raise InvalidTypeError(f"{fn} needs an annvil binary index, got {type(index).__name__}")


def write_index_binary(index, path, format="annvil"):
    """Write a binary index to path atomically (or to an IOWriter / file object);
    format="faiss" writes Faiss's format (faiss.read_index_binary reads it)."""
    _check_binary(index, "write_index_binary")
    from . import _check_format
    faiss_fmt = _check_format(format)
    if not isinstance(path, (str, bytes, os.PathLike)):
        from .pyio import write_to
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


def read_index_binary(path, io_flags=0, *, mmap=False, verify=None):
    """Read a binary index written by write_index_binary (mmap as read_index)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        from .pyio import read_from
        return deserialize_index_binary(read_from(path))
    from . import IO_FLAG_MMAP
    if _is_faiss_file(path):  # Faiss's format: read (copied), mmap or not
        return _core.faiss_read_index_binary(os.fsdecode(path))
    use_mmap = bool(mmap) or (int(io_flags) & IO_FLAG_MMAP) == IO_FLAG_MMAP
    if verify is None:
        verify = not use_mmap
    return _core.read_index_binary(os.fsdecode(path), use_mmap, bool(verify))


def serialize_index_binary(index, format="annvil"):
    """The binary index file bytes as a uint8 numpy array (format="faiss": Faiss's format)."""
    _check_binary(index, "serialize_index_binary")
    from . import _check_format
    if _check_format(format):
        return _core.faiss_serialize_index_binary(index)
    return _core.serialize_index_binary(index)


def deserialize_index_binary(data):
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


def clone_binary_index(index):
    """A deep copy of a binary index (through its serialized form)."""
    return deserialize_index_binary(serialize_index_binary(index))


def downcast_IndexBinary(index):
    """Identity: annvil returns the most derived type already."""
    return index


# ---- Hamming utilities -------------------------------------------------------------
def knn_hamming(xq, xb, k, variant="hc"):
    """Exact k nearest codes of xq among xb: (D int32 (nq, k), I int64 (nq, k)).
    variant ("hc" / "mc", Faiss's two algorithms) gives the same results here."""
    xb = as_codes(xb, None, "xb")
    xq = as_codes(xq, xb.shape[1], "xq")
    return _core._hamming_knn(xq, xb, check_k(k))


hamming_knn = knn_hamming


def pairwise_hamming(a, b):
    """All distances between the codes of a and b: int32 (na, nb)."""
    b = as_codes(b, None, "b")
    return _core._hammings(as_codes(a, b.shape[1], "a"), b)


def _codes_at(p, n, ncodes, what):
    return np.ascontiguousarray(ptr_array(p, np.uint8, int(n) * int(ncodes), what).reshape(int(n), int(ncodes)))


def hammings(a, b, na, nb, ncodes, dis):
    """Faiss's pointer form: dis[i * nb + j] = distance(a_i, b_j) (int32)."""
    A, B = _codes_at(a, na, ncodes, "a"), _codes_at(b, nb, ncodes, "b")
    ptr_array(dis, np.int32, int(na) * int(nb), "dis", writable=True)[...] = _core._hammings(A, B).ravel()


def hammings_knn_mc(a, b, na, nb, k, ncodes, distances, labels):
    """Faiss's pointer form of the k-NN of the na codes a among the nb codes b."""
    A, B = _codes_at(a, na, ncodes, "a"), _codes_at(b, nb, ncodes, "b")
    D, I = _core._hamming_knn(A, B, check_k(k))
    ptr_array(distances, np.int32, D.size, "distances", writable=True)[...] = D.ravel()
    ptr_array(labels, np.int64, I.size, "labels", writable=True)[...] = I.ravel()


class int_maxheap_array_t:
    """Faiss's int_maxheap_array_t: nh heaps of k int32 values (val) and
    int64 ids (ids), set to swig_ptr(D) / swig_ptr(I)."""

    def __init__(self):
        self.nh = 0
        self.k = 0
        self.ids = None
        self.val = None

    def _store(self, D, I):
        n = int(self.nh) * int(self.k)
        ptr_array(self.val, np.int32, n, "val", writable=True)[...] = D.ravel()
        ptr_array(self.ids, np.int64, n, "ids", writable=True)[...] = I.ravel()


def hammings_knn_hc(ha, a, b, nb, ncodes, ordered=True, approx_topk_mode=None):
    """Faiss's heap form: the ha.nh codes a against the nb codes b, into ha."""
    A, B = _codes_at(a, ha.nh, ncodes, "a"), _codes_at(b, nb, ncodes, "b")
    ha._store(*_core._hamming_knn(A, B, check_k(ha.k)))


hammings_knn = hammings_knn_hc


def generalized_hammings_knn_hc(ha, a, b, nb, code_size, ordered=True):
    """k nearest by generalized Hamming distance (number of differing bytes), into ha."""
    A, B = _codes_at(a, ha.nh, code_size, "a"), _codes_at(b, nb, code_size, "b")
    ha._store(*_core._generalized_hammings_knn(A, B, check_k(ha.k)))


def _count_out(nptr, value):
    if nptr is None:
        return int(value)
    ptr_array(nptr, np.uint64, 1, "nptr", writable=True)[0] = value
    return int(value)


def hamming_count_thres(bs1, bs2, n1, n2, ht, ncodes, nptr=None):
    """Number of pairs (i, j) at distance <= ht, written to nptr[0] (and returned)."""
    A, B = _codes_at(bs1, n1, ncodes, "bs1"), _codes_at(bs2, n2, ncodes, "bs2")
    return _count_out(nptr, _core._hamming_count_thres(A, B, int(ht)))


def crosshamming_count_thres(dbs, n, ht, ncodes, nptr=None):
    """Number of pairs i < j of the n codes at distance <= ht, into nptr[0] (and returned)."""
    return _count_out(nptr, _core._crosshamming_count_thres(_codes_at(dbs, n, ncodes, "dbs"), int(ht)))


def match_hamming_thres(bs1, bs2, n1, n2, ht, ncodes, idx, dis):
    """Every pair at distance <= ht: idx gets (i, j) int64 pairs, dis the int32
    distances; returns the number of pairs (idx / dis must be large enough)."""
    A, B = _codes_at(bs1, n1, ncodes, "bs1"), _codes_at(bs2, n2, ncodes, "bs2")
    pairs, d = _core._match_hamming_thres(A, B, int(ht))
    c = d.shape[0]
    ptr_array(idx, np.int64, 2 * c, "idx", writable=True)[...] = pairs.ravel()
    ptr_array(dis, np.int32, c, "dis", writable=True)[...] = d
    return int(c)


def bitvec_shuffle(n, da, db, order, a, b):
    """Output bit j of each of the n vectors is input bit order[j] (da -> db bits)."""
    n, da, db = int(n), int(da), int(db)
    if da % 8 or db % 8:
        raise InvalidArgumentError(f"bitvec_shuffle: bit counts must be multiples of 8, got {da} and {db}")
    A = _codes_at(a, n, da // 8, "a")
    o = np.ascontiguousarray(ptr_array(order, np.int32, db, "order"))
    ptr_array(b, np.uint8, n * db // 8, "b", writable=True)[...] = _core._bitvec_shuffle(A, o).ravel()


def popcount64(x):
    """Number of bits set in a 64-bit integer."""
    return bin(int(x) & 0xFFFFFFFFFFFFFFFF).count("1")


def binary_to_real(d, x_in=None, x_out=None):
    """Codes of d bits -> +-1 floats (bit 1 -> +1).  Array form:
    binary_to_real(codes (n, d / 8)) -> (n, d); pointer form: (d, x_in, x_out)."""
    if x_out is None and isinstance(d, np.ndarray):
        codes = as_codes(d, None, "codes")
        return _core._binary_to_real(codes, codes.shape[1] * 8)
    d = int(d)
    out = _core._binary_to_real(_codes_at(x_in, 1, d // 8, "x_in").reshape(-1, d // 8), d)
    ptr_array(x_out, np.float32, d, "x_out", writable=True)[...] = out.ravel()


def real_to_binary(d, x_in=None, x_out=None):
    """Floats -> codes, bit set where x > 0.  Array form: real_to_binary(x (n, d))
    -> (n, d / 8); pointer form: (d, x_in, x_out)."""
    if x_out is None and isinstance(d, np.ndarray):
        return _core._real_to_binary(np.ascontiguousarray(d, dtype=np.float32))
    d = int(d)
    if d % 8:
        raise InvalidArgumentError(f"real_to_binary: d must be a multiple of 8, got {d}")
    out = _core._real_to_binary(np.ascontiguousarray(ptr_array(x_in, np.float32, d, "x_in")).reshape(1, d))
    ptr_array(x_out, np.uint8, d // 8, "x_out", writable=True)[...] = out.ravel()


def fvecs2bitvecs(x):
    """Faiss's fvecs2bitvecs in array form: bit set where x > 0."""
    return _core._real_to_binary(np.ascontiguousarray(x, dtype=np.float32))


def bitvecs2fvecs(codes):
    """Inverse of fvecs2bitvecs up to sign: bits -> 0 / 1 floats."""
    codes = as_codes(codes, None, "codes")
    return (_core._binary_to_real(codes, codes.shape[1] * 8) > 0).astype(np.float32)


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
