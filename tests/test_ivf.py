"""IndexIVF / IndexIVFFlat against Faiss (the oracle) on small seeded data."""
import os
import pickle

import numpy as np
import pytest

import annvil
import faiss

D_, NB, NQ, NLIST = 32, 10000, 300, 64
METRICS = [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1234)
    centers = rng.standard_normal((100, D_)).astype(np.float32) * 2
    xb = (centers[rng.integers(0, 100, NB)] + rng.standard_normal((NB, D_))).astype(np.float32)
    xq = (centers[rng.integers(0, 100, NQ)] + rng.standard_normal((NQ, D_))).astype(np.float32)
    return xb, xq


def recall(I, gt):
    k = gt.shape[1]
    return np.mean([len(np.intersect1d(I[i], gt[i])) / k for i in range(len(I))])


def faiss_ivf(xb, metric, nlist=NLIST):
    fq = faiss.IndexFlat(D_, metric)
    f = faiss.IndexIVFFlat(fq, D_, nlist, metric)
    f.train(xb)
    f.add(xb)
    return f


def annvil_ivf(xb, metric, centroids=None, nlist=NLIST, add=True):
    q = annvil.IndexFlat(D_, metric)
    if centroids is not None:
        q.add(centroids)
    idx = annvil.IndexIVFFlat(q, D_, nlist, metric)
    idx.train(xb)
    if add:
        idx.add(xb)
    return idx


@pytest.fixture(scope="module", params=METRICS, ids=["L2", "IP"])
def pair(request, data):
    """(annvil, faiss) IVFFlat with the same coarse centroids."""
    xb, _ = data
    m = request.param
    f = faiss_ivf(xb, m)
    cents = f.quantizer.reconstruct_n(0, NLIST)
    return annvil_ivf(xb, m, cents), f, m


# ---- recall and exactness ------------------------------------------------------------------
def test_recall_same_centroids(pair, data):
    a, f, m = pair
    xb, xq = data
    gt = faiss.knn(xq, xb, 10, metric=m)[1]
    for nprobe in (1, 2, 4, 8, 16, 64):
        a.nprobe = f.nprobe = nprobe
        ra = recall(a.search(xq, 10)[1], gt)
        rf = recall(f.search(xq, 10)[1], gt)
        assert abs(ra - rf) <= 0.01, (nprobe, ra, rf)
    # same lists for the same centroids
    sizes_a = [a.get_list_size(i) for i in range(NLIST)]
    sizes_f = [f.invlists.list_size(i) for i in range(NLIST)]
    assert sum(abs(x - y) for x, y in zip(sizes_a, sizes_f)) <= 10
    assert sizes_a == [a.invlists.list_size(i) for i in range(NLIST)]
    assert sum(sizes_a) == a.ntotal == NB


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_recall_own_training(data, metric):
    xb, xq = data
    gt = faiss.knn(xq, xb, 10, metric=metric)[1]
    a = annvil_ivf(xb, metric)
    f = faiss_ivf(xb, metric)
    for nprobe in (1, 4, 16):
        a.nprobe = f.nprobe = nprobe
        ra, rf = recall(a.search(xq, 10)[1], gt), recall(f.search(xq, 10)[1], gt)
        # different k-means runs: allow a little more than with shared centroids
        assert ra >= rf - 0.03, (nprobe, ra, rf)


def test_full_probe_is_exact(pair, data):
    a, _, m = pair
    xb, xq = data
    a.nprobe = NLIST
    D, I = a.search(xq, 10)
    Dg, Ig = faiss.knn(xq, xb, 10, metric=m)
    assert recall(I, Ig) > 0.999
    np.testing.assert_allclose(D, Dg, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("nq", [1, 11, 77])
def test_batch_sizes_consistent(pair, data, nq):
    a, f, _ = pair
    _, xq = data
    a.nprobe = 8
    D, I = a.search(xq, 10)
    D1 = np.vstack([a.search(xq[i:i + nq], 10)[0] for i in range(0, 154, nq)])
    I1 = np.vstack([a.search(xq[i:i + nq], 10)[1] for i in range(0, 154, nq)])
    n = len(I1)
    assert (I1 == I[:n]).mean() > 0.99
    np.testing.assert_allclose(D1, D[:n], rtol=1e-4, atol=1e-3)


def test_panel_and_direct_paths_agree(pair, data):
    a, _, _ = pair
    _, xq = data
    a.nprobe = 16
    ref = a.search(xq, 10)
    old = a.panel_min_queries
    try:
        for v in (1, 10**6):
            a.panel_min_queries = v
            D, I = a.search(xq, 10)
            assert (I == ref[1]).mean() > 0.99
            np.testing.assert_allclose(D, ref[0], rtol=1e-4, atol=1e-3)
    finally:
        a.panel_min_queries = old


def test_threads_consistent(pair, data):
    a, _, _ = pair
    _, xq = data
    a.nprobe = 8
    nt = annvil.omp_get_max_threads()
    try:
        annvil.omp_set_num_threads(1)
        D1, I1 = a.search(xq, 10)
        d1, i1 = a.search(xq[:1], 10)
        annvil.omp_set_num_threads(2)
        D2, I2 = a.search(xq, 10)
        d2, i2 = a.search(xq[:1], 10)
    finally:
        annvil.omp_set_num_threads(nt)
    assert (I1 == I2).all() and (i1 == i2).all()
    np.testing.assert_allclose(D1, D2, rtol=1e-5, atol=1e-4)


def test_k_larger_than_candidates(pair, data):
    a, _, m = pair
    _, xq = data
    a.nprobe = 1
    D, I = a.search(xq[:5], 2000)
    assert (I == -1).any()
    pad = np.finfo(np.float32).max if m == annvil.METRIC_L2 else -np.finfo(np.float32).max
    assert (D[I == -1] == pad).all()


# ---- parameters ------------------------------------------------------------------------------
def test_search_parameters(pair, data):
    a, f, _ = pair
    xb, xq = data
    a.nprobe = 1
    Dp, Ip = a.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=16))
    assert a.nprobe == 1
    a.nprobe = 16
    D, I = a.search(xq, 10)
    assert (I == Ip).all()
    # selector through the parameters, compared with Faiss
    sel = annvil.IDSelectorRange(0, NB // 2)
    _, Is = a.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=16, sel=sel))
    assert (Is < NB // 2).all()
    f.nprobe = 16
    _, If = f.search(xq, 10, params=faiss.SearchParametersIVF(nprobe=16, sel=faiss.IDSelectorRange(0, NB // 2)))
    assert abs(recall(Is, If) - 1) < 0.01
    # a plain SearchParameters with a selector keeps the index's nprobe
    _, Ip2 = a.search(xq, 10, params=annvil.SearchParameters(sel=sel))
    assert (Ip2 == Is).mean() > 0.99
    # max_codes limits the scan (results stay valid ids)
    _, Im = a.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=16, max_codes=50))
    assert ((Im >= -1) & (Im < NB)).all()
    p = annvil.SearchParametersIVF(nprobe=3)
    p.nprobe = 5
    assert p.nprobe == 5
    with pytest.raises(TypeError):
        annvil.SearchParametersIVF(3)  # keyword-only
    with pytest.raises(ValueError):
        a.nprobe = -1
    a.nprobe = 0  # accepted as in Faiss; search refuses it (RuntimeError, as Faiss) and names the fix
    with pytest.raises(RuntimeError, match="nprobe is 0"):
        a.search(xq[:2], 3)
    a.nprobe = 1


# ---- range search ----------------------------------------------------------------------------------
def test_range_search(pair, data):
    a, f, m = pair
    _, xq = data
    a.nprobe = f.nprobe = 8
    D, _ = f.search(xq[:20], 20)
    radius = float(np.median(D[:, 10]))
    la, Da, Ia = a.range_search(xq[:20], radius)
    lf, Df, If = f.range_search(xq[:20], radius)
    for i in range(20):
        sa, sf = set(Ia[la[i]:la[i + 1]]), set(If[lf[i]:lf[i + 1]])
        assert len(sa ^ sf) <= 1


# ---- mutation ----------------------------------------------------------------------------------------
def test_add_with_ids_and_remove(data):
    xb, xq = data
    a = annvil_ivf(xb, annvil.METRIC_L2, add=False)
    ids = np.arange(NB, dtype=np.int64) * 10 + 7
    a.add_with_ids(xb, ids)
    a.nprobe = 8
    _, I = a.search(xq, 10)
    assert np.isin(I[I >= 0], ids).all()
    assert not a.remove_ids_shifts() if hasattr(a, "remove_ids_shifts") else True
    removed = a.remove_ids(annvil.IDSelectorRange(0, 50007))
    assert removed == 5000 and a.ntotal == NB - 5000
    _, I2 = a.search(xq, 10)
    assert (I2[I2 >= 0] >= 50007).all()
    assert a.remove_ids(np.array([50007, 50017, 123], dtype=np.int64)) == 2
    assert a.ntotal == NB - 5002
    a.reset()
    assert a.ntotal == 0 and a.is_trained
    _, I3 = a.search(xq, 5)
    assert (I3 == -1).all()


def test_merge_from(data):
    xb, xq = data
    base = annvil_ivf(xb, annvil.METRIC_L2, add=False)
    cents = base.quantizer.reconstruct_n(0, NLIST)
    a1 = annvil_ivf(xb, annvil.METRIC_L2, cents, add=False)
    a2 = annvil_ivf(xb, annvil.METRIC_L2, cents, add=False)
    full = annvil_ivf(xb, annvil.METRIC_L2, cents)
    a1.add(xb[:6000])
    a2.add(xb[6000:])
    a1.merge_from(a2, 6000)
    assert a1.ntotal == NB and a2.ntotal == 0
    for idx in (a1, full):
        idx.nprobe = 8
    D1, I1 = a1.search(xq, 10)
    D2, I2 = full.search(xq, 10)
    assert (I1 == I2).all()
    np.testing.assert_allclose(D1, D2, rtol=1e-5)
    other = annvil.IndexIVFFlat(annvil.IndexFlatL2(D_), D_, NLIST * 2)
    with pytest.raises(ValueError):
        a1.merge_from(other)


def test_direct_map_and_reconstruct(data):
    xb, _ = data
    a = annvil_ivf(xb, annvil.METRIC_L2)
    with pytest.raises(RuntimeError, match="make_direct_map"):
        a.reconstruct(5)
    np.testing.assert_array_equal(a.reconstruct_n(10, 5), xb[10:15])
    a.make_direct_map()
    np.testing.assert_array_equal(a.reconstruct(123), xb[123])
    with pytest.raises(ValueError):
        a.remove_ids(np.array([1]))  # not with an array map (as Faiss)
    a.set_direct_map_type(annvil.DirectMap.Hashtable)
    assert a.remove_ids(np.array([1, 2, 3])) == 3
    np.testing.assert_array_equal(a.reconstruct(123), xb[123])
    with pytest.raises(ValueError):
        a.reconstruct(2)
    b = annvil_ivf(xb, annvil.METRIC_L2, add=False)
    b.add_with_ids(xb[:100], np.arange(100) + 10**9)
    with pytest.raises(ValueError, match="Hashtable"):
        b.make_direct_map()
    b.set_direct_map_type(annvil.DirectMap.Hashtable)
    np.testing.assert_array_equal(b.reconstruct(10**9 + 42), xb[42])


# ---- attributes ------------------------------------------------------------------------------------------
def test_attributes(data):
    xb, _ = data
    q = annvil.IndexFlatL2(D_)
    a = annvil.IndexIVFFlat(q, D_, NLIST)
    assert a.quantizer is q
    assert not a.is_trained and a.nprobe == 1 and a.nlist == NLIST and a.ntotal == 0
    assert a.code_size == 4 * D_
    a.train(xb)
    assert a.is_trained and q.ntotal == NLIST
    a.add(xb)
    assert a.invlists.compute_ntotal() == NB and a.invlists.nlist == NLIST
    l0 = a.invlists.get_ids(0)
    assert len(l0) == a.get_list_size(0)
    np.testing.assert_array_equal(a.invlists.get_codes(0)[0].view(np.float32), xb[l0[0]])
    assert a.memory_usage() >= NB * (4 * D_ + 8)
    assert annvil.extract_index_ivf(a) is a
    # a quantizer that already holds nlist centroids: nothing to train
    q2 = annvil.IndexFlatL2(D_)
    q2.add(xb[:NLIST])
    assert annvil.IndexIVFFlat(q2, D_, NLIST).is_trained


# ---- serialization ----------------------------------------------------------------------------------------
def test_round_trips(pair, data, tmp_path):
    a, _, _ = pair
    _, xq = data
    a.nprobe = 8
    ref = a.search(xq, 10)
    b = annvil.deserialize_index(annvil.serialize_index(a))
    c = pickle.loads(pickle.dumps(a))
    path = os.fspath(tmp_path / "ivf.annvil")
    annvil.write_index(a, path)
    d = annvil.read_index(path)
    e = annvil.read_index(path, mmap=True)
    for idx in (b, c, d, e):
        assert type(idx) is annvil.IndexIVFFlat
        assert idx.nprobe == 8 and idx.ntotal == a.ntotal and idx.nlist == NLIST
        assert isinstance(idx.quantizer, annvil.IndexFlat)
        D, I = idx.search(xq, 10)
        assert (I == ref[1]).all()
        np.testing.assert_array_equal(D, ref[0])


def test_round_trip_after_remove_and_map(data):
    xb, xq = data
    a = annvil_ivf(xb, annvil.METRIC_INNER_PRODUCT)
    a.set_direct_map_type(annvil.DirectMap.Hashtable)
    a.remove_ids(annvil.IDSelectorRange(100, 200))
    b = pickle.loads(pickle.dumps(a))
    assert b.ntotal == NB - 100 and b.direct_map_type == 2
    np.testing.assert_array_equal(b.reconstruct(500), xb[500])
    untrained = annvil.IndexIVFFlat(annvil.IndexFlatL2(D_), D_, NLIST)
    u = pickle.loads(pickle.dumps(untrained))
    assert not u.is_trained


def test_corrupt_file_raises(pair):
    a, _, _ = pair
    blob = annvil.serialize_index(a)
    with pytest.raises(annvil.IndexFileError):
        annvil.deserialize_index(blob[: len(blob) // 2])


# ---- bad input -------------------------------------------------------------------------------------------------
def test_bad_input(data):
    xb, xq = data
    q = annvil.IndexFlatL2(D_)
    a = annvil.IndexIVFFlat(q, D_, NLIST)
    with pytest.raises(annvil.NotTrainedError):
        a.search(xq, 10)
    with pytest.raises(annvil.NotTrainedError):
        a.add(xb)
    with pytest.raises(ValueError, match="at least nlist"):
        a.train(xb[:NLIST - 1])
    assert not a.is_trained and q.ntotal == 0  # a failed train changes nothing
    with pytest.raises(ValueError, match="dimension"):
        a.train(xb[:, :16])
    bad = xb.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        a.train(bad)
    a.train(xb)
    with pytest.raises(ValueError, match="NaN"):
        a.add(bad)
    assert a.ntotal == 0
    with pytest.raises(ValueError):
        a.search(xq[:, :10], 10)
    with pytest.raises(ValueError):
        a.search(xq, 0)
    with pytest.raises(ValueError):
        annvil.IndexIVFFlat(annvil.IndexFlatL2(16), D_, NLIST)
    with pytest.raises(ValueError):
        annvil.IndexIVFFlat(annvil.IndexFlatL2(D_), D_, 0)
    with pytest.raises(ValueError):
        a.get_list_size(NLIST)
    with pytest.raises(TypeError):
        a.merge_from(annvil.IndexFlatL2(D_))


def test_idmap_over_ivf(data):
    xb, xq = data
    inner = annvil_ivf(xb, annvil.METRIC_L2, add=False)
    idx = annvil.IndexIDMap(inner)
    ids = np.arange(NB, dtype=np.int64) + 1000
    idx.add_with_ids(xb, ids)
    inner.nprobe = 8
    _, I = idx.search(xq, 5)
    assert (I >= 1000).all()
    assert idx.remove_ids(np.arange(1000, 1100)) == 100
    assert idx.ntotal == NB - 100
    _, I2 = idx.search(xq, 5)
    assert (I2 >= 1100).all()


def test_every_simd_level(pair, data):
    a, _, m = pair
    xb, xq = data
    order = ["scalar", "avx2", "avx512"]
    levels = order[: order.index(annvil.detected_simd_level()) + 1]
    a.nprobe = NLIST
    Dg, Ig = faiss.knn(xq[:50], xb, 10, metric=m)
    old = annvil.simd_level()
    try:
        for level in levels:
            annvil.set_simd_level(level)
            D, I = a.search(xq[:50], 10)  # grouped: panel for shared lists, scanner otherwise
            assert recall(I, Ig) > 0.999, level
            np.testing.assert_allclose(D, Dg, rtol=1e-4, atol=1e-3, err_msg=level)
    finally:
        annvil.set_simd_level(old)


def test_search_preassigned(pair, data):
    a, _, _ = pair
    _, xq = data
    a.nprobe = 8
    Dq, Iq = a.quantizer.search(xq, 8)
    D, I = a.search_preassigned(xq, 10, Iq, Dq)
    D2, I2 = a.search(xq, 10)
    assert (I == I2).all()
    np.testing.assert_allclose(D, D2, rtol=1e-6)
    with pytest.raises(ValueError):
        a.search_preassigned(xq, 10, Iq + NLIST, Dq)


def test_quantizer_modified_after_training(data):
    xb, xq = data
    a = annvil_ivf(xb[:2000], annvil.METRIC_L2)
    a.quantizer.add(xb[:5])  # now 69 "centroids" for 64 lists
    with pytest.raises(ValueError, match="quantizer"):
        a.search(xq, 5)
    with pytest.raises(ValueError, match="quantizer"):
        a.add(xb[:10])
