"""Shared fixtures and comparison helpers.  Faiss (faiss-cpu) is the oracle."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def clustered(rng, n, d, nclusters=20, spread=0.3):
    """Gaussian mixture: realistic neighbour structure for recall tests."""
    centers = rng.standard_normal((nclusters, d)).astype(np.float32)
    labels = rng.integers(0, nclusters, n)
    return (centers[labels] + spread * rng.standard_normal((n, d))).astype(np.float32)


def exact_dist(xq, xb, ids, metric_l2=True):
    """float64 distances of the given ids (for tie-aware comparisons)."""
    xq = xq.astype(np.float64)
    xb = xb.astype(np.float64)
    out = np.full(ids.shape, np.nan)
    for i in range(ids.shape[0]):
        valid = ids[i] >= 0
        v = xb[ids[i][valid]]
        if metric_l2:
            out[i, valid] = ((v - xq[i]) ** 2).sum(1)
        else:
            out[i, valid] = v @ xq[i]
    return out


def assert_same_knn(xq, xb, D, I, Dref, Iref, metric_l2=True, rtol=1e-4):
    """Same neighbours up to ties: where ids differ, their exact distances agree
    with the reference's to within tolerance; distances agree everywhere."""
    assert D.shape == Dref.shape and I.shape == Iref.shape
    assert D.dtype == np.float32 and I.dtype == np.int64
    assert np.array_equal(I < 0, Iref < 0)
    valid = Iref >= 0
    scale = max(1.0, float(np.abs(Dref[valid]).max())) if valid.any() else 1.0
    tol = rtol * scale + 1e-5
    np.testing.assert_allclose(D[valid], Dref[valid], rtol=rtol, atol=tol)
    diff = (I != Iref) & valid
    if diff.any():
        ours = exact_dist(xq, xb, np.where(diff, I, -1), metric_l2)
        theirs = exact_dist(xq, xb, np.where(diff, Iref, -1), metric_l2)
        np.testing.assert_allclose(ours[diff], theirs[diff], rtol=rtol, atol=tol,
                                   err_msg="different neighbours that are not ties")
    # no duplicate ids within a row
    for row in I:
        r = row[row >= 0]
        assert len(np.unique(r)) == len(r)


def subspace_data(seed=0, n=5000, nq=300, d=32, intrinsic=16):
    """(xb, xq) near a random low-dimensional subspace (more realistic than iid
    Gaussians, so recall numbers mean something)."""
    rs = np.random.RandomState(seed)
    basis = rs.randn(intrinsic, d).astype(np.float32)

    def mk(m):
        return (rs.randn(m, intrinsic).astype(np.float32) @ basis + 0.3 * rs.randn(m, d)).astype(np.float32)

    return mk(n), mk(nq)


def subspace_gt(xb, xq, k=10):
    """Exact top-k ids of xq in xb, by metric: {METRIC_L2: ..., METRIC_INNER_PRODUCT: ...}."""
    import annvil
    return {m: annvil.knn(xq, xb, k, m)[1] for m in (annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT)}


@pytest.fixture(scope="module")
def faiss_one_thread():
    """Faiss single-threaded for the module (its threaded PQ training differs run to run)."""
    import faiss
    n = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(n)


SIMD_LEVELS = ["scalar", "avx2", "avx512"]


def supported_simd_levels():
    """The SIMD levels this CPU and build can run, lowest (scalar) first."""
    import annvil
    best = SIMD_LEVELS.index(annvil.detected_simd_level())
    return SIMD_LEVELS[: best + 1]


def per_level(fn):
    """{level: fn()} at every supported SIMD level, scalar first; the level in
    use is restored afterwards."""
    import annvil
    old = annvil.simd_level()
    out = {}
    try:
        for level in supported_simd_levels():
            annvil.set_simd_level(level)
            out[level] = fn()
    finally:
        annvil.set_simd_level(old)
    return out
