"""ScalarQuantizer, IndexScalarQuantizer and IndexIVFScalarQuantizer against Faiss."""
import pickle

import numpy as np
import pytest

import annvil
import faiss

SQ = annvil.ScalarQuantizer
# the trained and float types (any data); the direct types take integers (tests below)
QTYPES = [SQ.QT_8bit, SQ.QT_8bit_uniform, SQ.QT_fp16, SQ.QT_4bit, SQ.QT_4bit_uniform, SQ.QT_6bit, SQ.QT_bf16]
QT_IDS = ["8bit", "8bit_uniform", "fp16", "4bit", "4bit_uniform", "6bit", "bf16"]
ALL_QT = ["QT_8bit", "QT_4bit", "QT_8bit_uniform", "QT_4bit_uniform", "QT_fp16", "QT_8bit_direct", "QT_6bit",
          "QT_bf16", "QT_8bit_direct_signed"]
METRICS = [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT]
D_, NB, NQ, NLIST = 32, 10000, 300, 64


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(99)
    centers = rng.standard_normal((100, D_)).astype(np.float32) * 2
    xb = (centers[rng.integers(0, 100, NB)] + rng.standard_normal((NB, D_))).astype(np.float32)
    xq = (centers[rng.integers(0, 100, NQ)] + rng.standard_normal((NQ, D_))).astype(np.float32)
    return xb, xq


def recall(I, gt):
    return np.mean([len(np.intersect1d(I[i], gt[i])) / gt.shape[1] for i in range(len(I))])


def simd_levels():
    order = ["scalar", "avx2", "avx512"]
    best = order.index(annvil.detected_simd_level())
    return order[: best + 1]


# ---- the codec ------------------------------------------------------------------------------
def test_constants():
    for name in ALL_QT:
        assert getattr(SQ, name) == getattr(faiss.ScalarQuantizer, name), name
    assert annvil.ScalarQuantizer_QT_8bit == SQ.QT_8bit  # older Faiss (SWIG) module-level names


@pytest.mark.parametrize("d", [1, 3, 17, 97, 384])
@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
def test_reconstruction_error_vs_faiss(d, qtype):
    rng = np.random.default_rng(d)
    x = (rng.standard_normal((2000, d)) * rng.uniform(0.1, 3, d)).astype(np.float32)
    a = SQ(d, qtype)
    a.train(x)
    codes = a.compute_codes(x)
    assert codes.shape == (2000, a.code_size) and codes.dtype == np.uint8
    ea = ((a.decode(codes) - x) ** 2).sum()
    f = faiss.ScalarQuantizer(d, qtype)
    f.train(x)
    ef = ((f.decode(f.compute_codes(x)) - x) ** 2).sum()
    assert ea <= ef * 1.05 + 1e-12, (ea, ef)
    # the same trained parameters and the same codes, byte for byte
    np.testing.assert_array_equal(a.trained, faiss.vector_to_array(f.trained))
    np.testing.assert_array_equal(codes, f.compute_codes(x))
    np.testing.assert_allclose(a.decode(codes), f.decode(codes), rtol=1e-6, atol=1e-6)


def test_codes_match_faiss_on_ties_and_edges():
    """Values on rounding ties (fp16 / bf16 halfway cases, t exactly on a bin
    edge) and at the ends of the trained range give Faiss's bytes."""
    rng = np.random.default_rng(5)
    u = rng.integers(0x33000000, 0x47000000, 4096, dtype=np.uint32)
    u[::2] = (u[::2] & 0xFFFFE000) | 0x1000  # fp16 ties
    u[1::4] = (u[1::4] & 0xFFFF0000) | 0x8000  # bf16 ties
    x = u.view(np.float32).reshape(-1, 16) * np.where(rng.random((256, 16)) < 0.5, -1, 1).astype(np.float32)
    for qtype in (SQ.QT_fp16, SQ.QT_bf16):
        np.testing.assert_array_equal(SQ(16, qtype).compute_codes(x), faiss.ScalarQuantizer(16, qtype).compute_codes(x))
    grid = np.tile(np.arange(64, dtype=np.float32), (3, 1))  # range [0, 63]: t = k / 63 exactly
    for qtype in (SQ.QT_8bit, SQ.QT_4bit, SQ.QT_6bit, SQ.QT_4bit_uniform):
        a, f = SQ(64, qtype), faiss.ScalarQuantizer(64, qtype)
        a.train(grid)
        f.train(grid)
        y = np.vstack([grid[0], grid[0] * 1.5 - 10, grid[0] / 7]).astype(np.float32)  # out of range: clamped
        np.testing.assert_array_equal(a.compute_codes(y), f.compute_codes(y))


@pytest.mark.parametrize("qtype", [SQ.QT_8bit_direct, SQ.QT_8bit_direct_signed], ids=["direct", "direct_signed"])
def test_direct_types(qtype):
    rng = np.random.default_rng(11)
    lo = -128 if qtype == SQ.QT_8bit_direct_signed else 0
    x = (rng.integers(0, 256, (500, 24)) + lo).astype(np.float32)
    x[:, 0] += 0.75  # truncated, as Faiss's cast
    a, f = SQ(24, qtype), faiss.ScalarQuantizer(24, qtype)
    assert a.is_trained and a.code_size == 24
    np.testing.assert_array_equal(a.compute_codes(x), f.compute_codes(x))
    np.testing.assert_array_equal(a.decode(a.compute_codes(x)), np.floor(x))
    # values outside the byte range saturate (Faiss's cast is undefined there)
    out = np.full((1, 24), lo - 5, np.float32)
    out[0, 1] = lo + 300
    np.testing.assert_array_equal(a.decode(a.compute_codes(out))[0, :2], [lo, lo + 255])
    # exact distances on integer data, every index type
    xi = np.floor(x)
    xq = xi[:20] + 0.5
    Dref, Iref = faiss.knn(xq, xi, 5)
    for idx in (annvil.IndexScalarQuantizer(24, qtype), annvil.IndexHNSWSQ(24, qtype, 16),
                annvil.IndexIVFScalarQuantizer(annvil.IndexFlatL2(24), 24, 4, qtype, annvil.METRIC_L2, False)):
        idx.train(xi)
        idx.add(xi)
        if hasattr(idx, "nprobe"):
            idx.nprobe = 4
        if hasattr(idx, "hnsw"):
            idx.hnsw.efSearch = 200
        D, I = idx.search(xq, 5)
        np.testing.assert_allclose(D, Dref, rtol=1e-6)


@pytest.mark.parametrize("qtype", [SQ.QT_4bit, SQ.QT_6bit, SQ.QT_bf16, SQ.QT_4bit_uniform],
                         ids=["4bit", "6bit", "bf16", "4u"])
@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_hnsw_sq_new_types_vs_faiss(data, qtype, metric):
    xb, xq = data
    xb = xb[:3000]
    gt = faiss.knn(xq, xb, 10, metric=metric)[1]
    a = annvil.IndexHNSWSQ(D_, qtype, 16, metric)
    f = faiss.IndexHNSWSQ(D_, qtype, 16, metric)
    for idx in (a, f):
        idx.train(xb)
        idx.add(xb)
        idx.hnsw.efSearch = 64
    np.testing.assert_allclose(a.reconstruct_n(0, 50), f.reconstruct_n(0, 50), rtol=1e-5, atol=1e-5)
    ra, rf = recall(a.search(xq, 10)[1], gt), recall(f.search(xq, 10)[1], gt)
    assert ra >= rf - 0.03, (ra, rf)
    D, I = a.search(xq[:10], 10)
    rec = a.reconstruct_n(0, a.ntotal)
    np.testing.assert_allclose(D, np.take_along_axis(faiss.pairwise_distances(xq[:10], rec, metric), I, 1),
                               rtol=1e-4, atol=1e-3)


def test_fp16_special_values():
    x = np.array([[0.0, -0.0, 1e-8, 6e-5, 65504.0, 70000.0, -70000.0, 1.0 / 3]], np.float32)
    a = SQ(x.shape[1], SQ.QT_fp16)
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(a.decode(a.compute_codes(x)), ref)


def test_codec_errors():
    with pytest.raises(ValueError, match="unsupported"):
        SQ(8, 9)  # Faiss's QT_0bit: not implemented
    with pytest.raises(ValueError, match="unsupported"):
        annvil.IndexHNSWSQ(8, -1, 16)
    s = SQ(8, SQ.QT_8bit)
    assert not s.is_trained
    with pytest.raises(annvil.NotTrainedError):
        s.compute_codes(np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError):
        s.train(np.zeros((2, 7), np.float32))
    assert SQ(8, SQ.QT_fp16).is_trained


# ---- distances on codes, every SIMD level -----------------------------------------------------------
@pytest.mark.parametrize("d", [1, 3, 17, 97, 384])
@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_code_distances_match_decoded(d, qtype, metric):
    """Distances computed on codes equal exact distances to the decoded vectors,
    at every SIMD level the machine has."""
    rng = np.random.default_rng(7 + d)
    xb = rng.standard_normal((300, d)).astype(np.float32)
    xq = rng.standard_normal((5, d)).astype(np.float32)
    idx = annvil.IndexScalarQuantizer(d, qtype, metric)
    idx.train(xb)
    idx.add(xb)
    rec = idx.reconstruct_n(0, idx.ntotal)
    np.testing.assert_allclose(rec, idx.sq.decode(idx.codes), rtol=1e-6)
    Dref, Iref = faiss.knn(xq, rec, 10, metric=metric)
    old = annvil.simd_level()
    try:
        for level in simd_levels():
            annvil.set_simd_level(level)
            D, I = idx.search(xq, 10)
            np.testing.assert_allclose(D, Dref, rtol=1e-4, atol=1e-3 * max(1, d) ** 0.5, err_msg=level)
            # ids may differ among exact ties: check the distances of the returned ids instead
            Dchk = np.take_along_axis(faiss.pairwise_distances(xq, rec, metric=metric), I, axis=1)
            np.testing.assert_allclose(Dchk, D, rtol=1e-4, atol=1e-3 * max(1, d) ** 0.5, err_msg=level)
    finally:
        annvil.set_simd_level(old)


# ---- IndexScalarQuantizer -------------------------------------------------------------------------------------
@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_flat_sq_recall_vs_faiss(data, qtype, metric):
    xb, xq = data
    gt = faiss.knn(xq, xb, 10, metric=metric)[1]
    a = annvil.IndexScalarQuantizer(D_, qtype, metric)
    a.train(xb)
    a.add(xb)
    f = faiss.IndexScalarQuantizer(D_, qtype, metric)
    f.train(xb)
    f.add(xb)
    ra, rf = recall(a.search(xq, 10)[1], gt), recall(f.search(xq, 10)[1], gt)
    assert abs(ra - rf) <= 0.01, (ra, rf)
    # single query (threads split the codes) gives the same answer
    D1, I1 = a.search(xq[:1], 10)
    D, I = a.search(xq, 10)
    assert (I1[0] == I[0]).all()


def test_flat_sq_mutation_and_round_trip(data, tmp_path):
    xb, xq = data
    a = annvil.IndexScalarQuantizer(D_, SQ.QT_8bit)
    with pytest.raises(annvil.NotTrainedError):
        a.add(xb)
    a.train(xb)
    a.add(xb)
    ref = a.search(xq, 10)
    for b in (pickle.loads(pickle.dumps(a)), annvil.deserialize_index(annvil.serialize_index(a))):
        assert type(b) is annvil.IndexScalarQuantizer
        D, I = b.search(xq, 10)
        np.testing.assert_array_equal(I, ref[1])
        np.testing.assert_array_equal(D, ref[0])
    path = str(tmp_path / "sq.annvil")
    annvil.write_index(a, path)
    m = annvil.read_index(path, mmap=True)
    np.testing.assert_array_equal(m.search(xq, 10)[1], ref[1])
    m.add(xb[:10])  # copy-on-write of a mapped index
    assert m.ntotal == NB + 10
    r5 = a.reconstruct(5)
    assert a.remove_ids(annvil.IDSelectorRange(0, 5)) == 5  # ids shift, as Faiss
    np.testing.assert_array_equal(a.reconstruct(0), r5)
    assert a.ntotal == NB - 5
    lims, Dr, Ir = a.range_search(xq[:3], float(ref[0][0, 5]))
    assert lims[-1] == len(Ir) > 0
    a.reset()
    assert a.ntotal == 0


# ---- IndexIVFScalarQuantizer ----------------------------------------------------------------------------------------
def make_pair(xb, qtype, metric, by_residual=True):
    fq = faiss.IndexFlat(D_, metric)
    f = faiss.IndexIVFScalarQuantizer(fq, D_, NLIST, qtype, metric, by_residual)
    f.train(xb)
    f.add(xb)
    q = annvil.IndexFlat(D_, metric)
    q.add(fq.reconstruct_n(0, NLIST))  # same coarse centroids: compare the codec and the scan
    a = annvil.IndexIVFScalarQuantizer(q, D_, NLIST, qtype, metric, by_residual)
    a.train(xb)
    a.add(xb)
    return a, f


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
@pytest.mark.parametrize("by_residual", [True, False], ids=["residual", "direct"])
def test_ivf_sq_recall_vs_faiss(data, qtype, metric, by_residual):
    xb, xq = data
    gt = faiss.knn(xq, xb, 10, metric=metric)[1]
    a, f = make_pair(xb, qtype, metric, by_residual)
    assert a.by_residual == by_residual and a.code_size == f.code_size
    for nprobe in (1, 4, 16, 64):
        a.nprobe = f.nprobe = nprobe
        ra, rf = recall(a.search(xq, 10)[1], gt), recall(f.search(xq, 10)[1], gt)
        assert abs(ra - rf) <= 0.01, (nprobe, ra, rf)


def test_ivf_sq_own_training(data):
    xb, xq = data
    gt = faiss.knn(xq, xb, 10)[1]
    a = annvil.IndexIVFScalarQuantizer(annvil.IndexFlatL2(D_), D_, NLIST, SQ.QT_8bit)
    assert not a.is_trained
    a.train(xb)
    a.add(xb)
    f = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(D_), D_, NLIST, SQ.QT_8bit)
    f.train(xb)
    f.add(xb)
    a.nprobe = f.nprobe = 8
    assert recall(a.search(xq, 10)[1], gt) >= recall(f.search(xq, 10)[1], gt) - 0.03


def test_ivf_sq_reconstruct_and_round_trip(data):
    xb, xq = data
    a, _ = make_pair(xb, SQ.QT_8bit, annvil.METRIC_L2)
    a.make_direct_map()
    r = a.reconstruct(17)
    assert np.abs(r - xb[17]).max() < 0.1
    a.nprobe = 8
    ref = a.search(xq, 10)
    b = pickle.loads(pickle.dumps(a))
    assert type(b) is annvil.IndexIVFScalarQuantizer and b.sq.qtype == SQ.QT_8bit
    np.testing.assert_array_equal(b.reconstruct(17), r)
    D, I = b.search(xq, 10)
    np.testing.assert_array_equal(I, ref[1])
    np.testing.assert_array_equal(D, ref[0])
    # range search through the generic scanner
    lims, Dr, Ir = a.range_search(xq[:5], float(np.median(ref[0][:5, 5])))
    assert lims[-1] == len(Ir) > 0
    # merging needs the same scalar quantizer
    c, _ = make_pair(xb[:2000], SQ.QT_8bit, annvil.METRIC_L2)
    with pytest.raises(ValueError, match="scalar quantizer"):
        a.set_direct_map_type(annvil.DirectMap.NoMap)
        a.merge_from(c)


def test_ivf_sq_fp16_needs_only_coarse_training(data):
    xb, _ = data
    q = annvil.IndexFlatL2(D_)
    q.add(xb[:NLIST])
    a = annvil.IndexIVFScalarQuantizer(q, D_, NLIST, SQ.QT_fp16)
    assert a.is_trained
    b = annvil.IndexIVFScalarQuantizer(annvil.IndexFlatL2(D_), D_, NLIST, SQ.QT_8bit)
    with pytest.raises(annvil.NotTrainedError):
        b.search(xb[:2], 3)
    with pytest.raises(ValueError):
        b.train(xb[:10])


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_ivf_sq_panel_and_scanner_paths_agree(data, qtype, metric):
    """Lists decoded for the panel kernel and lists scanned on codes give the
    same neighbours (up to float rounding)."""
    xb, xq = data
    a, _ = make_pair(xb, qtype, metric)
    a.nprobe = 16
    out = []
    for v in (1, 10**6):
        a.panel_min_queries = v
        out.append(a.search(xq, 10))
    (D1, I1), (D2, I2) = out
    assert (I1 == I2).mean() > 0.98
    np.testing.assert_allclose(D1, D2, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_flat_sq_batch_and_small_paths_agree(data, qtype, metric):
    """Batches (decoded blocks + panel kernel) and small query counts (code-domain
    kernels) return the same neighbours."""
    xb, xq = data
    a = annvil.IndexScalarQuantizer(D_, qtype, metric)
    a.train(xb)
    a.add(xb)
    D, I = a.search(xq[:60], 10)
    small = [a.search(xq[i:i + 3], 10) for i in range(0, 60, 3)]
    Ds, Is = np.vstack([s[0] for s in small]), np.vstack([s[1] for s in small])
    assert (I == Is).mean() > 0.98
    np.testing.assert_allclose(D, Ds, rtol=1e-3, atol=1e-2)
    sel = annvil.IDSelectorRange(100, 5000)
    _, Isel = a.search(xq[:60], 10, params=annvil.SearchParameters(sel=sel))
    assert ((Isel >= 100) & (Isel < 5000)).all()
