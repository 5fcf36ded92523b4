"""Faiss's Kmeans object over annvil's C++ k-means."""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import as_matrix, check_int


class Kmeans:
    """k-means with Faiss's interface:

    >>> km = Kmeans(d, k, niter=25, seed=1234); km.train(x)
    >>> km.centroids, km.obj, km.index; D, I = km.assign(x)
    """

    def __init__(self, d, k, *, niter=25, nredo=1, verbose=False, spherical=False, int_centroids=False,
                 update_index=True, frozen_centroids=False, min_points_per_centroid=39,
                 max_points_per_centroid=256, seed=1234, gpu=False, **kwargs):
        self.d = check_int(d, "d", minimum=1)
        self.k = check_int(k, "k", minimum=1)
        self.niter = check_int(niter, "niter", minimum=0)
        self.nredo = check_int(nredo, "nredo", minimum=1)
        self.verbose = bool(verbose)
        self.spherical = bool(spherical)
        self.int_centroids = bool(int_centroids)
        self.update_index = bool(update_index)
        self.frozen_centroids = bool(frozen_centroids)
        self.min_points_per_centroid = check_int(min_points_per_centroid, "min_points_per_centroid", minimum=0)
        self.max_points_per_centroid = check_int(max_points_per_centroid, "max_points_per_centroid", minimum=1)
        self.seed = check_int(seed, "seed")
        self.gpu = gpu  # accepted for compatibility; training runs on the CPU
        for key in kwargs:  # Faiss accepts any ClusteringParameters field; we know these
            if key not in ("decode_block_size", "check_input_data_for_NaNs", "use_faster_subsampling"):
                raise TypeError(f"Kmeans() got an unexpected keyword argument '{key}'")
        self.centroids = None
        self.obj = None
        self.iteration_stats = []
        self.index = None

    def train(self, x, weights=None, init_centroids=None):
        """Cluster x (n, d); returns the final objective."""
        if weights is not None:
            raise NotImplementedError("weighted k-means is not supported yet")
        x = as_matrix(x, self.d, "training vectors")
        metric = _core.METRIC_INNER_PRODUCT if self.spherical else _core.METRIC_L2
        clus = _core._Clustering(self.d, self.k, self.niter, self.nredo, self.verbose, self.spherical,
                                 self.int_centroids, self.frozen_centroids, self.min_points_per_centroid,
                                 self.max_points_per_centroid, self.seed, metric)
        if init_centroids is not None:
            clus.set_centroids(as_matrix(init_centroids, self.d, "init_centroids"))
        clus.train(x)
        self.centroids = clus.centroids
        self.iteration_stats = clus.iteration_stats
        self.obj = np.array([s["obj"] for s in self.iteration_stats], dtype=np.float64)
        self.index = _core.IndexFlatIP(self.d) if self.spherical else _core.IndexFlatL2(self.d)
        self.index.add(self.centroids)
        return float(self.obj[-1]) if len(self.obj) else 0.0

    def assign(self, x):
        """(D, I): distance to and id of the nearest centroid of each row."""
        if self.index is None:
            raise _core.NotTrainedError("Kmeans is not trained: call train(x) first")
        D, I = self.index.search(x, 1)
        return D.ravel(), I.ravel()
