"""Faiss's module-level utilities, with Faiss's Python signatures, over the
C++ in cpp/utils.*: random data (the same values as Faiss for the same seed),
kmin/kmax, ResultHeap, merge_knn_results, ranklist intersections,
MatrixStats, and the pointer-taking vector helpers (fvec_madd...) that accept
``swig_ptr(array)`` or plain arrays."""
from __future__ import annotations

import numbers

import numpy as np

from . import _core
from ._core import METRIC_INNER_PRODUCT, METRIC_L2, InvalidArgumentError, InvalidTypeError
from ._checks import ArrayLike, check_k
from .compat import ptr_array

__all__ = ["rand", "randn", "randint", "lrand", "rand_smooth_vectors", "byte_rand", "float_rand", "float_randn",
           "int64_rand", "int64_rand_max", "rand_perm", "kmin", "kmax", "ResultHeap", "merge_knn_results",
           "ranklist_intersection_size", "eval_intersection", "imbalance_factor", "MatrixStats", "fvec_madd",
           "fvec_madd_and_argmin", "fvec_L2sqr_ny", "fvec_inner_products_ny", "fvec_L2sqr", "fvec_inner_product",
           "fvec_norm_L2sqr", "pairwise_indexed_L2sqr", "pairwise_indexed_inner_product", "is_similarity_metric",
           "float_maxheap_array_t", "float_minheap_array_t"]


def _shape(n):
    if isinstance(n, numbers.Integral):
        shape = (int(n),)
    else:
        try:
            shape = tuple(int(s) for s in n)
        except TypeError:
            raise InvalidTypeError(f"size must be an integer or a tuple of integers, got {n!r}") from None
    if any(s < 0 for s in shape):
        raise InvalidArgumentError(f"negative dimension in size {shape}")
    return shape, int(np.prod(shape, dtype=np.int64))


def _seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InvalidTypeError(f"seed must be an integer, got {type(seed).__name__}")
    return int(seed)


# ---- random data -------------------------------------------------------------------
def rand(n: int | tuple[int, ...], seed: int = 12345) -> np.ndarray:
    """Uniform float32 values in [0, 1] of shape n (int or tuple), Faiss's generator."""
    shape, size = _shape(n)
    return _core._float_rand(size, _seed(seed)).reshape(shape)


def randn(n: int | tuple[int, ...], seed: int = 12345) -> np.ndarray:
    """Standard normal float32 values of shape n, Faiss's generator."""
    shape, size = _shape(n)
    return _core._float_randn(size, _seed(seed)).reshape(shape)


def randint(n: int | tuple[int, ...], seed: int = 12345, vmax: int | None = None) -> np.ndarray:
    """int64 values of shape n, in [0, vmax) (or [0, 2^62) without vmax)."""
    shape, size = _shape(n)
    if vmax is None:
        return _core._int64_rand(size, _seed(seed)).reshape(shape)
    vmax = int(vmax)
    if vmax <= 0:
        raise InvalidArgumentError(f"vmax must be positive, got {vmax}")
    return _core._int64_rand_max(size, vmax, _seed(seed)).reshape(shape)


lrand = randint


def rand_smooth_vectors(n: int, d: int, seed: int = 1234) -> np.ndarray:
    """n x d float32 vectors of low intrinsic dimension (compressible), as Faiss's."""
    return _core._rand_smooth_vectors(int(n), int(d), _seed(seed))


# pointer forms: fill the array behind x (swig_ptr or ndarray) with n values
def float_rand(x, n, seed):
    ptr_array(x, np.float32, n, "x", writable=True)[...] = _core._float_rand(int(n), _seed(seed))


def float_randn(x, n, seed):
    ptr_array(x, np.float32, n, "x", writable=True)[...] = _core._float_randn(int(n), _seed(seed))


def int64_rand(x, n, seed):
    ptr_array(x, np.int64, n, "x", writable=True)[...] = _core._int64_rand(int(n), _seed(seed))


def int64_rand_max(x, n, vmax, seed):
    ptr_array(x, np.int64, n, "x", writable=True)[...] = _core._int64_rand_max(int(n), int(vmax), _seed(seed))


def byte_rand(x, n, seed):
    ptr_array(x, np.uint8, n, "x", writable=True)[...] = _core._byte_rand(int(n), _seed(seed))


def rand_perm(perm, n, seed):
    ptr_array(perm, np.int32, n, "perm", writable=True)[...] = _core._rand_perm(int(n), _seed(seed))


# ---- top-k -------------------------------------------------------------------------
def _heap_dtype(a):
    return np.int32 if np.asarray(a).dtype == np.int32 else np.float32


def _topk(array, k, keep_max):
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.ndim != 2:
        raise InvalidArgumentError(f"kmin/kmax need a 2-D array, got shape {array.shape}")
    k = check_k(k)
    m = array.shape[0]
    D = np.empty((m, k), np.float32)
    I = np.empty((m, k), np.int64)
    _core._heap_heapify(D, I, keep_max)
    _core._heap_addn(D, I, keep_max, array, None, None, 0)
    _core._heap_reorder(D, I, keep_max)
    return D, I


def kmin(array: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest values of each row and their column indices: (D, I)."""
    return _topk(array, k, False)


def kmax(array: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest values of each row and their column indices: (D, I)."""
    return _topk(array, k, True)


class ResultHeap:
    """Accumulate per-query results over slices of a dataset; after
    finalize(), self.D / self.I (nq, k) hold the k best, sorted.
    keep_max=True keeps the largest values (inner products)."""

    def __init__(self, nq, k, keep_max=False):
        self.nq, self.k = int(nq), int(k)
        if self.nq < 0 or self.k <= 0:
            raise InvalidArgumentError(f"ResultHeap needs nq >= 0 and k > 0, got nq={nq}, k={k}")
        self.keep_max = bool(keep_max)
        self.D = np.empty((self.nq, self.k), np.float32)
        self.I = np.empty((self.nq, self.k), np.int64)
        _core._heap_heapify(self.D, self.I, self.keep_max)

    def add_result(self, D, I):
        """Add results D, I of shape (nq, n) for every query (any order)."""
        D = np.ascontiguousarray(D, dtype=np.float32)
        I = np.ascontiguousarray(I, dtype=np.int64)
        if D.ndim != 2 or I.shape != D.shape or D.shape[0] != self.nq:
            raise InvalidArgumentError(
                f"add_result needs D and I of shape ({self.nq}, n), got {D.shape} and {I.shape}")
        _core._heap_addn(self.D, self.I, self.keep_max, D, I, None, 0)

    def add_result_subset(self, subset, D, I):
        """Add results for the queries in subset: D (len(subset), n); I of the
        same shape, or 1-D (n,) when all queries share the ids."""
        subset = np.ascontiguousarray(subset, dtype=np.int64).ravel()
        D = np.ascontiguousarray(D, dtype=np.float32)
        I = np.ascontiguousarray(I, dtype=np.int64)
        if D.ndim != 2 or D.shape[0] != subset.size:
            raise InvalidArgumentError(f"D must have shape ({subset.size}, n), got {D.shape}")
        if not (I.shape == D.shape or (I.ndim == 1 and I.shape[0] == D.shape[1])):
            raise InvalidArgumentError(f"I must have shape {D.shape} or ({D.shape[1]},), got {I.shape}")
        _core._heap_addn(self.D, self.I, self.keep_max, D, I, subset, 0)

    def finalize(self):
        """Sort each query's results best first."""
        _core._heap_reorder(self.D, self.I, self.keep_max)


class _HeapArray:
    """Faiss's float_maxheap_array_t / float_minheap_array_t: nh heaps of k
    results kept in caller arrays (ids / val set to swig_ptr(I) / swig_ptr(D))."""

    _keep_max = False

    def __init__(self):
        self.nh = 0
        self.k = 0
        self.ids = None
        self.val = None

    def _arrays(self):
        D = ptr_array(self.val, np.float32, self.nh * self.k, "val", writable=True).reshape(self.nh, self.k)
        I = ptr_array(self.ids, np.int64, self.nh * self.k, "ids", writable=True).reshape(self.nh, self.k)
        return D, I

    def heapify(self):
        _core._heap_heapify(*self._arrays(), self._keep_max)

    def addn(self, nj, vin, j0=0, i0=0, ni=-1):
        D, I = self._arrays()
        ni = self.nh - i0 if ni < 0 else ni
        x = ptr_array(vin, np.float32, ni * nj, "vin").reshape(ni, nj)
        _core._heap_addn(D[i0:i0 + ni], I[i0:i0 + ni], self._keep_max, np.ascontiguousarray(x), None, None, j0) \
            if i0 == 0 and ni == self.nh else \
            _core._heap_addn(D, I, self._keep_max, np.ascontiguousarray(x), None,
                             np.arange(i0, i0 + ni, dtype=np.int64), j0)

    def addn_with_ids(self, nj, vin, id_in=None, id_stride=0, i0=0, ni=-1):
        D, I = self._arrays()
        ni = self.nh - i0 if ni < 0 else ni
        x = np.ascontiguousarray(ptr_array(vin, np.float32, ni * nj, "vin").reshape(ni, nj))
        ids = None
        if id_in is not None:
            stride = int(id_stride) if id_stride else nj
            ids = ptr_array(id_in, np.int64, (ni - 1) * stride + nj if ni else 0, "id_in")
            ids = np.ascontiguousarray(np.stack([ids[i * stride:i * stride + nj] for i in range(ni)])) \
                if ni else np.zeros((0, nj), np.int64)
        _core._heap_addn(D, I, self._keep_max, x, ids, np.arange(i0, i0 + ni, dtype=np.int64), 0)

    def reorder(self):
        _core._heap_reorder(*self._arrays(), self._keep_max)


class float_maxheap_array_t(_HeapArray):
    """Heaps keeping the k smallest values."""
    _keep_max = False


class float_minheap_array_t(_HeapArray):
    """Heaps keeping the k largest values."""
    _keep_max = True


def merge_knn_results(Dall: np.ndarray, Iall: np.ndarray, keep_max: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Merge sorted per-shard results Dall, Iall (nshard, nq, k) into the k best
    (nq, k).  Dall may be float32 or int32."""
    Dall = np.asarray(Dall)
    dt = np.int32 if Dall.dtype == np.int32 else np.float32
    Dall = np.ascontiguousarray(Dall, dtype=dt)
    Iall = np.ascontiguousarray(Iall, dtype=np.int64)
    if Dall.ndim != 3 or Iall.shape != Dall.shape:
        raise InvalidArgumentError(
            f"Dall and Iall must have the same shape (nshard, nq, k), got {Dall.shape} and {Iall.shape}")
    return _core._merge_knn_results(Dall, Iall, bool(keep_max))


# ---- small helpers -----------------------------------------------------------------
def ranklist_intersection_size(k1, v1, k2, v2):
    """Number of distinct non-negative ids in both lists v1[:k1] and v2[:k2]."""
    a = np.ascontiguousarray(ptr_array(v1, np.int64, k1, "v1"))
    b = np.ascontiguousarray(ptr_array(v2, np.int64, k2, "v2"))
    return int(_core._ranklist_intersection_size(a, b))


def eval_intersection(I1: ArrayLike, I2: ArrayLike) -> int:
    """Sum over rows of the size of the intersection of I1[i] and I2[i]."""
    I1 = np.ascontiguousarray(I1, dtype=np.int64)
    I2 = np.ascontiguousarray(I2, dtype=np.int64)
    if I1.ndim != 2 or I2.ndim != 2 or I1.shape[0] != I2.shape[0]:
        raise InvalidArgumentError(f"I1 and I2 must be 2-D with the same rows, got {I1.shape} and {I2.shape}")
    return sum(int(_core._ranklist_intersection_size(I1[i], I2[i])) for i in range(I1.shape[0]))


def imbalance_factor(*args):
    """imbalance_factor(assign, k) or Faiss's imbalance_factor(n, k, assign):
    k * sum(hist^2) / n^2 of an assignment to k lists (1 = perfectly balanced)."""
    if len(args) == 3:
        n, k, assign = args
        assign = np.ascontiguousarray(ptr_array(assign, np.int64, n, "assign"))
    elif len(args) == 2:
        a, b = args
        # Faiss's contrib passes (k, assign); accept (assign, k) as well
        if isinstance(a, numbers.Integral):
            k, assign = a, b
        else:
            assign, k = a, b
        assign = np.ascontiguousarray(assign, dtype=np.int64).ravel()
    else:
        raise TypeError("imbalance_factor(n, k, assign) or imbalance_factor(k, assign)")
    return float(_core._imbalance_factor(assign, int(k)))


class MatrixStats:
    """Statistics of a matrix (n, d), with ``comments``: a report flagging
    duplicates, null vectors, constant dimensions, large means, normalisation."""

    def __init__(self, m):
        m = np.ascontiguousarray(m, dtype=np.float32)
        if m.ndim != 2:
            raise InvalidArgumentError(f"MatrixStats needs a 2-D array, got shape {m.shape}")
        self._s = _core.MatrixStats(m)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._s, name)


def fvec_madd(n, a, bf, b, c):
    """c[:n] = a[:n] + bf * b[:n]."""
    cc = ptr_array(c, np.float32, n, "c", writable=True)
    _core._fvec_madd(ptr_array(a, np.float32, n, "a"), float(bf), ptr_array(b, np.float32, n, "b"), cc, False)


def fvec_madd_and_argmin(n, a, bf, b, c):
    """c[:n] = a[:n] + bf * b[:n]; returns argmin(c)."""
    cc = ptr_array(c, np.float32, n, "c", writable=True)
    return int(_core._fvec_madd(ptr_array(a, np.float32, n, "a"), float(bf), ptr_array(b, np.float32, n, "b"),
                                cc, True))


def _ny(dis, x, y, d, ny, metric):
    out = ptr_array(dis, np.float32, ny, "dis", writable=True)
    xv = ptr_array(x, np.float32, d, "x").reshape(1, d)
    yv = ptr_array(y, np.float32, ny * d, "y").reshape(ny, d)
    out[...] = _core._pairwise_distances(np.ascontiguousarray(xv), np.ascontiguousarray(yv), metric).ravel()


def fvec_L2sqr_ny(dis, x, y, d, ny):
    """dis[i] = |x - y_i|^2 for the ny rows of y (d floats each)."""
    _ny(dis, x, y, int(d), int(ny), METRIC_L2)


def fvec_inner_products_ny(dis, x, y, d, ny):
    """dis[i] = <x, y_i> for the ny rows of y."""
    _ny(dis, x, y, int(d), int(ny), METRIC_INNER_PRODUCT)


def fvec_L2sqr(x, y, d):
    out = np.empty(1, np.float32)
    _ny(out, x, y, int(d), 1, METRIC_L2)
    return float(out[0])


def fvec_inner_product(x, y, d):
    out = np.empty(1, np.float32)
    _ny(out, x, y, int(d), 1, METRIC_INNER_PRODUCT)
    return float(out[0])


def fvec_norm_L2sqr(x, d):
    return float(_core._norms_sqr(np.ascontiguousarray(ptr_array(x, np.float32, d, "x").reshape(1, -1)))[0])


def _pairwise_indexed(d, n, x, ix, y, iy, dis, metric):
    d, n = int(d), int(n)
    ixa = np.ascontiguousarray(ptr_array(ix, np.int64, n, "ix"))
    iya = np.ascontiguousarray(ptr_array(iy, np.int64, n, "iy"))
    xa = ptr_array(x, np.float32, None, "x")
    ya = ptr_array(y, np.float32, None, "y")
    if xa.size % d or ya.size % d:
        raise InvalidArgumentError(f"x and y must hold rows of d={d} floats")
    out = ptr_array(dis, np.float32, n, "dis", writable=True)
    res = np.empty(n, np.float32)
    _core._pairwise_indexed(np.ascontiguousarray(xa.reshape(-1, d)), ixa, np.ascontiguousarray(ya.reshape(-1, d)),
                            iya, metric, res)
    out[...] = res


def pairwise_indexed_L2sqr(d, n, x, ix, y, iy, dis):
    """dis[j] = |x[ix[j]] - y[iy[j]]|^2 for j < n."""
    _pairwise_indexed(d, n, x, ix, y, iy, dis, METRIC_L2)


def pairwise_indexed_inner_product(d, n, x, ix, y, iy, dis):
    """dis[j] = <x[ix[j]], y[iy[j]]> for j < n."""
    _pairwise_indexed(d, n, x, ix, y, iy, dis, METRIC_INNER_PRODUCT)


def is_similarity_metric(metric: int) -> bool:
    """True for metrics where larger is better (inner product, Jaccard)."""
    return int(metric) in (METRIC_INNER_PRODUCT, 23)  # 23: Faiss's METRIC_Jaccard


def _find_sorted_ids_bounds(self, n, ids, jmin, jmax):
    """Faiss's IDSelectorRange.find_sorted_ids_bounds(n, ids, jmin, jmax): for
    n sorted ids, writes into jmin[0] / jmax[0] the positions [jmin, jmax) of
    the ids in [imin, imax)."""
    a = np.ascontiguousarray(ptr_array(ids, np.int64, n, "ids"))
    j0, j1 = self._find_sorted_ids_bounds(a)
    ptr_array(jmin, None, 1, "jmin", writable=True)[0] = j0
    ptr_array(jmax, None, 1, "jmax", writable=True)[0] = j1
    return j0, j1


_core.IDSelectorRange.find_sorted_ids_bounds = _find_sorted_ids_bounds
