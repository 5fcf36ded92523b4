"""Hamming utilities: Faiss's array and pointer (swig_ptr) forms."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._checks import ArrayLike, check_k
from .._core import InvalidArgumentError
from ..compat import ptr_array
from .index import as_codes


# ---- Hamming utilities -------------------------------------------------------------
def knn_hamming(xq: ArrayLike, xb: ArrayLike, k: int, variant: str = "hc") -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest codes of xq among xb: (D int32 (nq, k), I int64 (nq, k)).
    variant ("hc" / "mc", Faiss's two algorithms) gives the same results here."""
    xb = as_codes(xb, None, "xb")
    xq = as_codes(xq, xb.shape[1], "xq")
    return _core._hamming_knn(xq, xb, check_k(k))


hamming_knn = knn_hamming


def pairwise_hamming(a: ArrayLike, b: ArrayLike) -> np.ndarray:
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


def popcount64(x: int) -> int:
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


def fvecs2bitvecs(x: ArrayLike) -> np.ndarray:
    """Faiss's fvecs2bitvecs in array form: bit set where x > 0."""
    return _core._real_to_binary(np.ascontiguousarray(x, dtype=np.float32))


def bitvecs2fvecs(codes: ArrayLike) -> np.ndarray:
    """Inverse of fvecs2bitvecs up to sign: bits -> 0 / 1 floats."""
    codes = as_codes(codes, None, "codes")
    return (_core._binary_to_real(codes, codes.shape[1] * 8) > 0).astype(np.float32)
