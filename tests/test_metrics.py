"""The extra metrics (L1, Linf, Lp, Canberra, BrayCurtis, JensenShannon,
Jaccard, NaNEuclidean, Gower): Faiss is the oracle on the same data, every
SIMD level against the scalar reference, and every index that takes them."""
import faiss
import numpy as np
import pytest

import annvil

LEVELS = ["scalar", "avx2", "avx512"]
EXTRA = ["L1", "Linf", "Lp", "Canberra", "BrayCurtis", "JensenShannon", "Jaccard", "NaNEuclidean", "GOWER"]


def levels():
    return LEVELS[: LEVELS.index(annvil.detected_simd_level()) + 1]


@pytest.fixture
def restore_level():
    old = annvil.simd_level()
    yield
    annvil.set_simd_level(old)


def data(rng, n, d, name):
    """Data each metric is defined on: positive for the ratio / log metrics,
    in [0, 1] with some categorical (negative integer) columns for Gower."""
    x = rng.random((n, d)).astype(np.float32) + (0.05 if name in ("JensenShannon", "Canberra") else 0)
    if name == "GOWER":
        ncat = d // 3
        if ncat:
            x[:, :ncat] = -rng.integers(1, 4, (n, ncat)).astype(np.float32)
    elif name in ("L1", "Linf", "Lp", "NaNEuclidean"):
        x = (x - 0.5) * 4
    return x


def test_metric_values_are_faiss():
    for name in ["INNER_PRODUCT", "L2"] + EXTRA:
        assert getattr(annvil, "METRIC_" + name) == getattr(faiss, "METRIC_" + name), name
    for name in EXTRA:
        mt = getattr(annvil, "METRIC_" + name)
        assert annvil.is_similarity_metric(mt) == faiss.is_similarity_metric(mt)


@pytest.mark.parametrize("name", EXTRA)
@pytest.mark.parametrize("d", [1, 3, 17, 97])
def test_pairwise_matches_faiss(rng, restore_level, name, d):
    mt = getattr(annvil, "METRIC_" + name)
    xq, xb = data(rng, 7, d, name), data(rng, 53, d, name)
    ref = faiss.pairwise_distances(xq, xb, mt, 1.7)
    for level in levels():
        annvil.set_simd_level(level)
        out = annvil.pairwise_distances(xq, xb, mt, 1.7)
        assert out.shape == (7, 53) and out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=2e-5, atol=2e-5, err_msg=f"{name} at {level}")


def test_scipy_definitions(rng):
    scipy = pytest.importorskip("scipy.spatial.distance")
    x, y = rng.random((4, 29)).astype(np.float32), rng.random((5, 29)).astype(np.float32)
    for mt, f in [(annvil.METRIC_L1, scipy.cityblock), (annvil.METRIC_Linf, scipy.chebyshev),
                  (annvil.METRIC_Canberra, scipy.canberra), (annvil.METRIC_BrayCurtis, scipy.braycurtis)]:
        ref = np.array([[f(a, b) for b in y] for a in x])
        np.testing.assert_allclose(annvil.pairwise_distances(x, y, mt), ref, rtol=1e-5)
    ref = np.array([[scipy.minkowski(a, b, 3.0) ** 3 for b in y] for a in x])
    np.testing.assert_allclose(annvil.pairwise_distances(x, y, annvil.METRIC_Lp, 3.0), ref, rtol=1e-4)


def test_nan_semantics():
    # NaNEuclidean skips dimensions where either side is NaN and rescales
    x = np.array([[3, np.nan, np.nan, 6]], dtype=np.float32)
    y = np.array([[1, np.nan, 2, 5]], dtype=np.float32)
    np.testing.assert_allclose(annvil.pairwise_distances(x, y, annvil.METRIC_NaNEuclidean), [[4 / 2 * 5]])
    allnan = np.full((1, 4), np.nan, dtype=np.float32)
    assert np.isnan(annvil.pairwise_distances(allnan, allnan, annvil.METRIC_NaNEuclidean)).all()
    # Gower: numeric in [0, 1], categorical negative, NaN skipped; invalid data is NaN
    q = np.array([[0.5, np.nan, -1, -2], [0.5, -1, -1, -2], [1.5, 0.3, -1, -2]], dtype=np.float32)
    b = np.array([[0.4, 0.2, -1, -3]], dtype=np.float32)
    out = annvil.pairwise_distances(q, b, annvil.METRIC_GOWER)
    np.testing.assert_allclose(out[0], [(0.1 + 0 + 1) / 3], rtol=1e-5)
    assert np.isnan(out[1:]).all()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(faiss.pairwise_distances(q, b, faiss.METRIC_GOWER)))
    # infinity is still rejected, NaN is rejected for the other metrics
    with pytest.raises(ValueError):
        annvil.pairwise_distances(np.full((1, 4), np.inf, dtype=np.float32), b, annvil.METRIC_GOWER)
    with pytest.raises(ValueError):
        annvil.pairwise_distances(q, b, annvil.METRIC_L1)


@pytest.mark.parametrize("name", EXTRA)
@pytest.mark.parametrize("nq", [1, 11, 77])
def test_knn_and_flat_match_faiss(rng, name, nq):
    mt = getattr(annvil, "METRIC_" + name)
    d = 13
    xq, xb = data(rng, nq, d, name), data(rng, 700, d, name)
    Dref, Iref = faiss.knn(xq, xb, 10, mt, 1.5)
    D, I = annvil.knn(xq, xb, 10, mt, 1.5)
    np.testing.assert_allclose(D, Dref, rtol=1e-5, atol=1e-6)
    assert (I == Iref).mean() > 0.99  # ties may be ordered differently

    index = annvil.IndexFlat(d, mt)
    index.metric_arg = 1.5
    index.add(xb)
    Df, If = index.search(xq, 10)
    np.testing.assert_array_equal(If, I)
    # search distances are the pairwise distances of the same kernel, exactly
    dis = annvil.pairwise_distances(xq, xb, mt, 1.5)
    np.testing.assert_array_equal(Df, np.take_along_axis(dis, If, 1))
    # larger is closer for the similarities (Jaccard), smaller for the rest
    assert (np.diff(Df, axis=1) <= 0).all() if annvil.is_similarity_metric(mt) else (np.diff(Df, axis=1) >= 0).all()


def test_missing_results_and_nan_never_returned(rng):
    xb = rng.random((3, 4)).astype(np.float32)
    xb[0, 0] = 0  # Canberra(0, 0) = 0 / 0 = NaN in that dimension
    xq = xb[:1].copy()
    for mt in (annvil.METRIC_Canberra, annvil.METRIC_Jaccard, annvil.METRIC_L1):
        D, I = annvil.knn(xq, xb, 5, mt)
        Dr, Ir = faiss.knn(xq, xb, 5, mt)
        np.testing.assert_array_equal(I, Ir)
        np.testing.assert_allclose(D, Dr, rtol=1e-6)
        assert (I[0, -2:] == -1).all()


@pytest.mark.parametrize("name", ["L1", "Linf", "Lp", "BrayCurtis", "Jaccard"])
def test_range_search_matches_faiss(rng, name):
    mt = getattr(annvil, "METRIC_" + name)
    d = 8
    xq, xb = data(rng, 20, d, name), data(rng, 500, d, name)
    dis = faiss.pairwise_distances(xq, xb, mt, 1.5)
    radius = float(np.quantile(dis, 0.9 if annvil.is_similarity_metric(mt) else 0.1))
    ref = faiss.IndexFlat(d, mt)
    ref.metric_arg = 1.5
    ref.add(xb)
    ours = annvil.IndexFlat(d, mt)
    ours.metric_arg = 1.5
    ours.add(xb)
    lr, Dr, Ir = ref.range_search(xq, radius)
    lims, D, I = ours.range_search(xq, radius)
    np.testing.assert_array_equal(lims, lr)
    for q in range(20):
        o = np.argsort(I[lims[q]:lims[q + 1]])
        orf = np.argsort(Ir[lr[q]:lr[q + 1]])
        np.testing.assert_array_equal(I[lims[q]:lims[q + 1]][o], Ir[lr[q]:lr[q + 1]][orf])
        np.testing.assert_allclose(D[lims[q]:lims[q + 1]][o], Dr[lr[q]:lr[q + 1]][orf], rtol=1e-5)


def test_selector_with_extra_metric(rng):
    xq, xb = rng.random((5, 6)).astype(np.float32), rng.random((200, 6)).astype(np.float32)
    index = annvil.IndexFlat(6, annvil.METRIC_L1)
    index.add(xb)
    sel = annvil.IDSelectorRange(50, 120)
    D, I = index.search(xq, 7, params=annvil.SearchParameters(sel=sel))
    assert ((I >= 50) & (I < 120)).all()
    Dref, Iref = annvil.knn(xq, xb[50:120], 7, annvil.METRIC_L1)
    np.testing.assert_array_equal(I, Iref + 50)


def test_serialize_keeps_metric_and_arg(rng, tmp_path):
    xb = rng.random((100, 5)).astype(np.float32)
    for make in (lambda: annvil.IndexFlat(5, annvil.METRIC_Lp), lambda: annvil.IndexHNSWFlat(5, 8, annvil.METRIC_Lp)):
        index = make()
        index.metric_arg = 3.0
        index.add(xb)
        back = annvil.deserialize_index(annvil.serialize_index(index))
        assert back.metric_type == annvil.METRIC_Lp and back.metric_arg == 3.0
        np.testing.assert_array_equal(back.search(xb[:4], 5)[1], index.search(xb[:4], 5)[1])
        annvil.write_index(index, str(tmp_path / "i.annvil"))
        assert annvil.read_index(str(tmp_path / "i.annvil")).metric_arg == 3.0


@pytest.mark.parametrize("name", ["L1", "Linf", "Jaccard"])
def test_hnsw_flat(rng, name):
    mt = getattr(annvil, "METRIC_" + name)
    d = 10
    xb, xq = data(rng, 2000, d, name), data(rng, 50, d, name)
    index = annvil.IndexHNSW(annvil.IndexFlat(d, mt), 16)
    assert index.metric_type == mt
    index.add(xb)
    index.hnsw.efSearch = 64
    D, I = index.search(xq, 10)
    dis = annvil.pairwise_distances(xq, xb, mt)
    np.testing.assert_array_equal(D, np.take_along_axis(dis, I, 1))
    Dref, Iref = annvil.knn(xq, xb, 10, mt)
    recall = np.mean([len(set(I[q]) & set(Iref[q])) / 10 for q in range(50)])
    assert recall > 0.9
    # filtered search takes the exact path for a small admitted set
    sel = annvil.IDSelectorRange(0, 100)
    Ds, Is = index.search(xq, 5, params=annvil.SearchParametersHNSW(sel=sel))
    Dr, Ir = annvil.knn(xq, xb[:100], 5, mt)
    np.testing.assert_allclose(Ds, Dr, rtol=1e-6)


def test_ivf_flat(rng):
    d = 10
    xt, xb, xq = (rng.random((n, d)).astype(np.float32) for n in (2000, 3000, 40))
    for mt in (annvil.METRIC_L1, annvil.METRIC_Jaccard):
        index = annvil.IndexIVFFlat(annvil.IndexFlat(d), d, 16, mt)
        index.train(xt)
        index.add(xb)
        index.nprobe = 16  # every list: exact
        D, I = index.search(xq, 10)
        Dref, Iref = annvil.knn(xq, xb, 10, mt)
        np.testing.assert_allclose(D, Dref, rtol=1e-5)
        assert (I == Iref).mean() > 0.99
        ref = faiss.IndexIVFFlat(faiss.IndexFlat(d), d, 16, mt)
        ref.train(xt)
        ref.add(xb)
        ref.nprobe = 4
        index.nprobe = 4
        inter_ours = np.mean([len(set(a) & set(b)) for a, b in zip(index.search(xq, 10)[1], Iref)])
        inter_ref = np.mean([len(set(a) & set(b)) for a, b in zip(ref.search(xq, 10)[1], Iref)])
        assert inter_ours > inter_ref - 1.0
        radius = float(np.median(Dref[:, -1]))
        lims, Dr, Ir = index.range_search(xq, radius)
        assert (Dr > radius).all() if annvil.is_similarity_metric(mt) else (Dr < radius).all()


def test_unsupported_indexes_reject_extra_metrics():
    with pytest.raises(ValueError, match="not supported"):
        annvil.IndexPQ(8, 2, 8, annvil.METRIC_L1)
    with pytest.raises(ValueError, match="not supported"):
        annvil.IndexHNSWSQ(8, annvil.ScalarQuantizer.QT_8bit, 16, annvil.METRIC_L1)
    with pytest.raises(ValueError, match="unknown metric"):
        annvil.IndexFlat(8, 7)
    with pytest.raises(ValueError):
        annvil.knn(np.zeros((1, 4), np.float32), np.zeros((3, 4), np.float32), 1, 99)


def test_wrappers_pass_extra_metrics_through(rng):
    xb, xq = rng.random((300, 6)).astype(np.float32), rng.random((4, 6)).astype(np.float32)
    ids = np.arange(300, dtype=np.int64) * 7
    for mt in (annvil.METRIC_L1, annvil.METRIC_NaNEuclidean):
        index = annvil.IndexIDMap(annvil.IndexFlat(6, mt))
        assert index.metric_type == mt
        index.add_with_ids(xb, ids)
        D, I = index.search(xq, 5)
        Dr, Ir = annvil.knn(xq, xb, 5, mt)
        np.testing.assert_array_equal(I, ids[Ir])
        np.testing.assert_array_equal(D, Dr)
        back = annvil.deserialize_index(annvil.serialize_index(index))
        np.testing.assert_array_equal(back.search(xq, 5)[1], I)
    # a refine stage recomputes L2 / inner product itself: refused, not silently wrong
    with pytest.raises(ValueError, match="not supported"):
        annvil.IndexRefineFlat(annvil.IndexFlat(6, annvil.METRIC_L1))
