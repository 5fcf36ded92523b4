"""Exact search (IndexFlat*, knn, range search, IDMap) against Faiss."""
import numpy as np
import pytest

import annvil

from conftest import assert_same_knn, clustered

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("d", [1, 3, 17, 128, 384, 768])
@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_flat_matches_faiss_dims(rng, d, metric):
    nb = 1500
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((77, d)).astype(np.float32)
    ours = annvil.IndexFlatL2(d) if metric == "L2" else annvil.IndexFlatIP(d)
    ref = faiss.IndexFlatL2(d) if metric == "L2" else faiss.IndexFlatIP(d)
    ours.add(xb)
    ref.add(xb)
    k = min(10, nb)
    D, I = ours.search(xq, k)
    Dr, Ir = ref.search(xq, k)
    assert_same_knn(xq, xb, D, I, Dr, Ir, metric == "L2")


@pytest.mark.parametrize("nq", [1, 2, 11, 33, 77, 2000])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_flat_batch_sizes(rng, nq, k):
    d = 64
    xb = clustered(rng, 3000, d)
    xq = clustered(rng, nq, d)
    ours, ref = annvil.IndexFlatL2(d), faiss.IndexFlatL2(d)
    ours.add(xb)
    ref.add(xb)
    D, I = ours.search(xq, k)
    Dr, Ir = ref.search(xq, k)
    assert_same_knn(xq, xb, D, I, Dr, Ir, True)


@pytest.mark.parametrize("k", [512, 2048])
def test_flat_large_k(rng, k):
    d = 32
    xb = rng.standard_normal((5000, d)).astype(np.float32)
    xq = rng.standard_normal((40, d)).astype(np.float32)
    for metric in ["L2", "IP"]:
        ours = annvil.IndexFlat(d, annvil.METRIC_L2 if metric == "L2" else annvil.METRIC_INNER_PRODUCT)
        ref = faiss.IndexFlat(d, faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT)
        ours.add(xb)
        ref.add(xb)
        D, I = ours.search(xq, k)
        Dr, Ir = ref.search(xq, k)
        assert_same_knn(xq, xb, D, I, Dr, Ir, metric == "L2")


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_k_larger_than_ntotal_pads(rng, metric):
    d = 8
    xb = rng.standard_normal((5, d)).astype(np.float32)
    ours = annvil.IndexFlatL2(d) if metric == "L2" else annvil.IndexFlatIP(d)
    ours.add(xb)
    D, I = ours.search(xb[:3], 8)
    assert (I[:, 5:] == -1).all()
    pad = np.finfo(np.float32).max if metric == "L2" else -np.finfo(np.float32).max  # Faiss pads with +-FLT_MAX
    assert (D[:, 5:] == pad).all()
    assert sorted(I[0, :5]) == [0, 1, 2, 3, 4]
    empty = annvil.IndexFlatL2(d)
    D, I = empty.search(xb[:2], 3)
    assert (I == -1).all() and (D == np.finfo(np.float32).max).all()


def test_results_sorted_and_self_match(rng):
    d = 24
    xb = rng.standard_normal((1000, d)).astype(np.float32)
    idx = annvil.IndexFlatL2(d)
    idx.add(xb)
    D, I = idx.search(xb[:100], 5)
    assert (I[:, 0] == np.arange(100)).all()
    assert (np.diff(D, axis=1) >= 0).all()
    ip = annvil.IndexFlatIP(d)
    ip.add(xb)
    D, I = ip.search(xb[:100], 5)
    assert (np.diff(D, axis=1) <= 0).all()


def test_duplicates_ties(rng):
    d = 16
    base = rng.standard_normal((50, d)).astype(np.float32)
    xb = np.concatenate([base, base, base])  # every vector three times
    idx = annvil.IndexFlatL2(d)
    idx.add(xb)
    D, I = idx.search(base[:10], 3)
    for i in range(10):
        assert sorted(I[i]) == [i, i + 50, i + 100]
        assert np.allclose(D[i], 0, atol=1e-4)


def test_knn_and_pairwise(rng):
    d = 40
    xb = rng.standard_normal((700, d)).astype(np.float32)
    xq = rng.standard_normal((30, d)).astype(np.float32)
    D, I = annvil.knn(xq, xb, 7)
    Dr, Ir = faiss.knn(xq, xb, 7)
    assert_same_knn(xq, xb, D, I, Dr, Ir, True)
    D, I = annvil.knn(xq, xb, 7, annvil.METRIC_INNER_PRODUCT)
    Dr, Ir = faiss.knn(xq, xb, 7, faiss.METRIC_INNER_PRODUCT)
    assert_same_knn(xq, xb, D, I, Dr, Ir, False)
    P = annvil.pairwise_distances(xq, xb)
    ref = ((xq[:, None, :].astype(np.float64) - xb[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_allclose(P, ref, rtol=1e-4, atol=1e-3)
    P = annvil.pairwise_distances(xq, xb, annvil.METRIC_INNER_PRODUCT)
    np.testing.assert_allclose(P, xq.astype(np.float64) @ xb.T.astype(np.float64), rtol=1e-4, atol=1e-3)
    # cosine: both sides normalised
    D, I = annvil.knn(xq, xb, 5, "cosine")
    xqn = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    xbn = xb / np.linalg.norm(xb, axis=1, keepdims=True)
    sims = xqn @ xbn.T
    np.testing.assert_allclose(D, -np.sort(-sims, axis=1)[:, :5], atol=1e-5)


def test_normalize_L2(rng):
    x = rng.standard_normal((10, 12)).astype(np.float32)
    y = x.copy()
    annvil.normalize_L2(x)
    faiss.normalize_L2(y)
    np.testing.assert_allclose(x, y, atol=1e-6)
    with pytest.raises(TypeError):
        annvil.normalize_L2(x.astype(np.float64))


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_range_search(rng, metric):
    d = 16
    xb = rng.standard_normal((3000, d)).astype(np.float32)
    xq = rng.standard_normal((50, d)).astype(np.float32)
    ours = annvil.IndexFlatL2(d) if metric == "L2" else annvil.IndexFlatIP(d)
    ref = faiss.IndexFlatL2(d) if metric == "L2" else faiss.IndexFlatIP(d)
    ours.add(xb)
    ref.add(xb)
    radius = 12.0 if metric == "L2" else 6.0
    lims, D, I = ours.range_search(xq, radius)
    limsr, Dr, Ir = ref.range_search(xq, radius)
    assert lims.shape == (51,) and lims[0] == 0
    exact = annvil.pairwise_distances(xq, xb, annvil.METRIC_L2 if metric == "L2" else annvil.METRIC_INNER_PRODUCT)
    for q in range(50):
        mine = dict(zip(I[lims[q]:lims[q + 1]], D[lims[q]:lims[q + 1]]))
        theirs = set(Ir[limsr[q]:limsr[q + 1]])
        # identical up to points sitting on the radius
        for j in set(mine) ^ theirs:
            assert abs(exact[q, j] - radius) < 1e-3
        for j, dist in mine.items():
            assert abs(dist - exact[q, j]) < 1e-3


def test_range_search_single_query_and_empty(rng):
    d = 8
    xb = rng.standard_normal((100, d)).astype(np.float32)
    idx = annvil.IndexFlatL2(d)
    idx.add(xb)
    lims, D, I = idx.range_search(xb[0], 1e-6)
    assert list(I) == [0]
    lims, D, I = annvil.IndexFlatL2(d).range_search(xb[:3], 1.0)
    assert list(lims) == [0, 0, 0, 0] and len(I) == 0


def test_reconstruct(rng):
    d = 10
    xb = rng.standard_normal((20, d)).astype(np.float32)
    idx = annvil.IndexFlatL2(d)
    idx.add(xb)
    np.testing.assert_array_equal(idx.reconstruct(3), xb[3])
    np.testing.assert_array_equal(idx.reconstruct_n(5, 4), xb[5:9])
    np.testing.assert_array_equal(idx.reconstruct_n(), xb)
    np.testing.assert_array_equal(idx.get_xb(), xb)
    with pytest.raises(ValueError):
        idx.reconstruct(20)
    with pytest.raises(ValueError):
        idx.reconstruct(-1)
    with pytest.raises(ValueError):
        idx.reconstruct_n(18, 5)


def test_remove_ids_matches_faiss(rng):
    d = 12
    xb = rng.standard_normal((200, d)).astype(np.float32)
    xq = rng.standard_normal((20, d)).astype(np.float32)
    for make_sel in [lambda m: m.IDSelectorRange(10, 50),
                     lambda m: m.IDSelectorBatch(np.array([3, 7, 150, 199], dtype=np.int64)),
                     None]:
        ours, ref = annvil.IndexFlatL2(d), faiss.IndexFlatL2(d)
        ours.add(xb)
        ref.add(xb)
        if make_sel is None:
            ids = np.array([0, 5, 100], dtype=np.int64)
            assert ours.remove_ids(ids) == ref.remove_ids(ids) == 3
        else:
            assert ours.remove_ids(make_sel(annvil)) == ref.remove_ids(make_sel(faiss))
        assert ours.ntotal == ref.ntotal
        np.testing.assert_array_equal(ours.reconstruct_n(0, ours.ntotal), ref.reconstruct_n(0, ref.ntotal))
        D, I = ours.search(xq, 5)
        Dr, Ir = ref.search(xq, 5)
        np.testing.assert_array_equal(I, Ir)
    # nothing selected: nothing removed
    idx = annvil.IndexFlatL2(d)
    idx.add(xb)
    assert idx.remove_ids(np.array([1000], dtype=np.int64)) == 0 and idx.ntotal == 200


def test_reset_and_readd(rng):
    d = 6
    idx = annvil.IndexFlatIP(d)
    idx.add(rng.standard_normal((30, d)))
    idx.reset()
    assert idx.ntotal == 0
    x = rng.standard_normal((4, d)).astype(np.float32)
    idx.add(x)
    assert idx.ntotal == 4 and idx.metric_type == annvil.METRIC_INNER_PRODUCT and idx.is_trained


@pytest.mark.parametrize("cls", ["IndexIDMap", "IndexIDMap2"])
def test_idmap(rng, cls):
    d = 20
    xb = rng.standard_normal((500, d)).astype(np.float32)
    xq = rng.standard_normal((25, d)).astype(np.float32)
    ids = rng.choice(10**12, 500, replace=False).astype(np.int64)
    ours = getattr(annvil, cls)(annvil.IndexFlatL2(d))
    ref = getattr(faiss, cls)(faiss.IndexFlatL2(d))
    ours.add_with_ids(xb, ids)
    ref.add_with_ids(xb, ids)
    D, I = ours.search(xq, 10)
    Dr, Ir = ref.search(xq, 10)
    np.testing.assert_array_equal(I, Ir)
    np.testing.assert_array_equal(ours.id_map, ids)
    # remove by user id
    sel = ids[::3]
    assert ours.remove_ids(sel) == ref.remove_ids(sel)
    D, I = ours.search(xq, 10)
    Dr, Ir = ref.search(xq, 10)
    np.testing.assert_array_equal(I, Ir)
    assert not np.isin(I, sel).any()
    # filtered search through the map: selector on user ids
    allowed = ids[1::3][:50]
    D, I = ours.search(xq, 5, params=annvil.SearchParameters(sel=annvil.IDSelectorBatch(allowed)))
    assert np.isin(I[I >= 0], allowed).all()
    with pytest.raises(RuntimeError):
        ours.add(xb[:2])
    if cls == "IndexIDMap2":
        np.testing.assert_array_equal(ours.reconstruct(int(ids[1])), xb[1])
        with pytest.raises(ValueError):
            ours.reconstruct(int(ids[0]))  # removed


def test_filtered_flat_search(rng):
    d = 16
    xb = rng.standard_normal((2000, d)).astype(np.float32)
    xq = rng.standard_normal((40, d)).astype(np.float32)
    idx = annvil.IndexFlatL2(d)
    idx.add(xb)
    mask = rng.random(2000) < 0.1
    for sel in [mask, annvil.IDSelectorBitmap(mask), annvil.IDSelectorBatch(np.flatnonzero(mask)),
                annvil.IDSelectorRange(100, 300)]:
        D, I = idx.search(xq, 10, params=annvil.SearchParameters(sel=sel))
        allowed = np.flatnonzero(mask) if not isinstance(sel, annvil.IDSelectorRange) else np.arange(100, 300)
        Dr, Ir = annvil.knn(xq, xb[allowed], 10)
        np.testing.assert_array_equal(I, allowed[Ir])


def test_omp_threads_same_results(rng):
    d = 64  # big enough that 2 threads split a single query's base and a batch's panels
    xb = rng.standard_normal((40000, d)).astype(np.float32)
    xq = rng.standard_normal((300, d)).astype(np.float32)
    idx = annvil.IndexFlatL2(d)
    idx.add(xb)
    nt = annvil.omp_get_max_threads()
    try:
        annvil.omp_set_num_threads(1)
        assert annvil.omp_get_max_threads() == 1
        D1, I1 = idx.search(xq, 10)
        D1s, I1s = idx.search(xq[:1], 10)
        annvil.omp_set_num_threads(2)
        D2, I2 = idx.search(xq, 10)
        D2s, I2s = idx.search(xq[:1], 10)
    finally:
        annvil.omp_set_num_threads(nt)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(I1s, I2s)
