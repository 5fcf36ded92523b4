"""k-means with Faiss's interfaces over annvil's C++ k-means (cpp/kmeans.*):

    km = Kmeans(d, k, niter=25, seed=1234); km.train(x)     # Faiss's Python wrapper
    clus = Clustering(d, k); clus.niter = 20                # Faiss's C++ class
    clus.train(x, IndexFlatL2(d)); centroids = vector_to_array(clus.centroids)

Assignments are exact (the flat-search kernels) whatever index is passed to
Clustering.train; the index decides the metric (inner product: the objective
is maximised) and receives the centroids at the end, as in Faiss.
"""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import ArrayLike, as_matrix, check_int
from ._core import (  # noqa: F401
    ClusteringInitMethod_AFK_MC2,
    ClusteringInitMethod_KMEANS_PLUS_PLUS,
    ClusteringInitMethod_RANDOM,
    ClusteringParameters,
)
from .compat import Float32Vector, ptr_array

__all__ = ["Kmeans", "Clustering", "ClusteringParameters", "ClusteringIterationStats", "ClusteringInitialization",
           "ClusteringInitMethod_RANDOM", "ClusteringInitMethod_KMEANS_PLUS_PLUS", "ClusteringInitMethod_AFK_MC2",
           "kmeans_clustering", "Clustering1D", "smawk"]

_CP_FIELDS = tuple(n for n in dir(ClusteringParameters) if not n.startswith("_"))


def _copy_cp(src):
    cp = ClusteringParameters()
    for f in _CP_FIELDS:
        setattr(cp, f, getattr(src, f))
    return cp


class ClusteringIterationStats:
    """One k-means iteration: objective, seconds since the start, splits of
    empty clusters (time_search and imbalance_factor are not measured: 0)."""

    __slots__ = ("obj", "time", "time_search", "imbalance_factor", "nsplit")

    def __init__(self, obj, time, nsplit):
        self.obj, self.time, self.nsplit = float(obj), float(time), int(nsplit)
        self.time_search = 0.0
        self.imbalance_factor = 0.0

    def __getitem__(self, key):  # Kmeans.iteration_stats entries read as dicts too
        return getattr(self, key)


class _StatsVector(list):
    """std::vector<ClusteringIterationStats> as SWIG shows it (size(), at(i))."""

    def size(self):
        return len(self)

    def at(self, i):
        return self[i]


class Clustering:
    """Faiss's Clustering(d, k[, cp]): every ClusteringParameters field is an
    attribute; train(x, index[, weights]) fills `centroids` (k * d floats)
    and `iteration_stats`."""

    def __init__(self, d: int, k: int, cp: ClusteringParameters | None = None) -> None:
        object.__setattr__(self, "d", check_int(d, "d", minimum=1))
        object.__setattr__(self, "k", check_int(k, "k", minimum=1))
        object.__setattr__(self, "cp", _copy_cp(cp) if cp is not None else ClusteringParameters())
        object.__setattr__(self, "centroids", Float32Vector())
        object.__setattr__(self, "iteration_stats", _StatsVector())

    def __getattr__(self, name):
        if name in _CP_FIELDS:
            return getattr(object.__getattribute__(self, "cp"), name)
        raise AttributeError(f"'Clustering' object has no attribute '{name}'")

    def __setattr__(self, name, value):
        if name in _CP_FIELDS:
            setattr(self.cp, name, value)
        elif name in ("centroids", "iteration_stats"):
            object.__setattr__(self, name, value)
        else:
            raise AttributeError(f"'Clustering' object has no attribute '{name}'")

    def _run(self, x, index, weights):
        metric = int(index.metric_type) if index is not None else _core.METRIC_L2
        if metric not in (_core.METRIC_L2, _core.METRIC_INNER_PRODUCT):
            raise _core.InvalidArgumentError("Clustering supports METRIC_L2 and METRIC_INNER_PRODUCT indexes")
        clus = _core._Clustering(self.d, self.k, self.cp)
        clus.metric = metric
        init = np.asarray(self.centroids)
        if init.size:
            if init.size != self.k * self.d:
                raise _core.InvalidArgumentError(
                    f"centroids given before training must hold k * d = {self.k * self.d} values, got {init.size}")
            clus.set_centroids(np.ascontiguousarray(init.reshape(self.k, self.d), dtype=np.float32))
        if weights is not None:
            weights = np.ascontiguousarray(weights, dtype=np.float32).ravel()
            if weights.shape[0] != x.shape[0]:
                raise _core.InvalidArgumentError(
                    f"weights must have one entry per training vector ({x.shape[0]}), got {weights.shape[0]}")
        clus.train(x, weights)
        cent = clus.centroids
        self.centroids = Float32Vector(cent.ravel())
        self.iteration_stats = _StatsVector(ClusteringIterationStats(s["obj"], s["time"], s["nsplit"])
                                            for s in clus.iteration_stats)
        if index is not None:
            index.reset()
            if not index.is_trained:
                index.train(cent)
            index.add(cent)
        return cent

    def train(self, x: ArrayLike, index: _core.Index | None = None, weights: ArrayLike | None = None) -> np.ndarray:
        """Cluster x (n, d); index (IndexFlatL2 / IndexFlatIP...) sets the
        metric and holds the centroids afterwards."""
        return self._run(as_matrix(x, self.d, "training vectors"), index, weights)

    def train_c(self, n, x, index, weights=None):
        """Faiss's pointer form: train_c(n, swig_ptr(x), index[, swig_ptr(weights)])."""
        xa = ptr_array(x, np.float32, int(n) * self.d, "x").reshape(int(n), self.d)
        w = None if weights is None else ptr_array(weights, np.float32, int(n), "weights")
        return self.train(xa, index, w)

    def train_encoded(self, codes, codec, index, weights=None):
        """Cluster the vectors encoded by codec (codes: (n, codec.sa_code_size())
        uint8), decoded decode_block_size rows at a time."""
        codes = np.asarray(codes, dtype=np.uint8)
        cs = int(codec.sa_code_size())
        codes = codes.reshape(-1, cs)
        bs = max(1, int(self.cp.decode_block_size))
        x = np.empty((codes.shape[0], self.d), np.float32)
        for i0 in range(0, codes.shape[0], bs):
            x[i0:i0 + bs] = codec.sa_decode(np.ascontiguousarray(codes[i0:i0 + bs]))
        return self.train(x, index, weights)

    def post_process_centroids(self):
        """Normalise (spherical) / round (int_centroids) the centroids, as after an iteration."""
        c = np.asarray(self.centroids).reshape(-1, self.d).copy()
        if self.cp.spherical:
            _core._normalize_rows(c)
        if self.cp.int_centroids:
            c = np.round(c)
        self.centroids = Float32Vector(c.ravel())


class Clustering1D(Clustering):
    """Faiss's Clustering1D(k): k-means of scalars; train_exact finds the
    globally optimal clusters (dynamic programming, see cpp/kmeans.h),
    train(x, index) runs the usual Lloyd iterations."""

    def __init__(self, k, cp=None):
        super().__init__(1, k, cp)

    def train_exact(self, *args):
        """train_exact(x) or Faiss's train_exact(n, swig_ptr(x))."""
        if len(args) == 2:
            x = ptr_array(args[1], np.float32, int(args[0]), "x")
        elif len(args) == 1:
            x = np.asarray(args[0])
        else:
            raise TypeError("train_exact(x) or train_exact(n, x)")
        x = np.ascontiguousarray(as_matrix(np.asarray(x).reshape(-1, 1), 1, "training values").ravel())
        cent, obj = _core._kmeans1d_exact(x, self.k)
        self.centroids = Float32Vector(cent)
        self.iteration_stats = _StatsVector([ClusteringIterationStats(obj, 0.0, 0)])
        return obj


def smawk(nrows, ncols, x, argmins):
    """Faiss's smawk(nrows, ncols, x, argmins): the leftmost column of each
    row's minimum of a totally monotone matrix x (nrows x ncols floats)."""
    a = np.ascontiguousarray(ptr_array(x, np.float32, int(nrows) * int(ncols), "x").reshape(int(nrows), int(ncols)))
    ptr_array(argmins, np.int64, int(nrows), "argmins", writable=True)[...] = _core._smawk(a)


class ClusteringInitialization:
    """Faiss's ClusteringInitialization(d, k): method (ClusteringInitMethod_*),
    seed, afkmc2_chain_length; init_centroids(n, x, centroids[, n_existing,
    existing]) writes k centroids chosen among x into `centroids`."""

    def __init__(self, d, k):
        self._c = _core._ClusteringInitialization(check_int(d, "d", minimum=1), check_int(k, "k", minimum=1))

    def __getattr__(self, name):
        if name in ("method", "seed", "afkmc2_chain_length", "d", "k"):
            return getattr(self._c, name)
        raise AttributeError(f"'ClusteringInitialization' object has no attribute '{name}'")

    def __setattr__(self, name, value):
        if name == "_c":
            object.__setattr__(self, name, value)
        elif name in ("method", "seed", "afkmc2_chain_length"):
            setattr(self._c, name, value)
        else:
            raise AttributeError(f"'ClusteringInitialization' object has no attribute '{name}'")

    def init_centroids(self, n, x, centroids, n_existing_centroids=0, existing_centroids=None):
        d, k = self._c.d, self._c.k
        xa = np.ascontiguousarray(ptr_array(x, np.float32, int(n) * d, "x").reshape(int(n), d))
        out = ptr_array(centroids, np.float32, k * d, "centroids", writable=True)
        ne = int(n_existing_centroids)
        if ne:
            ex = np.ascontiguousarray(ptr_array(existing_centroids, np.float32, ne * d, "existing_centroids")
                                      .reshape(ne, d))
        else:
            ex = np.zeros((0, d), np.float32)
        out[...] = self._c._init_centroids(as_matrix(xa, d, "x"), ex).ravel()


def kmeans_clustering(d, n, k, x, centroids):
    """Faiss's kmeans_clustering(d, n, k, x, centroids): k-means with default
    settings; writes the centroids, returns the final objective."""
    xa = ptr_array(x, np.float32, int(n) * int(d), "x").reshape(int(n), int(d))
    clus = Clustering(d, k)
    cent = clus.train(xa, _core.IndexFlatL2(int(d)))
    ptr_array(centroids, np.float32, int(k) * int(d), "centroids", writable=True)[...] = cent.ravel()
    return clus.iteration_stats[-1].obj if clus.iteration_stats else 0.0


class Kmeans:
    """k-means with Faiss's Python interface:

    >>> km = Kmeans(d, k, niter=25, seed=1234); km.train(x)
    >>> km.centroids, km.obj, km.index; D, I = km.assign(x)

    Any ClusteringParameters field can be passed as a keyword argument.
    """

    def __init__(self, d: int, k: int, **kwargs: object) -> None:
        self.d = check_int(d, "d", minimum=1)
        self.k = check_int(k, "k", minimum=1)
        self.gpu = kwargs.pop("gpu", False)  # accepted for compatibility; training runs on the CPU
        self.cp = ClusteringParameters()
        self.cp.update_index = True  # Faiss's Kmeans wrapper default
        for key, value in kwargs.items():
            if key not in _CP_FIELDS:
                raise TypeError(f"Kmeans() got an unexpected keyword argument '{key}'")
            if key in ("niter", "nredo", "min_points_per_centroid", "max_points_per_centroid", "seed"):
                value = check_int(value, key)
            setattr(self.cp, key, value)
        _core._Clustering(self.d, self.k, self.cp)  # the core checks niter, nredo... now, not at train()
        self.centroids: np.ndarray | None = None
        self.obj: np.ndarray | None = None
        self.iteration_stats: list[dict] = []
        self.index: _core.Index | None = None

    def __getattr__(self, name):
        if name != "cp" and name in _CP_FIELDS:
            return getattr(self.cp, name)
        raise AttributeError(f"'Kmeans' object has no attribute '{name}'")

    def train(self, x: ArrayLike, weights: ArrayLike | None = None, init_centroids: ArrayLike | None = None) -> float:
        """Cluster x (n, d); returns the final objective."""
        x = as_matrix(x, self.d, "training vectors")
        clus = Clustering(self.d, self.k, self.cp)
        if init_centroids is not None:
            clus.centroids = Float32Vector(as_matrix(init_centroids, self.d, "init_centroids").ravel())
        index = _core.IndexFlatIP(self.d) if self.cp.spherical else _core.IndexFlatL2(self.d)
        self.centroids = clus.train(x, index, weights)
        self.iteration_stats = [{"obj": s.obj, "time": s.time, "time_search": s.time_search,
                                 "imbalance_factor": s.imbalance_factor, "nsplit": s.nsplit}
                                for s in clus.iteration_stats]
        self.obj = np.array([s["obj"] for s in self.iteration_stats], dtype=np.float64)
        self.index = index
        return float(self.obj[-1]) if len(self.obj) else 0.0

    def assign(self, x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(D, I): distance to and id of the nearest centroid of each row."""
        if self.index is None:
            raise _core.NotTrainedError("Kmeans is not trained: call train(x) first")
        D, I = self.index.search(x, 1)
        return D.ravel(), I.ravel()
