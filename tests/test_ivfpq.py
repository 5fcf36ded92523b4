"""IndexIVFPQ and IndexIVFPQFastScan against Faiss.

Both libraries get the same coarse centroids (a pre-trained flat quantizer),
so recall differences come from the product quantizer and the scan only."""
import pickle

import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")

D_, NB, NQ, NLIST = 32, 8000, 200, 32
_keep = []
PQ_NITER = 10


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The suite runs on a shared 2-core box: one thread avoids oversubscription."""
    na, nf = annvil.omp_get_max_threads(), faiss.omp_get_max_threads()
    annvil.omp_set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    annvil.omp_set_num_threads(na)
    faiss.omp_set_num_threads(nf)


def _clustered(rng, n, d, centers, spread=1.0):
    lab = rng.integers(0, len(centers), n)
    return (centers[lab] + spread * rng.standard_normal((n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((1000, D_)).astype(np.float32)
    xb = _clustered(rng, NB, D_, centers, 0.5)
    xq = _clustered(rng, NQ, D_, centers, 0.5)
    out = {"xb": xb, "xq": xq}
    for metric in (annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT):
        gt = faiss.knn(xq, xb, 10, metric=metric)[1]
        q = faiss.IndexFlatL2(D_) if metric == annvil.METRIC_L2 else faiss.IndexFlatIP(D_)
        ivf = faiss.IndexIVFFlat(q, D_, NLIST, metric)
        ivf.train(xb)
        out[metric] = (gt, q.reconstruct_n(0, NLIST))
    return out


def _quantizer(lib, metric, cents=None):
    q = lib.IndexFlatL2(D_) if metric == annvil.METRIC_L2 else lib.IndexFlatIP(D_)
    if cents is not None:
        q.add(cents)
    return q


def _recall(I, gt):
    return np.mean([len(set(I[i]) & set(gt[i])) / gt.shape[1] for i in range(len(gt))])


def _make(lib, kind, metric, cents, M, by_residual=None):
    q = _quantizer(lib, metric, cents)
    if kind == "pq":
        idx = lib.IndexIVFPQ(q, D_, NLIST, M, 8, metric)
    else:
        idx = lib.IndexIVFPQFastScan(q, D_, NLIST, M, 4, metric)
    if by_residual is not None:
        idx.by_residual = by_residual
    # fewer k-means iterations than the default 25 keep the suite fast (same for both)
    if lib is annvil:
        idx.pq.niter = PQ_NITER
    else:
        idx.pq.cp.niter = PQ_NITER
    _keep.append(q)  # keep the quantizer alive
    return idx


# ---- recall parity ------------------------------------------------------------------
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("kind,M,by_residual", [("pq", 16, None), ("pq", 16, False), ("fs", 16, None),
                                                ("fs", 16, True), ("fs", 32, None)])
def test_recall_matches_faiss(data, metric, kind, M, by_residual):
    xb, xq = data["xb"], data["xq"]
    gt, cents = data[metric]
    recalls = {}
    for lib in (annvil, faiss):
        idx = _make(lib, kind, metric, cents, M, by_residual)
        idx.train(xb)
        idx.add(xb)
        r = []
        for nprobe in (1, 4, 16):
            idx.nprobe = nprobe
            r.append(_recall(idx.search(xq, 10)[1], gt))
        recalls[lib.__name__] = np.array(r)
    diff = recalls["annvil"] - recalls["faiss"]
    assert (diff > -0.02).all() and (np.abs(diff) < 0.03).all(), recalls


def test_precomputed_table_same_results(data):
    xb, xq = data["xb"], data["xq"]
    _, cents = data[annvil.METRIC_L2]
    idx = _make(annvil, "pq", annvil.METRIC_L2, cents, 8)
    idx.train(xb)
    assert idx.use_precomputed_table == 1
    assert idx.precomputed_table.shape == (NLIST, 8, 256)
    idx.add(xb)
    idx.nprobe = 8
    D1, I1 = idx.search(xq, 10)
    idx.use_precomputed_table = 0
    assert idx.precomputed_table.size == 0
    D0, I0 = idx.search(xq, 10)
    np.testing.assert_allclose(D1, D0, rtol=1e-4, atol=1e-3)
    assert (I1 == I0).mean() > 0.99
    # the table equals |r|^2 + 2 <y_C, r>
    idx.use_precomputed_table = 1
    cen = idx.pq.centroids.reshape(8, 256, 4)
    T = idx.precomputed_table
    l = 5
    yc = cents[l].reshape(8, 1, 4)
    ref = (cen ** 2).sum(-1) + 2 * (yc * cen).sum(-1)
    np.testing.assert_allclose(T[l], ref, rtol=1e-4, atol=1e-4)
    # search distances are the distances to the reconstructions
    idx.make_direct_map()
    rec = idx.reconstruct_batch(I1[:5, 0])
    np.testing.assert_allclose(D1[:5, 0], ((rec - xq[:5]) ** 2).sum(1), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kind", ["pq", "fs"])
def test_reconstruction_error_close_to_faiss(data, kind):
    xb = data["xb"]
    _, cents = data[annvil.METRIC_L2]
    err = {}
    for lib in (annvil, faiss):
        idx = _make(lib, kind, annvil.METRIC_L2, cents, 8 if kind == "pq" else 16, by_residual=True)
        idx.train(xb)
        idx.add(xb)
        idx.make_direct_map()
        rec = np.stack([idx.reconstruct(i) for i in range(0, NB, 7)])
        err[lib.__name__] = ((rec - xb[::7]) ** 2).sum(1).mean()
    assert err["annvil"] < err["faiss"] * 1.05, err


# ---- fast-scan specifics ------------------------------------------------------------------
@pytest.mark.parametrize("by_residual", [False, True])
def test_fastscan_batches_and_tails(data, by_residual):
    """Adding in uneven batches (partly packed lists) gives the same results."""
    xb, xq = data["xb"], data["xq"]
    _, cents = data[annvil.METRIC_L2]
    a = _make(annvil, "fs", annvil.METRIC_L2, cents, 16, by_residual)
    a.train(xb)
    b = pickle.loads(pickle.dumps(a))
    a.add(xb)
    for s in np.split(np.arange(NB), [13, 500, 517, 3001, 7999]):
        b.add(xb[s])
    for idx in (a, b):
        idx.nprobe = 8
    Da, Ia = a.search(xq, 10)
    Db, Ib = b.search(xq, 10)
    np.testing.assert_allclose(Da, Db, rtol=1e-5, atol=1e-5)
    assert (Ia == Ib).mean() > 0.99
    # entries read back identically from packed and plain regions
    a.make_direct_map()
    b.make_direct_map()
    np.testing.assert_allclose(a.reconstruct_n(0, 300), b.reconstruct_n(0, 300), atol=1e-5)


def test_fastscan_from_ivfpq(data):
    xb, xq = data["xb"], data["xq"]
    _, cents = data[annvil.METRIC_L2]
    q = _quantizer(annvil, annvil.METRIC_L2, cents)
    pq = annvil.IndexIVFPQ(q, D_, NLIST, 16, 4)
    pq.train(xb)
    pq.add(xb)
    fs = annvil.IndexIVFPQFastScan(pq)
    assert fs.ntotal == pq.ntotal and fs.by_residual
    pq.nprobe = fs.nprobe = 8
    gt = data[annvil.METRIC_L2][0]
    r1 = _recall(pq.search(xq, 10)[1], gt)
    r2 = _recall(fs.search(xq, 10)[1], gt)
    assert abs(r1 - r2) < 0.03


def test_refine_on_fastscan(data):
    xb, xq = data["xb"], data["xq"]
    gt, cents = data[annvil.METRIC_INNER_PRODUCT]
    base = _make(annvil, "fs", annvil.METRIC_INNER_PRODUCT, cents, 16)
    idx = annvil.IndexRefineFlat(base)
    idx.train(xb)
    idx.add(xb)
    base.nprobe = 16
    idx.k_factor = 8
    D, I = idx.search(xq, 10)
    assert _recall(I, gt) > 0.95
    np.testing.assert_allclose(D[:, 0], (xb[I[:, 0]] * xq).sum(1), rtol=1e-4)


# ---- removal, merge, serialization -------------------------------------------------------------
@pytest.mark.parametrize("kind", ["pq", "fs"])
def test_remove_and_merge(data, kind):
    xb, xq = data["xb"], data["xq"]
    _, cents = data[annvil.METRIC_L2]
    full = _make(annvil, kind, annvil.METRIC_L2, cents, 8)
    full.train(xb[:4000])
    empty = annvil.deserialize_index(annvil.serialize_index(full))
    a = annvil.deserialize_index(annvil.serialize_index(empty))
    b = annvil.deserialize_index(annvil.serialize_index(empty))
    full.add(xb)
    a.add(xb[:3000])
    b.add(xb[3000:])
    a.merge_from(b, 3000)
    assert a.ntotal == NB and b.ntotal == 0
    for idx in (full, a):
        idx.nprobe = 8
    Df, If = full.search(xq, 10)
    Da, Ia = a.search(xq, 10)
    np.testing.assert_allclose(Da, Df, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(Ia, If)

    rm = np.arange(0, NB, 3)
    assert a.remove_ids(rm) == len(rm)
    assert a.ntotal == NB - len(rm)
    keep = np.setdiff1d(np.arange(NB), rm)
    ref = annvil.deserialize_index(annvil.serialize_index(empty))
    ref.add_with_ids(xb[keep], keep)
    ref.nprobe = 8
    Dr, Ir = ref.search(xq, 10)
    D2, I2 = a.search(xq, 10)
    assert not np.isin(I2, rm).any()
    np.testing.assert_allclose(D2, Dr, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(I2, Ir)


@pytest.mark.parametrize("kind", ["pq", "fs"])
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_round_trip(tmp_path, data, kind, metric):
    xb, xq = data["xb"], data["xq"]
    _, cents = data[metric]
    idx = _make(annvil, kind, metric, cents, 8, by_residual=True)
    idx.train(xb)
    idx.add(xb[:5000])
    idx.nprobe = 6
    D, I = idx.search(xq, 10)
    p = tmp_path / "ivfpq.annvil"
    annvil.write_index(idx, str(p))
    for other in (annvil.read_index(str(p)), annvil.read_index(str(p), mmap=True), pickle.loads(pickle.dumps(idx))):
        assert type(other) is type(idx)
        assert other.nprobe == 6 and other.by_residual and other.ntotal == 5000
        assert other.use_precomputed_table == idx.use_precomputed_table
        D2, I2 = other.search(xq, 10)
        np.testing.assert_array_equal(I2, I)
        np.testing.assert_allclose(D2, D, rtol=1e-6)
    # a round-tripped index keeps accepting vectors
    other = pickle.loads(pickle.dumps(idx))
    other.add(xb[5000:])
    assert other.ntotal == NB


def test_search_params_and_selector(data):
    xb, xq = data["xb"], data["xq"]
    _, cents = data[annvil.METRIC_L2]
    for kind in ("pq", "fs"):
        idx = _make(annvil, kind, annvil.METRIC_L2, cents, 8)
        idx.train(xb)
        idx.add(xb)
        idx.nprobe = 1
        D1, I1 = idx.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=8))
        idx.nprobe = 8
        D2, I2 = idx.search(xq, 10)
        np.testing.assert_array_equal(I1, I2)
        sel = annvil.IDSelectorRange(0, 4000)
        D3, I3 = idx.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=8, sel=sel))
        assert ((I3 >= 0) & (I3 < 4000) | (I3 == -1)).all()
        # k larger than what the probed lists hold: padded
        D4, I4 = idx.search(xq[:3], 5000, params=annvil.SearchParametersIVF(nprobe=1))
        assert (I4 == -1).any() and (np.abs(D4[I4 == -1]) == np.finfo(np.float32).max).all()
        lims, Dr, Ir = idx.range_search(xq[:5], float(np.median(D2[:5, -1])))
        assert len(lims) == 6


# ---- bad input ------------------------------------------------------------------------------
def test_bad_input(data):
    xb = data["xb"]
    q = annvil.IndexFlatL2(D_)
    with pytest.raises(annvil.InvalidArgumentError, match="multiple"):
        annvil.IndexIVFPQ(q, D_, NLIST, 7, 8)
    for nbits in (0, 17):
        with pytest.raises(annvil.InvalidArgumentError, match="nbits"):
            annvil.IndexIVFPQ(q, D_, NLIST, 8, nbits)
    with pytest.raises(annvil.InvalidArgumentError, match="nbits=4"):
        annvil.IndexIVFPQFastScan(q, D_, NLIST, 8, 8)
    with pytest.raises(annvil.InvalidArgumentError, match="bbs"):  # a multiple of 32
        annvil.IndexIVFPQFastScan(q, D_, NLIST, 8, 4, annvil.METRIC_L2, 48)
    for cls, args in ((annvil.IndexIVFPQ, (8, 8)), (annvil.IndexIVFPQFastScan, (8, 4))):
        idx = cls(annvil.IndexFlatL2(D_), D_, NLIST, *args)
        with pytest.raises(annvil.NotTrainedError):
            idx.search(xb[:2], 3)
        with pytest.raises(annvil.NotTrainedError):
            idx.add(xb[:2])
        with pytest.raises(annvil.InvalidArgumentError, match="nlist"):
            idx.train(xb[:NLIST - 1])
        assert not idx.is_trained
        with pytest.raises(annvil.InvalidArgumentError, match="dimension"):
            idx.train(xb[:, :16])
    idx = annvil.IndexIVFPQ(annvil.IndexFlatL2(D_), D_, NLIST, 8, 8)
    with pytest.raises(annvil.InvalidArgumentError, match="2\\^nbits=256"):
        idx.train(xb[:100])
    assert not idx.is_trained and idx.quantizer.ntotal == 0
    idx.train(xb[:2000])
    with pytest.raises(annvil.InvalidArgumentError):
        idx.use_precomputed_table = 3
    idx.add(xb[:10])
    idx.by_residual = False  # allowed at any time, as in Faiss (stored codes are then read as plain codes)
    assert not idx.by_residual
    idx.by_residual = True
    other = annvil.IndexIVFPQ(annvil.IndexFlatL2(D_), D_, NLIST, 8, 8)
    other.train(xb[2000:4000])
    other.add(xb[:10])
    with pytest.raises(annvil.InvalidArgumentError):
        idx.merge_from(other)
    assert idx.ntotal == 10 and other.ntotal == 10


@pytest.mark.parametrize("metric,by_residual", [(annvil.METRIC_L2, False), (annvil.METRIC_INNER_PRODUCT, True),
                                                (annvil.METRIC_L2, True)])
@pytest.mark.parametrize("k", [10, 50])
@pytest.mark.parametrize("kind", ["pq", "fs"])
def test_batch_equals_single_queries(data, metric, by_residual, k, kind):
    """The batch paths (list-grouped for fast-scan, large-k reservoirs) return
    what single-query search returns."""
    xb, xq = data["xb"], data["xq"]
    _, cents = data[metric]
    idx = _make(annvil, kind, metric, cents, 16, by_residual)
    idx.train(xb)
    idx.add(xb)
    idx.nprobe = 6
    D, I = idx.search(xq[:40], k)
    for i in range(0, 40, 7):
        D1, I1 = idx.search(xq[i:i + 1], k)
        np.testing.assert_allclose(D1[0], D[i], rtol=1e-5, atol=1e-5)
        assert (I1[0] == I[i]).mean() > 0.95


@pytest.mark.parametrize("kind", ["pq", "fs"])
def test_max_codes(data, kind):
    xb, xq = data["xb"], data["xq"]
    _, cents = data[annvil.METRIC_L2]
    idx = _make(annvil, kind, annvil.METRIC_L2, cents, 8)
    idx.train(xb)
    idx.add(xb)
    idx.nprobe = 16
    gt = data[annvil.METRIC_L2][0]
    r_all = _recall(idx.search(xq, 10)[1], gt)
    r_few = _recall(idx.search(xq, 10, params=annvil.SearchParametersIVF(max_codes=300))[1], gt)
    assert r_few < r_all


LEVELS = ["scalar", "avx2", "avx512"]


@pytest.mark.parametrize("kind,M", [("pq", 16), ("pq", 8), ("fs", 16)])
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_simd_levels_agree(data, kind, M, metric):
    """Encoding, tables, screening and fast-scan LUTs give the scalar level's
    results at every SIMD level the CPU has; training quality is level-independent."""
    xb, xq = data["xb"], data["xq"]
    _, cents = data[metric]
    supported = LEVELS[: LEVELS.index(annvil.detected_simd_level()) + 1]
    old = annvil.simd_level()
    try:
        base = _make(annvil, kind, metric, cents, M, by_residual=True)
        base.train(xb[:4000])
        blob = annvil.serialize_index(base)
        res, errs = {}, {}
        for level in supported:
            annvil.set_simd_level(level)
            idx = annvil.deserialize_index(blob)
            idx.add(xb)
            idx.nprobe = 8
            res[level] = idx.search(xq, 10)
            t = _make(annvil, kind, metric, cents, M, by_residual=True)
            t.train(xb[:3000])
            t.add(xb[:2000])
            rec = t.reconstruct_n(0, 2000)
            errs[level] = ((rec - xb[:2000]) ** 2).sum(1).mean()
        Dr, Ir = res["scalar"]
        for level, (D, I) in res.items():
            # an encoding near-tie may pick another code for a vector at one
            # level (the argmin is computed with another rounding): allow a
            # handful of such distances, never a systematic difference
            close = np.isclose(D, Dr, rtol=1e-4, atol=1e-3)
            assert close.mean() > 0.998, (level, np.argwhere(~close)[:5])
            assert (I == Ir).mean() > 0.98, level
            assert abs(errs[level] - errs["scalar"]) < 0.02 * errs["scalar"], errs
    finally:
        annvil.set_simd_level(old)


@pytest.mark.parametrize("kind,metric", [("pq", annvil.METRIC_L2), ("pq", annvil.METRIC_INNER_PRODUCT),
                                         ("fs", annvil.METRIC_INNER_PRODUCT)])
def test_threads_agree(data, kind, metric):
    """Parallel batch search (threads over queries or lists) = one thread."""
    xb, xq = data["xb"], data["xq"]
    _, cents = data[metric]
    idx = _make(annvil, kind, metric, cents, 16)
    idx.train(xb)
    idx.add(xb)
    idx.nprobe = 32
    ref = {k: idx.search(xq, k) for k in (10, 40)}
    annvil.omp_set_num_threads(2)
    try:
        for k in (10, 40):
            D, I = idx.search(xq, k)
            np.testing.assert_allclose(D, ref[k][0], rtol=1e-5, atol=1e-5)
            assert (I == ref[k][1]).mean() > 0.99
        D1, I1 = idx.search(xq[:1], 10)  # one query over two threads
        np.testing.assert_allclose(D1, ref[10][0][:1], rtol=1e-5, atol=1e-5)
    finally:
        annvil.omp_set_num_threads(1)


@pytest.mark.parametrize("nbits", [4, 6, 10])
def test_other_code_widths(data, nbits):
    """Generic bit widths (codes not byte-aligned) against Faiss."""
    xb, xq = data["xb"], data["xq"]
    gt, cents = data[annvil.METRIC_L2]
    rec = {}
    for lib in (annvil, faiss):
        q = _quantizer(lib, annvil.METRIC_L2, cents)
        _keep.append(q)
        idx = lib.IndexIVFPQ(q, D_, NLIST, 8, nbits)
        if lib is annvil:
            idx.pq.niter = PQ_NITER
        else:
            idx.pq.cp.niter = PQ_NITER
        idx.train(xb)
        idx.add(xb)
        idx.nprobe = 8
        rec[lib.__name__] = _recall(idx.search(xq, 10)[1], gt)
    assert rec["annvil"] > rec["faiss"] - 0.03, rec
