"""IndexHNSWFlat: recall against Faiss, deletes, filtered search, determinism,
index files (mmap included), pickling and bad input."""
import pickle

import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")


def clustered(n, d, seed, nclusters=50, spread=0.3):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((nclusters, d)).astype(np.float32)
    x = centers[rng.integers(0, nclusters, n)] + spread * rng.standard_normal((n, d)).astype(np.float32)
    return x.astype(np.float32)


def lowdim(n, d, seed, idim=8):
    """Clusters on an idim-dimensional subspace plus a little noise: the
    regime where graph indexes reach high recall, so recall varies little
    between random graphs and comparisons are meaningful."""
    proj = np.random.default_rng(100).standard_normal((idim, d)).astype(np.float32)
    z = clustered(n, idim, seed, nclusters=20, spread=0.5)
    noise = 0.05 * np.random.default_rng(seed + 7).standard_normal((n, d)).astype(np.float32)
    return (z @ proj + noise).astype(np.float32)


def recall(I, gt):
    k = gt.shape[1]
    return float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / k for a, b in zip(I, gt)]))


@pytest.fixture(scope="module")
def data():
    xb = lowdim(5000, 32, 0)
    xq = lowdim(200, 32, 1)
    return xb, xq


@pytest.fixture(scope="module")
def built_l2(data):
    xb, _ = data
    index = annvil.IndexHNSWFlat(32, 16)
    index.hnsw.efConstruction = 40
    index.add(xb)
    return index


# ---- recall against Faiss at equal parameters ---------------------------------------
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_recall_matches_faiss(data, metric):
    xb, xq = data
    if metric == annvil.METRIC_INNER_PRODUCT:  # unit vectors: the usual use of IP graphs
        xb = xb / np.linalg.norm(xb, axis=1, keepdims=True)
        xq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    gt = annvil.knn(xq, xb, 10, metric)[1]
    ours = annvil.IndexHNSWFlat(32, 16, metric)
    ref = faiss.IndexHNSWFlat(32, 16, metric)
    for idx in (ours, ref):
        idx.hnsw.efConstruction = 40
        idx.add(xb)
    for ef in (16, 32, 64):
        ours.hnsw.efSearch = ef
        ref.hnsw.efSearch = ef
        r_ours = recall(ours.search(xq, 10)[1], gt)
        r_ref = recall(ref.search(xq, 10)[1], gt)
        assert r_ours >= r_ref - 0.01, (ef, r_ours, r_ref)
        assert r_ours > 0.85
    D, I = ours.search(xq, 10)
    # distances are exact for the returned ids
    ex = annvil.pairwise_distances(xq[:5], xb, metric)
    for q in range(5):
        np.testing.assert_allclose(D[q], ex[q, I[q]], rtol=1e-4, atol=1e-4)


def test_graph_structure(built_l2):
    index = built_l2
    h = index.hnsw
    assert h.M == 16 and h.nb_neighbors(0) == 32 and h.nb_neighbors(1) == 16
    assert index.ntotal == 5000 == h.ntotal
    levels = h.levels  # Faiss convention: number of levels = top level + 1
    assert levels.shape == (5000,) and levels.min() == 1
    assert h.max_level == levels.max() - 1
    assert levels[h.entry_point] - 1 == h.max_level
    # level distribution follows mL = 1 / ln(M): P(level >= 1) = 1 / M
    frac_upper = np.mean(levels > 1)
    assert 0.03 < frac_upper < 0.10
    nb = h.get_neighbors(0, 0)
    assert 0 < len(nb) <= 32 and nb.min() >= 0 and nb.max() < 5000 and 0 not in nb


def test_attributes_and_params(data, built_l2):
    xb, xq = data
    index = built_l2
    gt = annvil.knn(xq, xb, 10)[1]
    index.hnsw.efSearch = 16
    r16 = recall(index.search(xq, 10)[1], gt)
    params = annvil.SearchParametersHNSW(efSearch=128)
    r128 = recall(index.search(xq, 10, params=params)[1], gt)
    assert r128 > r16 and r128 > 0.97
    assert index.hnsw.efSearch == 16  # params do not stick
    with pytest.raises(TypeError):
        annvil.SearchParametersHNSW(128)  # keyword-only
    with pytest.raises(ValueError):
        annvil.SearchParametersHNSW(efSearch=0)
    with pytest.raises(ValueError):
        index.hnsw.efSearch = 0
    # writable entry point / max level, as in Faiss
    ep, ml = index.hnsw.entry_point, index.hnsw.max_level
    index.hnsw.max_level = 0
    index.hnsw.entry_point = 123
    assert index.hnsw.entry_point == 123
    assert recall(index.search(xq, 10, params=params)[1], gt) > 0.9
    with pytest.raises(ValueError):
        index.hnsw.entry_point = 10**9
    index.hnsw.entry_point = ep
    index.hnsw.max_level = ml
    assert index.hnsw.entry_point == ep
    with pytest.raises(ValueError):
        index.hnsw.entry_point = int(np.flatnonzero(index.hnsw.levels == 1)[0])  # too low for max_level
    index.hnsw.efSearch = 16


def test_reconstruct_reset_and_padding(data):
    xb, xq = data
    index = annvil.IndexHNSWFlat(32, 8)
    index.add(xb[:7])
    np.testing.assert_array_equal(index.reconstruct(3), xb[3])
    np.testing.assert_array_equal(index.reconstruct_n(0, 7), xb[:7])
    D, I = index.search(xq[:3], 10)
    assert (I[:, 7:] == -1).all() and (np.abs(D[:, 7:]) == np.finfo(np.float32).max).all()
    assert sorted(I[0, :7]) == list(range(7))
    index.reset()
    assert index.ntotal == 0
    D, I = index.search(xq[:2], 5)
    assert (I == -1).all()
    index.add(xb[:100])
    assert index.ntotal == 100


def test_incremental_and_threaded_add(data):
    xb, xq = data
    gt = annvil.knn(xq, xb, 10)[1]
    index = annvil.IndexHNSWFlat(32, 16)
    for chunk in np.array_split(np.arange(len(xb)), [1, 10, 1000, 3000]):
        index.add(xb[chunk])
    index.hnsw.efSearch = 64
    assert index.ntotal == len(xb)
    assert recall(index.search(xq, 10)[1], gt) > 0.95


def test_determinism_single_thread(data):
    xb, xq = data
    prev = annvil.omp_get_max_threads()
    annvil.omp_set_num_threads(1)
    try:
        a = annvil.IndexHNSWFlat(32, 16)
        b = annvil.IndexHNSWFlat(32, 16)
        a.add(xb[:2000])
        b.add(xb[:2000])
        np.testing.assert_array_equal(annvil.serialize_index(a), annvil.serialize_index(b))
        np.testing.assert_array_equal(a.search(xq, 10)[1], b.search(xq, 10)[1])
        c = annvil.IndexHNSWFlat(32, 16)
        c.hnsw.seed = 7
        c.add(xb[:2000])
        assert not np.array_equal(a.hnsw.levels, c.hnsw.levels)
    finally:
        annvil.omp_set_num_threads(prev)


# ---- deletes ---------------------------------------------------------------------------
def test_deletes(data):
    xb, xq = data
    index = annvil.IndexHNSWFlat(32, 16)
    index.add(xb)
    index.hnsw.efSearch = 32
    r_before = recall(index.search(xq, 10)[1], annvil.knn(xq, xb, 10)[1])
    rng = np.random.default_rng(3)
    gone = rng.choice(len(xb), int(0.3 * len(xb)), replace=False)
    assert index.mark_deleted(gone) == len(gone)
    assert index.mark_deleted(gone[:10]) == 0  # already gone
    assert index.remove_ids_shifts()  # remove_ids renumbers; mark_deleted keeps ids
    assert index.n_deleted == len(gone) and index.ntotal == len(xb)
    assert index.is_deleted(int(gone[0])) and not index.is_deleted(int(np.setdiff1d(np.arange(5000), gone)[0]))
    alive = np.setdiff1d(np.arange(len(xb)), gone)
    gt = alive[annvil.knn(xq, xb[alive], 10)[1]]
    index.filter_strategy = "graph"  # the planner would scan 70% exactly on this small index
    D, I = index.search(xq, 10)
    assert not np.isin(I, gone).any()
    assert recall(I, gt) >= r_before - 0.02
    index.filter_strategy = "auto"
    D, I = index.search(xq, 10)
    assert not np.isin(I, gone).any()
    assert recall(I, gt) >= r_before - 0.02
    # reconstruct still serves the stored vector of live ids
    np.testing.assert_array_equal(index.reconstruct(int(alive[0])), xb[alive[0]])


def test_replace_deleted_and_compact(data):
    xb, xq = data
    index = annvil.IndexHNSWFlat(32, 16)
    index.add(xb[:3000])
    index.mark_deleted(np.arange(100, 200))
    assert index.add(xb[3000:3010]) is None  # appended: ids 3000..3009
    assert index.ntotal == 3010
    index.replace_deleted = True
    ids = index.add(xb[3010:3060])
    np.testing.assert_array_equal(ids, np.arange(100, 150))
    assert index.n_deleted == 50 and index.ntotal == 3010
    D, I = index.search(xb[3010:3060], 1)
    assert (I[:, 0] == ids).mean() > 0.95
    ids2 = index.add(xb[3060:3120])  # 50 reused, 10 appended
    np.testing.assert_array_equal(ids2, np.r_[np.arange(150, 200), np.arange(3010, 3020)])
    assert index.n_deleted == 0
    # compact renumbers without the deleted slots
    index.mark_deleted(annvil.IDSelectorRange(0, 1000))
    old = index.compact()
    assert index.ntotal == 3020 - 1000 and index.n_deleted == 0 and len(old) == index.ntotal
    np.testing.assert_array_equal(index.reconstruct(0), xb[1000])
    D, I = index.search(xb[2000:2010], 1)
    np.testing.assert_array_equal(old[I[:, 0]], np.arange(2000, 2010))


# ---- filtered search -----------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["auto", "graph"])
def test_filtered_recall(strategy):
    xb = clustered(20000, 16, 5, nclusters=100)
    xq = clustered(100, 16, 6, nclusters=100)
    index = annvil.IndexHNSWFlat(16, 8)
    index.hnsw.efConstruction = 40
    index.add(xb)
    index.hnsw.efSearch = 32
    base = recall(index.search(xq, 10)[1], annvil.knn(xq, xb, 10)[1])
    index.filter_strategy = strategy
    rng = np.random.default_rng(7)
    fracs = [0.001, 0.01, 0.05, 0.1, 0.3, 0.6, 1.0] if strategy == "auto" else [0.05, 0.3, 0.6]
    for frac in fracs:
        mask = rng.random(len(xb)) < frac
        allowed = np.flatnonzero(mask)
        kk = min(10, len(allowed))
        gt = allowed[annvil.knn(xq, xb[allowed], kk)[1]]
        D, I = index.search(xq, kk, params=annvil.SearchParametersHNSW(sel=mask))
        assert np.isin(I[I >= 0], allowed).all()
        assert recall(I, gt) >= base - 0.005, (frac, recall(I, gt), base)
    # every selector form gives the same answer
    sel_ids = np.arange(0, 20000, 7)
    mask = np.zeros(20000, bool)
    mask[sel_ids] = True
    res = [index.search(xq, 10, params=annvil.SearchParametersHNSW(sel=s))[1]
           for s in (mask, sel_ids, annvil.IDSelectorBatch(sel_ids), annvil.IDSelectorBitmap(mask))]
    for r in res[1:]:
        np.testing.assert_array_equal(r, res[0])
    D, I = index.search(xq, 10, params=annvil.SearchParameters(sel=annvil.IDSelectorRange(100, 200)))
    assert ((I >= 100) & (I < 200)).all()
    # nothing allowed: all missing
    D, I = index.search(xq, 5, params=annvil.SearchParametersHNSW(sel=np.zeros(20000, bool)))
    assert (I == -1).all() and (np.abs(D) == np.finfo(np.float32).max).all()


# ---- files -------------------------------------------------------------------------------
def test_write_read_mmap(tmp_path, data, built_l2):
    xb, xq = data
    index = built_l2
    index.hnsw.efSearch = 24
    D0, I0 = index.search(xq, 10)
    path = tmp_path / "hnsw.annvil"
    annvil.write_index(index, path)
    for mm in (False, True):
        back = annvil.read_index(path, mmap=mm)
        assert type(back) is annvil.IndexHNSWFlat
        assert back.hnsw.efSearch == 24 and back.hnsw.M == 16
        D, I = back.search(xq, 10)
        np.testing.assert_array_equal(I, I0)
        np.testing.assert_array_equal(D, D0)
    # a mapped index still accepts adds (copy on write) and deletes
    back = annvil.read_index(path, mmap=True)
    back.add(xb[:10])
    assert back.ntotal == 5010
    back.mark_deleted(np.arange(10))
    assert not np.isin(back.search(xq, 10)[1], np.arange(10)).any()
    np.testing.assert_array_equal(annvil.read_index(path).search(xq, 10)[1], I0)  # file untouched


def test_pickle_and_serialize_with_deletes(data):
    xb, xq = data
    index = annvil.IndexHNSWFlat(32, 8, annvil.METRIC_INNER_PRODUCT)
    index.add(xb[:1000])
    index.mark_deleted(np.arange(0, 1000, 3))
    D0, I0 = index.search(xq, 5)
    for back in (pickle.loads(pickle.dumps(index)),
                 annvil.deserialize_index(annvil.serialize_index(index))):
        assert back.n_deleted == index.n_deleted and back.metric_type == annvil.METRIC_INNER_PRODUCT
        D, I = back.search(xq, 5)
        np.testing.assert_array_equal(I, I0)
        np.testing.assert_array_equal(D, D0)


def test_corrupt_file_raises(data, built_l2):
    buf = annvil.serialize_index(built_l2).copy()
    with pytest.raises(annvil.IndexFileError):
        annvil.deserialize_index(buf[: len(buf) // 2])


# ---- awkward sizes and bad input ---------------------------------------------------------
@pytest.mark.parametrize("d", [1, 3, 17, 97])
def test_awkward_dims(d):
    xb = clustered(600, d, d)
    xq = clustered(11, d, d + 1)
    index = annvil.IndexHNSWFlat(d, 4)
    index.hnsw.efSearch = 64
    index.add(xb)
    gt = annvil.knn(xq, xb, 5)[1]
    assert recall(index.search(xq, 5)[1], gt) > 0.9


def test_bad_input(data):
    xb, xq = data
    index = annvil.IndexHNSWFlat(32, 8)
    index.add(xb[:100])
    with pytest.raises(ValueError):
        index.add(np.zeros((3, 31), np.float32))
    bad = xb[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError):
        index.add(bad)
    assert index.ntotal == 100  # unchanged
    with pytest.raises(ValueError):
        index.search(xq[:, :5], 3)
    with pytest.raises(ValueError):
        index.search(xq, 0)
    with pytest.raises(ValueError):
        index.search(xq, -1)
    with pytest.raises(ValueError):
        annvil.IndexHNSWFlat(32, 1)
    with pytest.raises(ValueError):
        annvil.IndexHNSWFlat(0, 16)
    with pytest.raises(ValueError):
        index.reconstruct(100)
    with pytest.raises(ValueError):
        index.filter_strategy = "fast"
    with pytest.raises((ValueError, TypeError)):
        index.search(xq, 3, params="efSearch=3")


# ---- exact half-precision storage ---------------------------------------------------------
def simd_levels():
    order = ["scalar", "avx2", "avx512"]
    return order[: order.index(annvil.detected_simd_level()) + 1]


@pytest.mark.parametrize("level", simd_levels())
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_f16_storage_is_lossless(level, metric, tmp_path):
    xb = lowdim(2000, 97, 2)
    if metric == annvil.METRIC_INNER_PRODUCT:
        xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xb[5, :3] = [6.0e-8, -3.0e-5, 0.0]  # half subnormals and a zero
    xb = xb.astype(np.float16).astype(np.float32)  # exactly representable
    assert xb[5, 0] != 0
    xq = lowdim(20, 97, 3)
    prev = annvil.simd_level()
    annvil.set_simd_level(level)
    try:
        index = annvil.IndexHNSWFlat(97, 8, metric)
        index.hnsw.efSearch = 64
        index.add(xb)
        assert index.is_f16
        np.testing.assert_array_equal(index.reconstruct_n(0, 2000), xb)
        D, I = index.search(xq, 5)
        ex = annvil.pairwise_distances(xq, xb, metric)
        np.testing.assert_allclose(D, np.take_along_axis(ex, I, 1), rtol=1e-5, atol=1e-4)
        gt = annvil.knn(xq, xb, 5, metric)[1]
        assert recall(I, gt) > 0.95
        # a vector that is not exact in half converts the storage to float32
        extra = lowdim(10, 97, 4)
        index.add(extra)
        assert not index.is_f16
        np.testing.assert_array_equal(index.reconstruct_n(0, 2000), xb)
        np.testing.assert_array_equal(index.reconstruct_n(2000, 10), extra)
        sel = annvil.SearchParametersHNSW(sel=annvil.IDSelectorRange(0, 2000))
        assert recall(index.search(xq, 5, params=sel)[1], gt) > 0.95
    finally:
        annvil.set_simd_level(prev)


def test_f16_files_and_opt_out(tmp_path):
    xb = lowdim(1500, 32, 8).astype(np.float16).astype(np.float32)
    xq = lowdim(30, 32, 9)
    index = annvil.IndexHNSWFlat(32, 8)
    index.add(xb)
    assert index.is_f16
    D0, I0 = index.search(xq, 5)
    path = tmp_path / "h16.annvil"
    annvil.write_index(index, path)
    for mm in (False, True):
        back = annvil.read_index(path, mmap=mm)
        assert back.is_f16
        D, I = back.search(xq, 5)
        np.testing.assert_array_equal(I, I0)
        np.testing.assert_array_equal(D, D0)
    off = annvil.IndexHNSWFlat(32, 8)
    off.allow_f16 = False
    off.add(xb)
    assert not off.is_f16
    assert off.memory_usage() > index.memory_usage() + 1500 * 32 * 2 * 0.9


def test_inside_idmap(data):
    xb, xq = data
    index = annvil.IndexIDMap(annvil.IndexHNSWFlat(32, 16))
    ids = np.arange(len(xb)) * 10 + 7
    index.add_with_ids(xb, ids)
    gt = annvil.knn(xq, xb, 10)[1]
    D, I = index.search(xq, 10)
    assert recall(I, ids[gt]) > 0.9
    assert index.remove_ids(ids[:100]) == 100
    D, I = index.search(xq, 10)
    assert not np.isin(I, ids[:100]).any()


def test_range_search(data, built_l2):
    xb, xq = data
    index = built_l2
    D, I = annvil.knn(xq[:20], xb, 30)
    radius = float(np.median(D[:, 10]))
    lims, Dr, Ir = index.range_search(xq[:20], radius, params=annvil.SearchParametersHNSW(efSearch=64))
    assert len(lims) == 21 and (Dr < radius).all()
    ref = faiss.IndexFlatL2(32)
    ref.add(xb)
    lims_e, _, Ie = ref.range_search(xq[:20], radius)
    found = sum(len(set(Ir[lims[i]:lims[i + 1]]) & set(Ie[lims_e[i]:lims_e[i + 1]])) for i in range(20))
    assert found >= 0.9 * len(Ie) and found == len(Ir)


def test_large_arrays_grow_in_chunks_and_copies_stay_independent():
    # > 4 MB of vectors and links: the arrays live on growable huge-page
    # buffers (storage.h); chunked adds, a clone and a failed add must all
    # leave exactly the data that was added
    rng = np.random.default_rng(3)
    x = rng.standard_normal((24_000, 64)).astype("float32")
    idx = annvil.IndexHNSWFlat(64, 8)
    idx.hnsw.efConstruction = 20
    for part in np.array_split(x[:18_000], 3):
        idx.add(part)
    clone = annvil.deserialize_index(annvil.serialize_index(idx))
    idx.add(x[18_000:])
    q = x[::480]
    D0, I0 = idx.search(q, 5)
    assert idx.ntotal == 24_000 and clone.ntotal == 18_000
    np.testing.assert_array_equal(idx.reconstruct_n(0, 24_000), x)
    np.testing.assert_array_equal(clone.reconstruct_n(0, 18_000), x[:18_000])
    # a failure inside the parallel insertion rolls the huge-page arrays back
    annvil._core._inject_parallel_fault(1)
    try:
        with pytest.raises(RuntimeError, match="injected fault"):
            idx._add(x[:3000] + 1)
    finally:
        annvil._core._inject_parallel_fault(0)
    assert idx.ntotal == 24_000
    np.testing.assert_array_equal(idx.reconstruct_n(0, 24_000), x)
    D1, I1 = idx.search(q, 5)
    assert I1.max() < 24_000
    assert (I1 == I0).mean() > 0.95  # a rolled-back insertion may have pruned a few old links
