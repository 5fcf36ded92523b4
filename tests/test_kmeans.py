"""k-means against Faiss's Kmeans with the same budget."""
import numpy as np
import pytest

import annvil

from conftest import clustered

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("d, k, n", [(32, 64, 20000), (17, 10, 3000), (128, 256, 30000)])
def test_objective_close_to_faiss(rng, d, k, n):
    x = clustered(rng, n, d, nclusters=3 * k, spread=1.0)
    ours = annvil.Kmeans(d, k, niter=20, seed=123)
    ref = faiss.Kmeans(d, k, niter=20, seed=123)
    obj = ours.train(x)
    ref.train(x)
    assert ours.centroids.shape == (k, d)
    # objectives on the full data (both subsample to 256 points per centroid)
    D, _ = ours.assign(x)
    Dr, _ = ref.index.search(x, 1)
    assert D.sum() <= Dr.sum() * 1.01, (D.sum(), Dr.sum())
    assert len(ours.obj) == 20 and obj == ours.obj[-1]
    assert ours.obj[-1] <= ours.obj[0]


def test_spherical_and_ip(rng):
    d, k = 24, 16
    x = clustered(rng, 5000, d, nclusters=40)
    annvil.normalize_L2(x)
    km = annvil.Kmeans(d, k, niter=15, spherical=True)
    km.train(x)
    np.testing.assert_allclose(np.linalg.norm(km.centroids, axis=1), 1, atol=1e-5)
    ref = faiss.Kmeans(d, k, niter=15, spherical=True)
    ref.train(x)
    D, _ = km.assign(x)
    Dr, _ = ref.index.search(x, 1)
    assert D.sum() >= Dr.sum() * 0.99


def test_empty_clusters_are_split(rng):
    # many duplicates: random init picks identical centroids, leaving empty clusters
    base = rng.standard_normal((5, 8)).astype(np.float32)
    x = np.repeat(base, 200, axis=0) + 1e-3 * rng.standard_normal((1000, 8)).astype(np.float32)
    km = annvil.Kmeans(8, 20, niter=10)
    km.train(x)
    _, I = km.assign(x)
    assert len(np.unique(I)) >= 15
    assert np.isfinite(km.centroids).all()


def test_nredo_and_seed(rng):
    x = clustered(rng, 4000, 16, nclusters=30)
    a = annvil.Kmeans(16, 20, niter=10, seed=5)
    b = annvil.Kmeans(16, 20, niter=10, seed=5)
    a.train(x)
    b.train(x)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    c = annvil.Kmeans(16, 20, niter=10, nredo=3, seed=5)
    c.train(x)
    Da, _ = a.assign(x)
    Dc, _ = c.assign(x)
    assert Dc.sum() <= Da.sum() * 1.0001


def test_bad_input(rng):
    with pytest.raises(ValueError, match="at least as many training points"):
        annvil.Kmeans(4, 10).train(rng.standard_normal((5, 4)))
    with pytest.raises(ValueError):
        annvil.Kmeans(4, 0)
    with pytest.raises(ValueError):
        annvil.Kmeans(4, 2).train(rng.standard_normal((10, 3)))
    x = rng.standard_normal((10, 4))
    x[3, 1] = np.nan
    with pytest.raises(ValueError):
        annvil.Kmeans(4, 2).train(x)


def test_training_is_interruptible(rng):
    import os
    import signal
    import threading
    import time

    x = rng.standard_normal((100_000, 64)).astype(np.float32)
    km = annvil.Kmeans(64, 1024, niter=1000)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            km.train(x)
    finally:
        timer.cancel()
    assert time.perf_counter() - t0 < 20
