"""Tests of the PQ family (ProductQuantizer, IndexPQ, IndexPQFastScan), with
Faiss as the oracle on small seeded data.  Refine, OPQ and IndexPreTransform
over PQ: test_pq_pipelines.py."""
import pickle

import numpy as np
import pytest

import annvil
from annvil.eval import intersection_recall
from conftest import subspace_data, subspace_gt

faiss = pytest.importorskip("faiss")

D = 32
pytestmark = pytest.mark.usefixtures("faiss_one_thread")


def make_data(seed=0, n=5000, nq=300, d=D, intrinsic=16):
    return subspace_data(seed, n, nq, d, intrinsic)


@pytest.fixture(scope="module")
def data():
    xb, xq = make_data()
    return xb, xq, subspace_gt(xb, xq)


def recall(I, gt):
    return intersection_recall(I, gt, gt.shape[1])


def faiss_pq_with(pq):
    """A Faiss ProductQuantizer holding annvil's codebooks."""
    fpq = faiss.ProductQuantizer(pq.d, pq.M, pq.nbits)
    faiss.copy_array_to_vector(pq.centroids, fpq.centroids)
    return fpq


# ---------------------------------------------------------------- ProductQuantizer
def test_pq_attributes():
    pq = annvil.ProductQuantizer(32, 8, 6)
    assert (pq.d, pq.M, pq.nbits, pq.dsub, pq.ksub, pq.code_size) == (32, 8, 6, 4, 64, 6)
    assert pq.centroids.shape == (8 * 64 * 4,)
    assert not pq.is_trained
    pq.cp.niter = 7  # Faiss's spelling of the k-means settings
    assert pq.niter == 7 and pq.cp.max_points_per_centroid == 256


@pytest.mark.parametrize("nbits", [1, 3, 4, 5, 8, 12])
def test_pq_codes_match_faiss_layout(data, nbits):
    xb, _, _ = data
    M = 8
    pq = annvil.ProductQuantizer(D, M, nbits)
    pq.niter = 5
    pq.train(xb)
    codes = pq.compute_codes(xb[:300])
    assert codes.dtype == np.uint8 and codes.shape == (300, pq.code_size)
    fpq = faiss_pq_with(pq)
    fcodes = fpq.compute_codes(xb[:300])
    # the same codebooks give the same codes (allow a rare tie broken differently)
    assert np.mean(np.all(codes == fcodes, axis=1)) > 0.99
    np.testing.assert_allclose(pq.decode(fcodes), fpq.decode(fcodes), rtol=0, atol=0)


def test_pq_nbits16_layout():
    rs = np.random.RandomState(3)
    pq = annvil.ProductQuantizer(4, 2, 16)
    pq.centroids = rs.randn(2 * 65536 * 2).astype(np.float32)
    pq.is_trained = True
    x = rs.randn(200, 4).astype(np.float32)
    codes = pq.compute_codes(x)
    fcodes = faiss_pq_with(pq).compute_codes(x)
    assert codes.shape == (200, 4)
    assert np.mean(np.all(codes == fcodes, axis=1)) > 0.99


@pytest.mark.parametrize("M,nbits", [(8, 8), (16, 4), (4, 6)])
def test_pq_mse_close_to_faiss(data, M, nbits):
    xb, _, _ = data
    pq = annvil.ProductQuantizer(D, M, nbits)
    pq.train(xb)
    mse = np.mean(np.sum((pq.decode(pq.compute_codes(xb)) - xb) ** 2, axis=1))
    fpq = faiss.ProductQuantizer(D, M, nbits)
    fpq.train(xb)
    fmse = np.mean(np.sum((fpq.decode(fpq.compute_codes(xb)) - xb) ** 2, axis=1))
    assert mse <= fmse * 1.05, (mse, fmse)


def test_pq_distance_tables(data):
    xb, xq, _ = data
    pq = annvil.ProductQuantizer(D, 8, 4)
    pq.niter = 5
    pq.train(xb)
    cents = pq.centroids.reshape(8, 16, 4)
    t = pq.compute_distance_tables(xq[:3])
    ip = pq.compute_inner_prod_tables(xq[:3])
    sub = xq[:3].reshape(3, 8, 1, 4)
    np.testing.assert_allclose(t, ((sub - cents[None]) ** 2).sum(-1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ip, (sub * cents[None]).sum(-1), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- IndexPQ
def mean_recall_over_seeds(make_ours, make_faiss, xb, xq, g, seeds=(1234, 7)):
    """Recall of ours and Faiss's averaged over k-means seeds: single training
    runs of either library differ by ~0.02 on this data size."""
    r, fr = [], []
    for s in seeds:
        idx = make_ours()
        idx.pq.seed = s
        idx.train(xb)
        idx.add(xb)
        r.append(recall(idx.search(xq, 10)[1], g))
        f = make_faiss()
        f.pq.cp.seed = s
        f.train(xb)
        f.add(xb)
        fr.append(recall(f.search(xq, 10)[1], g))
    return float(np.mean(r)), float(np.mean(fr)), idx


@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_index_pq_recall_vs_faiss(data, metric):
    xb, xq, gt = data
    r, fr, idx = mean_recall_over_seeds(lambda: annvil.IndexPQ(D, 8, 8, metric),
                                        lambda: faiss.IndexPQ(D, 8, 8, metric), xb, xq, gt[metric])
    assert r >= fr - 0.02, (r, fr)
    Dv, I = idx.search(xq, 10)
    # distances are the ADC distances to the decoded vectors, sorted
    rec = idx.reconstruct_n(0, idx.ntotal)
    q = 7
    exact = ((xq[q] - rec[I[q]]) ** 2).sum(1) if metric == annvil.METRIC_L2 else rec[I[q]] @ xq[q]
    np.testing.assert_allclose(Dv[q], exact, rtol=1e-4, atol=1e-3)
    assert np.all(np.diff(Dv, axis=1) >= -1e-5) if metric == annvil.METRIC_L2 else np.all(np.diff(Dv, axis=1) <= 1e-5)


def test_index_pq_nbits_other(data):
    xb, xq, gt = data
    for nbits in (5, 10):
        idx = annvil.IndexPQ(D, 8, nbits)
        idx.pq.niter = 10
        idx.train(xb)
        idx.add(xb[:2000])
        I = idx.search(xq, 5)[1]
        # brute force over the decoded vectors gives the same ranking
        rec = idx.reconstruct_n(0, idx.ntotal)
        bI = annvil.knn(xq, rec, 5)[1]
        assert np.mean(I == bI) > 0.97


def test_index_pq_reconstruct_remove_reset_serialize(data, tmp_path):
    xb, xq, _ = data
    idx = annvil.IndexPQ(D, 8, 8)
    idx.train(xb)
    idx.add(xb[:1000])
    assert idx.ntotal == 1000 and idx.code_size == 8
    codes = idx.codes
    np.testing.assert_array_equal(idx.reconstruct(5), idx.pq.decode(codes[5:6])[0])
    D0, I0 = idx.search(xq, 10)
    # round trips
    for other in (annvil.deserialize_index(annvil.serialize_index(idx)), pickle.loads(pickle.dumps(idx))):
        assert type(other) is annvil.IndexPQ
        D1, I1 = other.search(xq, 10)
        np.testing.assert_array_equal(I0, I1)
        np.testing.assert_array_equal(D0, D1)
    path = str(tmp_path / "pq.annvil")
    annvil.write_index(idx, path)
    for mm in (False, True):
        other = annvil.read_index(path, mmap=mm)
        np.testing.assert_array_equal(other.search(xq, 10)[1], I0)
    # remove shifts later ids down
    removed = idx.remove_ids(np.arange(0, 1000, 2))
    assert removed == 500 and idx.ntotal == 500
    np.testing.assert_array_equal(idx.codes, codes[1::2])
    idx.reset()
    assert idx.ntotal == 0
    Dv, I = idx.search(xq[:2], 3)
    assert np.all(I == -1) and np.all(np.abs(Dv) == np.finfo(np.float32).max)


def test_index_pq_selector_and_k_larger_than_ntotal(data):
    xb, xq, _ = data
    idx = annvil.IndexPQ(D, 4, 8)
    idx.train(xb)
    idx.add(xb[:20])
    Dv, I = idx.search(xq[:3], 30)
    assert np.all(I[:, 20:] == -1) and np.all(np.abs(Dv[:, 20:]) == np.finfo(np.float32).max)
    params = annvil.SearchParameters(sel=annvil.IDSelectorRange(5, 10))
    I = idx.search(xq[:3], 10, params=params)[1]
    assert set(I[I >= 0].ravel()) <= set(range(5, 10))


# ---------------------------------------------------------------- fast-scan
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_fastscan_recall_vs_faiss(data, metric):
    xb, xq, gt = data
    r, fr, _ = mean_recall_over_seeds(lambda: annvil.IndexPQFastScan(D, 16, 4, metric),
                                      lambda: faiss.IndexPQFastScan(D, 16, 4, metric), xb, xq, gt[metric])
    assert r >= fr - 0.02, (r, fr)


@pytest.mark.parametrize("M,d,n", [(16, 32, 2000), (5, 20, 1001), (2, 4, 77), (6, 24, 33)])
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_fastscan_matches_exact_lut(M, d, n, metric):
    """Fast-scan distances are the exact ADC distances up to LUT rounding, and
    the ranking equals the exact-LUT ranking up to that tolerance."""
    xb, xq = make_data(1, n=max(n, 300), nq=40, d=d, intrinsic=min(8, d))
    ipq = annvil.IndexPQ(d, M, 4, metric)
    ipq.pq.niter = 10
    ipq.train(xb)
    ipq.add(xb[:n])
    fs = annvil.IndexPQFastScan(ipq)
    assert fs.ntotal == n
    k = min(10, n)
    Dq, Iq = fs.search(xq, k)
    De, Ie = ipq.search(xq, k)
    rec = ipq.reconstruct_n(0, n)
    for q in range(len(xq)):
        lut, scale, bias = fs._quantized_lut(xq[q:q + 1])
        tol = 0.5 * M / scale + 1e-4 * (1 + abs(bias))
        ex = ((xq[q] - rec[Iq[q]]) ** 2).sum(1) if metric == annvil.METRIC_L2 else rec[Iq[q]] @ xq[q]
        assert np.all(np.abs(Dq[q] - ex) <= tol)
        # every fast-scan result is within 2 * tol of the exact k-th best
        kth = De[q, k - 1]
        if metric == annvil.METRIC_L2:
            assert np.all(ex <= kth + 2 * tol)
        else:
            assert np.all(ex >= kth - 2 * tol)
    assert recall(Iq, Ie) > 0.85


def test_fastscan_simd_levels_agree():
    xb, xq = make_data(2, n=1500, nq=5, d=40, intrinsic=8)
    for M in (10, 20, 4):  # M2 % 4 == 2 exercises the AVX-512 tail pair
        idx = annvil.IndexPQFastScan(40, M, 4)
        idx.pq.niter = 5
        idx.train(xb)
        idx.add(xb[:1234])
        lut, _, _ = idx._quantized_lut(xq[:1])
        # scalar reference from the unpacked codes
        ipq_codes = []
        for i in range(idx.ntotal):
            ipq_codes.append(idx.pq.compute_codes(idx.reconstruct(i)[None])[0])
        codes = np.array(ipq_codes)
        idxs = np.zeros((idx.ntotal, M), np.int64)
        for m in range(M):
            idxs[:, m] = (codes[:, m // 2] >> (4 * (m % 2))) & 15
        ref = lut[np.arange(M)[None, :], idxs].sum(1)
        levels = ["scalar", "avx2", "avx512"]
        best = annvil.detected_simd_level()
        current = annvil.simd_level()
        try:
            for lv in levels[:levels.index(best) + 1]:
                annvil.set_simd_level(lv)
                np.testing.assert_array_equal(idx._accumulate(lut), ref, err_msg=lv)
        finally:
            annvil.set_simd_level(current)


@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_fastscan_search_same_at_every_simd_level(metric):
    """Batched multi-query kernels (1..4 queries per code load) against the
    scalar path: identical results."""
    xb, xq = make_data(5, n=3000, nq=23, d=36, intrinsic=8)
    idx = annvil.IndexPQFastScan(36, 18, 4, metric)  # M2 = 18: AVX-512 tail pair
    idx.pq.niter = 5
    idx.train(xb)
    idx.add(xb[:2999])
    levels = ["scalar", "avx2", "avx512"]
    current = annvil.simd_level()
    res = []
    try:
        for lv in levels[:levels.index(annvil.detected_simd_level()) + 1]:
            annvil.set_simd_level(lv)
            res.append(idx.search(xq, 7))
    finally:
        annvil.set_simd_level(current)
    for Dv, I in res[1:]:
        np.testing.assert_array_equal(I, res[0][1])
        np.testing.assert_array_equal(Dv, res[0][0])


def test_fastscan_add_in_pieces_remove_serialize(data):
    xb, xq, _ = data
    a = annvil.IndexPQFastScan(D, 8, 4)
    a.train(xb)
    a.add(xb[:1000])
    b = annvil.deserialize_index(annvil.serialize_index(a))
    b.reset()
    for s in range(0, 1000, 77):
        b.add(xb[s:min(s + 77, 1000)])
    D0, I0 = a.search(xq, 10)
    D1, I1 = b.search(xq, 10)
    np.testing.assert_array_equal(I0, I1)
    np.testing.assert_array_equal(D0, D1)
    c = pickle.loads(pickle.dumps(a))
    assert type(c) is annvil.IndexPQFastScan
    np.testing.assert_array_equal(c.search(xq, 10)[1], I0)
    rec = a.reconstruct_n(0, 1000)
    assert a.remove_ids(np.arange(100, 1000)) == 900
    assert a.ntotal == 100
    np.testing.assert_array_equal(a.reconstruct_n(0, 100), rec[:100])


# ---------------------------------------------------------------- bad input
def test_bad_input(data):
    xb, xq, _ = data
    with pytest.raises(annvil.InvalidArgumentError, match="multiple"):
        annvil.ProductQuantizer(30, 8, 8)
    with pytest.raises(annvil.InvalidArgumentError, match="multiple"):
        annvil.IndexPQ(30, 8, 8)
    for nb in (0, 17):
        with pytest.raises(annvil.InvalidArgumentError, match="nbits"):
            annvil.ProductQuantizer(32, 8, nb)
        with pytest.raises(annvil.InvalidArgumentError, match="nbits"):
            annvil.IndexPQ(32, 8, nb)
    with pytest.raises(annvil.InvalidArgumentError, match="nbits=4"):
        annvil.IndexPQFastScan(32, 8, 8)
    with pytest.raises(annvil.InvalidArgumentError, match="training"):
        annvil.ProductQuantizer(32, 8, 8).train(xb[:100])
    idx = annvil.IndexPQ(32, 8, 8)
    with pytest.raises(annvil.InvalidArgumentError, match="training"):
        idx.train(xb[:100])
    assert not idx.is_trained
    with pytest.raises(annvil.NotTrainedError):
        idx.search(xq, 5)
    with pytest.raises(annvil.NotTrainedError):
        idx.add(xb)
    with pytest.raises(annvil.NotTrainedError):
        annvil.IndexPQFastScan(32, 8).search(xq, 5)
    with pytest.raises(annvil.NotTrainedError):
        annvil.ProductQuantizer(32, 8, 8).compute_codes(xb[:3])
    with pytest.raises(annvil.NotTrainedError):
        annvil.OPQMatrix(32, 8).apply(xb[:3])
    with pytest.raises(annvil.NotTrainedError):
        annvil.IndexRefineFlat(annvil.IndexPQ(32, 8, 8)).search(xq, 3)
    idx.train(xb)
    idx.add(xb[:100])
    with pytest.raises(annvil.InvalidArgumentError, match="dimension"):
        idx.search(xq[:, :16], 5)
    with pytest.raises(annvil.InvalidArgumentError, match="dimension"):
        idx.add(xb[:, :16])
    assert idx.ntotal == 100
    with pytest.raises(annvil.InvalidArgumentError):
        idx.reconstruct(100)
    with pytest.raises(annvil.InvalidArgumentError):
        idx.pq.decode(np.zeros((2, 3), np.uint8))
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexPreTransform(annvil.OPQMatrix(32, 4, 16), annvil.IndexFlatL2(32))
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexRefine(annvil.IndexPQ(32, 8, 8), annvil.IndexFlatL2(16))
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexPQFastScan(32, 8, 4, annvil.METRIC_L2, 48)  # bbs: a multiple of 32
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.NormalizationTransform(32, 1.0)


def test_threads_and_selectors_consistent(data):
    xb, xq, _ = data
    pq = annvil.IndexPQ(D, 8, 8)
    fs = annvil.IndexPQFastScan(D, 8, 4, annvil.METRIC_INNER_PRODUCT)
    rf = annvil.IndexRefineFlat(annvil.IndexPQFastScan(D, 8, 4))
    rf.k_factor = 3
    for idx in (pq, fs, rf):
        idx.train(xb[:3000])
        idx.add(xb[:3000])
    n0 = annvil.omp_get_max_threads()
    try:
        for idx in (pq, fs, rf):
            annvil.omp_set_num_threads(1)
            D1, I1 = idx.search(xq[:37], 9)
            annvil.omp_set_num_threads(2)
            D2, I2 = idx.search(xq[:37], 9)
            np.testing.assert_array_equal(I1, I2)
            np.testing.assert_array_equal(D1, D2)
            # a selector: results are the unfiltered search over the selected subset
            mask_ids = np.arange(0, 3000, 3)
            p = annvil.SearchParameters(sel=annvil.IDSelectorBatch(mask_ids))
            Ds, Is = idx.search(xq[:5], 9, params=p)
            assert np.all(np.isin(Is[Is >= 0], mask_ids))
    finally:
        annvil.omp_set_num_threads(n0)


def test_quantized_luts_shared_scale():
    """LUTs quantised together (IVF fast-scan: one per probed list) share one
    scale; every dequantised sum is within M / (2 scale) of the exact sum."""
    rs = np.random.RandomState(6)
    M = 7
    luts = (rs.rand(3, M, 16) * np.array([1.0, 5.0, 0.2])[:, None, None] + rs.randn(3, 1, 1)).astype(np.float32)
    q, scales, biases = annvil._core._pq4_quantize_luts(luts)
    assert q.shape == (3, 8, 16) and np.all(q[:, M:] == 0)
    assert np.all(scales == scales[0])
    codes = rs.randint(0, 16, size=(200, M))
    for l in range(3):
        exact = luts[l][np.arange(M), codes].sum(1)
        approx = q[l][np.arange(M), codes].sum(1).astype(np.float64) / scales[l] + biases[l]
        assert np.all(np.abs(approx - exact) <= 0.5 * M / scales[l] + 1e-4)
    # many sub-quantizers: sums still fit in uint16
    big = rs.rand(1, 300, 16).astype(np.float32)
    qb, sb, _ = annvil._core._pq4_quantize_luts(big)
    assert qb[0].max(axis=1).astype(np.int64).sum() <= 65535


@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_index_pq_range_search(data, metric):
    xb, xq, _ = data
    idx = annvil.IndexPQ(D, 8, 8, metric)
    idx.train(xb)
    idx.add(xb[:2000])
    Dk, Ik = idx.search(xq[:10], 50)
    radius = float(np.median(Dk[:, 20]))
    lims, Dr, Ir = idx.range_search(xq[:10], radius)
    assert len(lims) == 11
    rec = idx.reconstruct_n(0, idx.ntotal)
    for q in range(10):
        ids = Ir[lims[q]:lims[q + 1]]
        adc = ((xq[q] - rec) ** 2).sum(1) if metric == annvil.METRIC_L2 else rec @ xq[q]
        want = np.where(adc < radius)[0] if metric == annvil.METRIC_L2 else np.where(adc > radius)[0]
        # allow disagreement only at the float rounding boundary
        diff = set(ids) ^ set(want)
        assert all(abs(adc[i] - radius) < 1e-3 * max(1, abs(radius)) for i in diff)
        np.testing.assert_allclose(Dr[lims[q]:lims[q + 1]], adc[ids], rtol=1e-4, atol=1e-3)
