"""Fast-scan PQ (IndexPQFastScan, IndexIVFPQFastScan): Faiss's kernel
selectors (implem), block sizes, the reference scans, the early-stop knobs,
the LUT quantisation helper and the code packer, checked against annvil's
own float indexes and against Faiss."""
import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")


def _data(d, nt=1500, nb=1200, nq=30, seed=7):
    rs = np.random.RandomState(seed)
    basis = rs.randn(8, d).astype("float32")
    def draw(n):
        return (rs.randn(n, 8).astype("float32") @ basis + 0.3 * rs.randn(n, d)).astype("float32")
    return draw(nt), draw(nb), draw(nq)


METRICS = [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT]


@pytest.fixture(scope="module", params=[(32, 16), (30, 15), (6, 3)], ids=["M16", "M15-odd", "M3"])
def pq_pair(request):
    d, M = request.param
    xt, xb, xq = _data(d)
    out = {}
    for metric in METRICS:
        ipq = annvil.IndexPQ(d, M, 4, metric)
        ipq.train(xt)
        ipq.add(xb)
        out[metric] = ipq
    return out, xq


@pytest.mark.parametrize("metric", METRICS)
def test_pq_float_implem_is_indexpq(pq_pair, metric):
    ipq, xq = pq_pair[0][metric], pq_pair[1]
    D0, I0 = ipq.search(xq, 7)
    for implem in (1, 2):
        fs = annvil.IndexPQFastScan(ipq)
        fs.implem = implem
        D, I = fs.search(xq, 7)
        np.testing.assert_array_equal(I, I0)
        np.testing.assert_array_equal(D, D0)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("bbs", [32, 64, 96])
def test_pq_simd_implems_match_scalar_reference(pq_pair, metric, bbs):
    ipq, xq = pq_pair[0][metric], pq_pair[1]
    ref = annvil.IndexPQFastScan(ipq)
    ref.implem = 4
    Dr, Ir = ref.search(xq, 9)
    for implem in (0, 3, 12, 13, 14, 15):
        fs = annvil.IndexPQFastScan(ipq, bbs)
        fs.implem, fs.qbs = implem, 0x223
        D, I = fs.search(xq, 9)
        np.testing.assert_array_equal(I, Ir)
        np.testing.assert_array_equal(D, Dr)
    # quantised distances stay close to the float ones
    D0, _ = ipq.search(xq, 9)
    assert np.abs(Dr - D0).max() <= 0.05 * np.abs(D0).max() + 1e-3


def test_pq_bad_implem_and_bbs():
    xt, xb, xq = _data(16, nt=300, nb=50, nq=2)
    fs = annvil.IndexPQFastScan(16, 8, 4)
    fs.train(xt)
    fs.add(xb)
    for bad in (5, 11, 16, -1):
        fs.implem = bad
        with pytest.raises(annvil.InvalidArgumentError, match="implem"):
            fs.search(xq, 3)
    for bbs in (0, 16, 48):
        with pytest.raises(annvil.InvalidArgumentError, match="bbs"):
            annvil.IndexPQFastScan(16, 8, 4, annvil.METRIC_L2, bbs)


@pytest.mark.parametrize("bbs", [32, 64])
def test_pq_code_packer_and_incremental_add(bbs):
    d, M = 30, 15
    xt, xb, xq = _data(d)
    ipq = annvil.IndexPQ(d, M, 4)
    ipq.train(xt)
    ipq.add(xb[:517])
    grown = annvil.IndexPQFastScan(ipq, bbs)
    grown.add(xb[517:])
    ipq.add(xb[517:])
    whole = annvil.IndexPQFastScan(ipq, bbs)
    assert grown.ntotal == whole.ntotal == len(xb)
    np.testing.assert_array_equal(grown.codes, whole.codes)
    packer = whole.get_CodePacker()
    assert packer.nvec == bbs and packer.code_size == (M + 1) // 2
    blocks = whole.codes.reshape(-1, packer.block_size)
    assert blocks.shape[0] == (len(xb) + bbs - 1) // bbs
    for i in range(0, len(xb), 37):
        np.testing.assert_array_equal(packer.unpack_1(blocks, i), ipq.codes[i])
    # pack_1 is the inverse
    fresh = np.zeros_like(blocks)
    for i in range(len(xb)):
        packer.pack_1(ipq.codes[i], i, fresh)
    np.testing.assert_array_equal(fresh, blocks)
    np.testing.assert_array_equal(whole.reconstruct_n(0, 20), ipq.reconstruct_n(0, 20))
    with pytest.raises(annvil.InvalidArgumentError):
        packer.unpack_1(blocks, blocks.shape[0] * bbs)


def test_pq_serialization_keeps_knobs():
    xt, xb, xq = _data(32)
    fs = annvil.IndexPQFastScan(32, 16, 4, annvil.METRIC_L2, 64)
    fs.train(xt)
    fs.add(xb)
    fs.implem, fs.qbs = 14, 0x33
    back = annvil.deserialize_index(annvil.serialize_index(fs))
    assert (back.bbs, back.implem, back.qbs) == (64, 14, 0x33)
    for a, b in zip(fs.search(xq, 5), back.search(xq, 5)):
        np.testing.assert_array_equal(a, b)


def test_factory_fast_scan_forms():
    idx = annvil.index_factory(32, "IVF8,PQ16x4fsr_64")
    assert isinstance(idx, annvil.IndexIVFPQFastScan) and idx.by_residual and idx.bbs == 64
    idx = annvil.index_factory(32, "IVF8,PQ16x4fs")
    assert not idx.by_residual and idx.bbs == 32
    assert annvil.index_factory(32, "PQ16x4fs_96").bbs == 96
    assert type(annvil.index_factory(32, "PQ16x4np")) is annvil.IndexPQ
    assert type(annvil.index_factory(32, "IVF8,PQ16x4np")) is annvil.IndexIVFPQ
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.index_factory(32, "PQ16x4fs_40")


# ---- IVF ------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=[(32, 16), (30, 15)], ids=["M16", "M15-odd"])
def ivf_data(request):
    d, M = request.param
    return d, M, _data(d, nt=2000, nb=2500, nq=25)


def _ivfpq(d, M, xt, xb, metric, by_residual, upt=0):
    idx = annvil.IndexIVFPQ(annvil.IndexFlat(d, metric), d, 16, M, 4, metric)
    idx.by_residual = by_residual
    idx.use_precomputed_table = upt
    idx.train(xt)
    idx.add(xb)
    idx.nprobe = 4
    return idx


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("by_residual", [False, True])
def test_ivf_implems(ivf_data, metric, by_residual):
    d, M, (xt, xb, xq) = ivf_data
    base = _ivfpq(d, M, xt, xb, metric, by_residual)
    D0, I0 = base.search(xq, 10)
    fs = annvil.IndexIVFPQFastScan(base)
    fs.implem = 1  # float LUT: exactly IndexIVFPQ
    D1, I1 = fs.search(xq, 10)
    np.testing.assert_array_equal(I1, I0)
    np.testing.assert_array_equal(D1, D0)
    fs.implem = 2  # scalar reference of the uint8 LUT
    Dr, Ir = fs.search(xq, 10)
    assert np.mean(Ir[:, 0] == I0[:, 0]) > 0.8
    for implem in (0, 10, 11, 12, 13, 14, 15, 110, 112):
        fs.implem = implem
        for nq in (1, len(xq)):  # per-query and grouped paths
            D, I = fs.search(xq[:nq], 10)
            np.testing.assert_array_equal(I, Ir[:nq])
            if nq == len(xq):
                np.testing.assert_array_equal(D, Dr)
            else:  # the coarse distances of one query may differ from a batch's by an ulp
                np.testing.assert_allclose(D, Dr[:nq], rtol=1e-5)


def test_ivf_knobs_and_stats(ivf_data):
    d, M, (xt, xb, xq) = ivf_data
    fs = annvil.IndexIVFPQFastScan(annvil.IndexFlatL2(d), d, 16, M, 4)
    fs.train(xt)
    fs.add(xb)
    stats = annvil.cvar.indexIVF_stats
    stats.reset()
    p = annvil.SearchParametersIVF(nprobe=8)
    D8, I8 = fs.search(xq, 10, params=p)
    assert stats.nq == len(xq) and stats.nlist == 8 * len(xq) and stats.ndis > 0
    # max_lists_num = 1: only the nearest list, as nprobe = 1 gives
    p.max_lists_num = 1
    D, I = fs.search(xq, 10, params=p)
    ref = fs.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=1))
    np.testing.assert_array_equal(I, ref[1])
    # explicit SIMD implems other than 10 / 11 refuse the knobs
    fs.implem = 12
    for knob, val in (("max_lists_num", 2), ("ensure_topk_full", True), ("max_codes", 3)):
        q = annvil.SearchParametersIVF(nprobe=4)
        setattr(q, knob, val)
        with pytest.raises(RuntimeError, match="implem 10/11"):
            fs.search(xq[:2], 5, params=q)
    fs.implem = 0
    # ensure_topk_full fills the heap even with a tiny max_codes and a selector
    keep = np.arange(0, len(xb), 4)
    q = annvil.SearchParametersIVF(nprobe=16, max_codes=2, sel=annvil.IDSelectorBatch(keep))
    q.ensure_topk_full = True
    D, I = fs.search(xq[:3], 10, params=q)
    assert (I >= 0).all() and np.isin(I, keep).all()
    with pytest.raises(RuntimeError):
        fs.search(xq[:1], 5, params=_with(annvil.SearchParametersIVF(nprobe=2), max_empty_result_buckets=1))


def _with(p, **kw):
    for k, v in kw.items():
        setattr(p, k, v)
    return p


@pytest.mark.parametrize("metric", METRICS)
def test_ivf_range_search(ivf_data, metric):
    d, M, (xt, xb, xq) = ivf_data
    base = _ivfpq(d, M, xt, xb, metric, True)
    D, _ = base.search(xq, 10)
    radius = float(np.median(D[:, -1]))
    lims0, D0, I0 = base.range_search(xq, radius)
    fs = annvil.IndexIVFPQFastScan(base)
    lims, Dr, Ir = fs.range_search(xq, radius)
    # float sums, in another order than IndexIVFPQ's: only entries at the radius may differ
    diff = sum(len(set(Ir[lims[q]:lims[q + 1]]) ^ set(I0[lims0[q]:lims0[q + 1]])) for q in range(len(xq)))
    assert diff <= max(2, lims0[-1] // 200)
    stats = annvil.cvar.indexIVF_stats
    empty = annvil.IDSelectorBatch(np.array([], dtype="int64"))
    stats.reset()
    r_full = fs.range_search(xq[:1], radius, params=annvil.SearchParametersIVF(nprobe=4, sel=empty))
    full = stats.nlist
    stats.reset()
    p = _with(annvil.SearchParametersIVF(nprobe=4, sel=empty), max_empty_result_buckets=2)
    r_early = fs.range_search(xq[:1], radius, params=p)
    assert r_early[0][-1] == r_full[0][-1] == 0 and stats.nlist < full
    fs.implem = 12
    with pytest.raises(RuntimeError, match="implem 10"):
        fs.range_search(xq[:1], radius, params=p)


def test_ivf_block_view_and_incremental_add(ivf_data):
    d, M, (xt, xb, xq) = ivf_data
    base = _ivfpq(d, M, xt, xb[:1111], annvil.METRIC_L2, False)
    grown = annvil.IndexIVFPQFastScan(base)
    base.add(xb[1111:])
    whole = annvil.IndexIVFPQFastScan(base)
    grown.add(xb[1111:])
    for a, b in zip(whole.search(xq, 10), grown.search(xq, 10)):
        np.testing.assert_array_equal(a, b)
    il = whole.invlists
    assert il.code_size == annvil.InvertedLists.INVALID_CODE_SIZE and il.n_per_block == 32
    for l in range(whole.nlist):
        blocks = il.get_codes(l)
        assert blocks.shape == ((il.list_size(l) + 31) // 32, il.block_size // 32, 32)
        np.testing.assert_array_equal(blocks, grown.invlists.get_codes(l))


# ---- quantize_LUT_and_bias against Faiss ----------------------------------------------
@pytest.mark.parametrize("case", ["2d", "2d_bias", "3d_bias", "3d_folded", "constant"])
def test_quantize_lut_and_bias_matches_faiss(case):
    rs = np.random.RandomState(3)
    nprobe, M, ksub = 6, 7, 16
    M2 = M + 1
    lut3 = case.startswith("3d")
    LUT = rs.rand(*((nprobe, M, ksub) if lut3 else (M, ksub))).astype("float32") * 4
    if case == "constant":
        LUT[:] = 2.5
    bias = None if case in ("2d", "constant") else (rs.rand(nprobe) * 10).astype("float32")
    want_biasq = case in ("2d_bias", "3d_bias")
    res = {}
    for name, lib in (("annvil", annvil), ("faiss", faiss)):
        nl = nprobe if lut3 else 1
        LUTq = np.zeros((nl, M2, ksub), "uint8")
        biasq = np.zeros(nprobe, "uint16") if want_biasq else None
        a, b = np.zeros(1, "float32"), np.zeros(1, "float32")
        if lib is faiss:
            sp = lambda x: faiss.swig_ptr(x) if x is not None else None  # noqa: E731
            faiss.quantize_LUT_and_bias(nprobe, M, ksub, lut3, sp(LUT), sp(bias), sp(LUTq), M2, sp(biasq),
                                        sp(a), sp(b))
        else:
            annvil.quantize_LUT_and_bias(nprobe, M, ksub, lut3, LUT, bias, LUTq, M2, biasq, a, b)
        res[name] = (LUTq, biasq, a, b)
    for x, y in zip(res["annvil"], res["faiss"]):
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=1e-6)
    with pytest.raises(annvil.InvalidArgumentError):  # outputs must be writable arrays of the right dtype
        annvil.quantize_LUT_and_bias(1, M, ksub, False, LUT[:M] if not lut3 else LUT[0], None,
                                     np.zeros((M2, ksub), "int32"), M2, None, None, None)
