"""The integer fast-scan kernels (IndexPQFastScan's accumulation, IVF-PQ
fast-scan, IndexQG's block scan) and the IVF-PQ table kernels at every SIMD
level the CPU has, against the scalar level, on awkward sizes: n not a
multiple of 32, odd M, d with tails, k = 1 and k > n."""
import numpy as np
import pytest

import annvil
from conftest import per_level


def data(n, d, nq=13, seed=3):
    rs = np.random.RandomState(seed)
    return rs.randn(n, d).astype("float32"), rs.randn(nq, d).astype("float32")


def assert_close(out):
    """ids identical, distances to float rounding: the float LUTs these
    integer scans start from are computed with FMA at the SIMD levels"""
    Ds, Is = out["scalar"]
    for lv, (D, I) in out.items():
        np.testing.assert_array_equal(I, Is, err_msg=f"level {lv} differs from scalar")
        np.testing.assert_allclose(D, Ds, rtol=1e-5, atol=1e-5, err_msg=f"level {lv} differs from scalar")


def assert_same(out):
    ref = out["scalar"]
    for lv, got in out.items():
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b, err_msg=f"level {lv} differs from scalar")


SIZES = [(77, 10, 5), (200, 13, 13), (1001, 30, 15), (33, 6, 3)]  # (n, d, M)


@pytest.mark.parametrize("n,d,M", SIZES)
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_pq_fastscan_levels(n, d, M, metric):
    xb, xq = data(n, d)
    ipq = annvil.IndexPQ(d, M, 4, metric)
    ipq.train(np.vstack([xb, data(300, d, seed=9)[0]]))
    ipq.add(xb)
    fs = annvil.IndexPQFastScan(ipq)
    codes = per_level(lambda: (ipq.sa_encode(xq),))
    assert_same(codes)
    for k in (1, 7, n + 5):
        for implem, qbs in ((0, 0), (12, 0x223), (14, 0)):
            fs.implem, fs.qbs = implem, qbs
            out = per_level(lambda k=k: fs.search(xq, k))
            assert_same(out)
            assert (out["scalar"][1][:, n:] == -1).all()
    # the raw uint16 sums, with the query's LUT and with any bytes at all
    lut = fs._quantized_lut(xq[:1])[0]
    raw = np.random.RandomState(n).randint(0, 256, size=lut.shape).astype(np.uint8)
    for t in (lut, raw):
        assert_same(per_level(lambda t=t: (np.asarray(fs._accumulate(t)),)))


@pytest.mark.parametrize("n,d,M", SIZES)
@pytest.mark.parametrize("by_residual", [True, False])
def test_ivfpq_fastscan_levels(n, d, M, by_residual):
    xb, xq = data(n, d)
    q = annvil.IndexFlatL2(d)
    ix = annvil.IndexIVFPQFastScan(q, d, 4, M, 4)
    ix.by_residual = by_residual
    ix.train(np.vstack([xb, data(300, d, seed=9)[0]]))
    ix.add(xb)
    ix.nprobe = 3
    for k in (1, 9, n + 3):
        out = per_level(lambda k=k: ix.search(xq, k))
        # AVX-512 quantises the LUTs with its own lut_to_u8 (no M / 2 margin
        # on the uint16 cap, unlike pq4_quantize_lut), so its sums may differ
        # by a rounding step: that level is held to the same neighbours
        # rather than identical ones
        avx512 = out.pop("avx512", None)
        assert_close(out)
        if avx512 is not None:
            Is = out["scalar"][1]
            for a, b in zip(avx512[1], Is):
                a, b = a[a >= 0], b[b >= 0]
                assert len(a) == len(b)
                if k > n:  # every candidate of the probed lists: the same set
                    assert set(a) == set(b)
                else:
                    assert len(set(a) & set(b)) >= 0.6 * len(b)


@pytest.mark.parametrize("n,d,M", [(77, 10, 5), (1001, 30, 15), (300, 16, 16)])
def test_ivfpq_table_kernels_levels(n, d, M):
    # the float IVF-PQ kernels (one FMA body for AVX2 and AVX-512; the scalar
    # level rounds products apart) and the float distances around them agree
    # to rounding; the ids that are not ties agree exactly
    xb, xq = data(n, d)
    q = annvil.IndexFlatL2(d)
    ix = annvil.IndexIVFPQ(q, d, 4, M, 8)
    ix.train(np.vstack([xb, data(600, d, seed=9)[0]]))
    ix.add(xb)
    ix.nprobe = 4
    for k in (1, 10, n + 2):
        out = per_level(lambda k=k: ix.search(xq, k))
        Ds, Is = out["scalar"]
        for D, I in out.values():
            np.testing.assert_allclose(D, Ds, rtol=1e-4, atol=1e-4)
            assert (I[:, n:] == -1).all()
            assert (I[:, :1] == Is[:, :1]).mean() >= 0.9


@pytest.mark.parametrize("n,d,pq_M", [(77, 10, 5), (500, 17, 7)])
def test_qg_levels(n, d, pq_M):
    xb, xq = data(n, d)
    ix = annvil.IndexQG(d, 32, pq_M)
    ix.train(xb)
    ix.add(xb)
    for k in (1, 10, n + 4):
        out = per_level(lambda k=k: ix.search(xq, k, params=annvil.SearchParametersQG(efSearch=max(40, k))))
        assert_close(out)
