"""Faiss-compatibility pieces of the second suite batch, each checked against
faiss on the same data: k-means / PQ / IVF training that reproduces Faiss's
centroids, HNSW storage / is_similarity / range search / stats / filtered
distances, IndexRefine range search, distance computers, IDSelectorTranslated
and the auto-tuning helpers."""
import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")


def _smooth(n, d, seed):
    # low intrinsic dimension data (like Faiss's synthetic sets): k-means has
    # well separated optima, so equal centroids mean equal algorithms
    rs = np.random.RandomState(seed)
    x = rs.normal(size=(n, 6)) @ rs.rand(6, d)
    return np.sin(x * (rs.rand(d) * 3 + 0.2)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return _smooth(6000, 16, 5), _smooth(40, 16, 6)


# ---- training reproduces Faiss --------------------------------------------------------
@pytest.mark.parametrize("nredo,spherical", [(1, False), (2, False), (1, True)])
def test_kmeans_centroids_equal_faiss(data, nredo, spherical):
    xt, _ = data
    cents = []
    for lib in (faiss, annvil):
        km = lib.Kmeans(16, 24, niter=12, seed=77, nredo=nredo, spherical=spherical)
        km.train(xt[:3000])
        cents.append(np.asarray(km.centroids))
    np.testing.assert_allclose(cents[1], cents[0], atol=1e-5)


def test_kmeans_subsampling_equal_faiss(data):
    # 6000 points > k * max_points_per_centroid: both sample the same subset
    xt, _ = data
    cents = []
    for lib in (faiss, annvil):
        km = lib.Kmeans(16, 10, niter=8, max_points_per_centroid=100)
        km.train(xt)
        cents.append(np.asarray(km.centroids))
    np.testing.assert_allclose(cents[1], cents[0], atol=1e-5)


def test_kmeans_n_equals_k_copies_points(data):
    xt, _ = data
    km = annvil.Kmeans(16, 30, niter=5)
    km.train(xt[:30])
    np.testing.assert_array_equal(km.centroids, xt[:30])


@pytest.mark.parametrize("key", ["PQ4x4", "IVF16,Flat", "IVF16,PQ4x4fs", "IVF16,PQ4x4fsr", "IVF16,SQ8"])
def test_trained_index_equal_faiss(data, key):
    # same training data -> same codebooks -> same search results
    xt, xq = data
    res = []
    for lib in (faiss, annvil):
        index = lib.index_factory(16, key)
        index.train(xt)  # 6000 > 256 * 16: the fast-scan encoder sees Faiss's subsample
        index.add(xt[:2000])
        if hasattr(index, "nprobe"):
            index.nprobe = 4
        res.append(index.search(xq, 5))
        if lib is faiss:
            res_index = index
    if "fs" in key:
        # fast-scan distances are quantised LUT sums (each library rounds the
        # tables its own way): compare the trained codebooks themselves
        np.testing.assert_allclose(annvil.vector_to_array(index.pq.centroids),
                                   faiss.vector_to_array(res_index.pq.centroids), atol=1e-5)
        return
    assert (res[1][1] == res[0][1]).mean() > 0.99
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-4, atol=1e-4)


# ---- HNSW -------------------------------------------------------------------------
@pytest.mark.parametrize("key,cls,code_size", [("HNSW16", "IndexFlat", 64), ("HNSW16_SQ8", "IndexScalarQuantizer", 16),
                                               ("HNSW16,PQ4x8np", "IndexPQ", 4)])
def test_hnsw_storage_is_a_copy_of_the_storage(data, key, cls, code_size):
    xt, xq = data
    index = annvil.index_factory(16, key)
    ref = faiss.index_factory(16, key)
    for idx in (index, ref):
        idx.train(xt[:2000])
        idx.add(xt[:500])
    st, fst = index.storage, faiss.downcast_index(ref.storage)
    assert isinstance(st, getattr(annvil, cls)) and isinstance(fst, getattr(faiss, cls))
    assert st.sa_code_size() == fst.sa_code_size() == code_size
    assert st.ntotal == 500
    np.testing.assert_allclose(st.reconstruct_n(0, 500), index.reconstruct_n(0, 500))
    # a snapshot: searching it is an exact scan of the same codes
    D, _ = st.search(xq, 3)
    Dh, _ = index.search(xq, 3)
    assert np.all(D[:, 0] <= Dh[:, 0] + 1e-4)


def test_hnsw_is_similarity_follows_metric(data, tmp_path):
    xt, _ = data
    for metric, want in ((annvil.METRIC_L2, False), (annvil.METRIC_INNER_PRODUCT, True)):
        index = annvil.IndexHNSWFlat(16, 8, metric)
        assert index.hnsw.is_similarity == want == faiss.IndexHNSWFlat(16, 8, metric).hnsw.is_similarity
        index.add(xt[:100])
        back = annvil.deserialize_index(annvil.serialize_index(index))
        assert back.hnsw.is_similarity == want


@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_hnsw_range_search_returns_every_node_met(data, metric):
    xt, xq = data
    xb = xt[:3000]
    flat = faiss.IndexFlat(16, metric)
    flat.add(xb)
    D, _ = flat.search(xq, 30)
    radius = float(np.median(D[:, -1]))
    lims_ref, _, Iref = flat.range_search(xq, radius)
    found = {}
    for lib in (faiss, annvil):
        index = lib.IndexHNSWFlat(16, 16, metric)
        index.add(xb)
        lims, Dr, I = index.range_search(xq, radius)
        nhit = 0
        for q in range(len(xq)):
            ref = set(Iref[lims_ref[q]:lims_ref[q + 1]].tolist())
            got = I[lims[q]:lims[q + 1]]
            assert set(got.tolist()) <= ref
            nhit += len(got)
        found[lib.__name__] = nhit
    # more than efSearch (16) per query where the radius holds more, as Faiss
    assert found["annvil"] > 16 * len(xq) * 0.5
    assert found["annvil"] >= 0.9 * found["faiss"]


def test_hnsw_stats_count_distances(data):
    xt, xq = data
    index = annvil.IndexHNSWFlat(16, 16)
    index.add(xt[:2000])
    stats = annvil.cvar.hnsw_stats
    stats.reset()
    assert stats.ndis == 0 and stats.n1 == 0
    index.search(xq, 1)
    assert stats.n1 == len(xq)
    assert stats.ndis > len(xq) * index.hnsw.efSearch
    assert stats.nhops > 0
    stats.reset()
    assert stats.ndis == 0


def test_hnsw_search_bounded_queue_flag(data):
    xt, xq = data
    index = annvil.IndexHNSWFlat(16, 16)
    index.add(xt[:1000])
    D1, I1 = index.search(xq, 5)
    index.hnsw.search_bounded_queue = False
    assert index.hnsw.search_bounded_queue is False
    D2, I2 = index.search(xq, 5)
    np.testing.assert_array_equal(I1, I2)


@pytest.mark.parametrize("key", ["HNSW16", "HNSW16_SQ8"])
def test_hnsw_filtered_distances_equal_unfiltered(data, key):
    # the planner scans small selections exactly; the distances it returns are
    # the graph's own, so a selected id has the same distance either way
    xt, xq = data
    index = annvil.index_factory(16, key)
    index.train(xt[:2000])
    index.add(xt[:300])
    D, I = index.search(xq, 10)
    subset = np.random.RandomState(3).choice(300, 120, replace=False)
    params = annvil.SearchParametersHNSW(sel=annvil.IDSelectorBatch(subset))
    Df, If = index.search(xq, 10, params=params)
    assert np.isin(If, subset).all()
    for q in range(len(xq)):
        unfiltered = dict(zip(I[q].tolist(), D[q].tolist()))
        for i, dv in zip(If[q].tolist(), Df[q].tolist()):
            if i in unfiltered:
                assert dv == unfiltered[i]  # bit for bit


# ---- IndexRefine range search --------------------------------------------------------
@pytest.mark.parametrize("metric,radius", [(annvil.METRIC_L2, 2.0), (annvil.METRIC_INNER_PRODUCT, 3.0)])
@pytest.mark.parametrize("k_factor", [1.0, 1.5])
def test_refine_range_search_equal_faiss(data, metric, radius, k_factor):
    xt, xq = data
    out = []
    for lib in (faiss, annvil):
        base = lib.index_factory(16, "SQ4", metric)
        base.train(xt)
        base.add(xt[:2000])
        refine = lib.IndexFlat(16, metric)
        refine.add(xt[:2000])
        r = lib.IndexRefine(base, refine)
        r.k_factor = k_factor
        out.append(r.range_search(xq, radius))
    (l0, D0, I0), (l1, D1, I1) = out
    for q in range(len(xq)):
        a = dict(zip(I0[l0[q]:l0[q + 1]].tolist(), D0[l0[q]:l0[q + 1]].tolist()))
        b = dict(zip(I1[l1[q]:l1[q + 1]].tolist(), D1[l1[q]:l1[q + 1]].tolist()))
        assert a.keys() == b.keys()
        for i in a:
            assert abs(a[i] - b[i]) < 1e-4
    within = D1 < radius if metric == annvil.METRIC_L2 else D1 > radius
    assert within.all()


# ---- distance computers --------------------------------------------------------------
@pytest.mark.parametrize("key", ["Flat", "SQ8", "SQ4", "PQ4np", "PQ4x6np"])
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_distance_computer_matches_search_and_faiss(data, key, metric):
    xt, xq = data
    index = annvil.index_factory(16, key, metric)
    index.train(xt[:3000])
    index.add(xt[:1000])
    D, I = index.search(xq[:8], 5)
    dc = index.get_distance_computer()
    assert dc.this.own()
    assert isinstance(index, annvil.IndexFlatCodes)
    for q in range(8):
        dc.set_query(xq[q])
        got = np.array([dc(int(i)) for i in I[q]])
        np.testing.assert_allclose(got, D[q], rtol=1e-5, atol=1e-5)
    if key == "Flat":
        fi = faiss.IndexFlat(16, metric)
        fi.add(xt[:1000])
        fdc = fi.get_distance_computer()
        fdc.set_query(faiss.swig_ptr(xq[0]))
        dc.set_query(xq[0])
        assert abs(fdc(7) - dc(7)) < 1e-4
        assert abs(fdc.symmetric_dis(3, 9) - dc.symmetric_dis(3, 9)) < 1e-4


def test_distance_computer_errors(data):
    xt, _ = data
    index = annvil.IndexFlatL2(16)
    index.add(xt[:10])
    dc = index.get_distance_computer()
    with pytest.raises(ValueError):
        dc(0)  # no query yet
    with pytest.raises(ValueError):
        dc.set_query(np.zeros(5, np.float32))
    dc.set_query(xt[0])
    with pytest.raises(ValueError):
        dc(10)
    with pytest.raises(TypeError):
        annvil.IndexFlatCodes()


# ---- IDSelectorTranslated -------------------------------------------------------------
def test_id_selector_translated_equal_faiss(data):
    xt, xq = data
    ids = np.random.RandomState(9).choice(100000, 800, replace=False).astype(np.int64)
    keep = ids[ids % 3 == 0]
    out = []
    for lib in (faiss, annvil):
        index = lib.index_factory(16, "IDMap,Flat")
        index.add_with_ids(xt[:800], ids)
        sel = lib.IDSelectorTranslated(index, lib.IDSelectorBatch(keep))
        out.append(index.search(xq, 6, params=lib.SearchParameters(sel=sel)))
        # and the plain selector (translated by the IDMap itself) agrees
        D2, I2 = index.search(xq, 6, params=lib.SearchParameters(sel=lib.IDSelectorBatch(keep)))
        np.testing.assert_array_equal(I2, out[-1][1])
    np.testing.assert_array_equal(out[1][1], out[0][1])
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-5)
    assert np.isin(out[1][1], keep).all()


# ---- auto-tuning helpers --------------------------------------------------------------
def test_operating_points_prune_like_faiss():
    pts = [(0.5, 1.0, "a"), (0.9, 1.0, "b"), (0.3, 0.2, "c"), (0.7, 0.5, "d"), (0.7, 0.4, "e"), (0.95, 3.0, "f")]
    keys = []
    for lib in (faiss, annvil):
        ops = lib.OperatingPoints()
        added = [bool(ops.add(p, t, k)) for p, t, k in pts]
        n = ops.optimal_pts.size()
        keys.append((added, [ops.optimal_pts.at(i).key for i in range(n)]))
    assert keys[1] == keys[0]


def test_criterion_groundtruth_vectors():
    gt = np.arange(30, dtype=np.int64).reshape(10, 3)
    crit = annvil.OneRecallAtRCriterion(10, 3)
    crit.set_groundtruth(None, gt)
    assert crit.gt_nnn == 3
    assert crit.gt_I.size() == 30 and crit.gt_D is None
    np.testing.assert_array_equal(annvil.vector_to_array(crit.gt_I), gt.ravel())
    assert crit.evaluate(None, gt) == 1.0


# ---- IndexFlat1D ---------------------------------------------------------------------
def test_flat1d_equal_faiss():
    rs = np.random.RandomState(4)
    xb = rs.uniform(size=(300, 1)).astype(np.float32)
    xq = (rs.uniform(size=(200, 1)) * 1.2 - 0.1).astype(np.float32)
    out = []
    for lib in (faiss, annvil):
        index = lib.IndexFlat1D()
        index.add(xb[:150])
        index.add(xb[150:])
        out.append(index.search(xq, 7))
    np.testing.assert_array_equal(out[1][1], out[0][1])
    np.testing.assert_allclose(out[1][0], out[0][0], atol=1e-6)
    # |x - y|, not squared: the exact L2 search gives the squares
    ref = faiss.IndexFlatL2(1)
    ref.add(xb)
    Dref, _ = ref.search(xq, 7)
    np.testing.assert_allclose(out[1][0] ** 2, Dref, atol=1e-5)


def test_flat1d_small_and_manual_update():
    index = annvil.IndexFlat1D()
    D, I = index.search(np.array([[0.5]], np.float32), 3)
    assert (I == -1).all() and np.isinf(D).all()
    index.add(np.array([[0.2], [0.9]], np.float32))
    D, I = index.search(np.array([[0.5]], np.float32), 3)
    np.testing.assert_array_equal(I, [[0, 1, -1]])
    lazy = annvil.IndexFlat1D(False)
    lazy.add(np.array([[0.3]], np.float32))
    with pytest.raises(ValueError):
        lazy.search(np.array([[0.5]], np.float32), 1)
    lazy.update_permutation()
    assert lazy.search(np.array([[0.5]], np.float32), 1)[1][0, 0] == 0
