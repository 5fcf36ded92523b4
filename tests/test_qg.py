"""IndexQG (quantized-graph index): recall against exact search (Faiss's
IndexFlat as the oracle, Faiss's IndexHNSWFlat as the recall reference), the
block layout and fast-scan sums against a scalar reference, SIMD levels,
files (mmap), pickle, filters, deletes, factory strings and bad input."""
import pickle

import faiss
import numpy as np
import pytest

import annvil
from conftest import clustered, exact_dist

METRICS = [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT]


def simd_levels():
    order = ["scalar", "avx2", "avx512"]
    return order[: order.index(annvil.detected_simd_level()) + 1]


def recall(I, gt):
    k = gt.shape[1]
    return float(np.mean([len(set(a[:k]) & set(b)) / k for a, b in zip(I, gt)]))


def data(n, d, nq=50, seed=0, metric=annvil.METRIC_L2):
    rng = np.random.default_rng(seed)
    x = clustered(rng, n + nq, d, nclusters=30, spread=0.4)
    if metric == annvil.METRIC_INNER_PRODUCT:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:n].copy(), x[n:].copy()


def faiss_gt(xb, xq, k, metric):
    fl = faiss.IndexFlat(xb.shape[1], metric)
    fl.add(xb)
    return fl.search(xq, k)


def build(xb, R=32, pq_M=0, metric=annvil.METRIC_L2, efc=40):
    ix = annvil.IndexQG(xb.shape[1], R, pq_M, metric)
    ix.hnsw.efConstruction = efc
    ix.train(xb)
    ix.add(xb)
    return ix


@pytest.fixture(scope="module")
def built():
    xb, xq = data(3000, 40)
    return xb, xq, build(xb, 32, 10)


# ---- recall and exact distances ------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("d,pq_M", [(1, 0), (3, 0), (17, 5), (64, 16), (97, 0)])
def test_recall_against_exact_and_faiss_hnsw(metric, d, pq_M):
    xb, xq = data(2000, d, metric=metric)
    k = 10
    Dg, Ig = faiss_gt(xb, xq, k, metric)
    ix = build(xb, 32, pq_M, metric)
    assert ix.dpad % ix.pq_M == 0 and ix.dpad >= d
    fh = faiss.IndexHNSWFlat(d, 16, metric)
    fh.add(xb)
    for ef in (64, 128):
        D, I = ix.search(xq, k, params=annvil.SearchParametersQG(efSearch=ef))
        fh.hnsw.efSearch = ef
        _, If = fh.search(xq, k)
        # results carry exact distances (re-ranked from the stored vectors)
        ex = exact_dist(xq, xb, I, metric == annvil.METRIC_L2)
        np.testing.assert_allclose(D, ex, rtol=1e-4, atol=1e-4)
        assert (np.diff(D, axis=1) >= -1e-6).all() if metric == annvil.METRIC_L2 else \
            (np.diff(D, axis=1) <= 1e-6).all()
        r, rf = recall(I, Ig), recall(If, Ig)
        if d > 1:  # d = 1: mostly exact ties
            assert r >= rf - (0.08 if ef == 64 else 0.03), (ef, r, rf)
    D, I = ix.search(xq, k, params=annvil.SearchParametersQG(efSearch=256))
    if d > 1:
        assert recall(I, Ig) >= 0.98


def test_recall_reaches_099_at_large_ef(built):
    xb, xq, ix = built
    _, Ig = faiss_gt(xb, xq, 10, annvil.METRIC_L2)
    ix.hnsw.efSearch = 200
    _, I = ix.search(xq, 10)
    assert recall(I, Ig) >= 0.99


def test_k_above_ef_and_ntotal(built):
    xb, xq, ix = built
    D, I = ix.search(xq[:3], 50, params=annvil.SearchParametersQG(efSearch=8))
    assert (I >= 0).all() and len(set(I[0])) == 50
    small = build(xb[:20], 32, 10)
    D, I = small.search(xq[:2], 30)
    assert (I[:, :20] >= 0).all() and (I[:, 20:] == -1).all() and (D[:, 20:] >= 3e38).all()


# ---- block layout and kernels against the scalar reference -----------------------------
def unpack_nibble(block, R, M, j, m):
    # layout of index_qg.h: R int32 ids, then ceil(R / 32) fast-scan blocks
    M2 = M + (M & 1)
    g, jj = divmod(j, 32)
    byte = block[4 * R + g * M2 * 16 + (m // 2) * 32 + (m % 2) * 16 + (jj % 16)]
    return (byte >> 4) if jj >= 16 else (byte & 15)


@pytest.mark.parametrize("R,pq_M", [(32, 10), (64, 7), (96, 20)])
def test_block_layout_matches_graph_and_codes(R, pq_M):
    xb, _ = data(1500, 40, seed=3)
    ix = build(xb, R, pq_M)
    assert ix.block_stride % 64 == 0
    codes = np.array(ix._codes(), dtype=np.uint8).reshape(ix.ntotal, -1)
    # the codes are the PQ's codes of the padded vectors
    xp = np.zeros((len(xb), ix.dpad), np.float32)
    xp[:, :40] = xb
    np.testing.assert_array_equal(codes, ix.pq.compute_codes(xp))
    rng = np.random.default_rng(0)
    for v in rng.choice(ix.ntotal, 20, replace=False):
        blk = np.array(ix._vertex_block(int(v)), dtype=np.uint8)
        ids = blk[: 4 * R].view(np.int32)
        nb = ix.hnsw.get_neighbors(int(v))
        np.testing.assert_array_equal(ids[: len(nb)], nb)
        assert (ids[len(nb):] == -1).all()
        for j, u in enumerate(nb[:40]):
            for m in range(pq_M):
                c = codes[u, m // 2] >> (4 * (m % 2)) & 15
                assert unpack_nibble(blk, R, pq_M, j, m) == c
        for j in range(len(nb), min(R, len(nb) + 5)):
            assert all(unpack_nibble(blk, R, pq_M, j, m) == 0 for m in range(pq_M))


@pytest.mark.parametrize("level", simd_levels())
@pytest.mark.parametrize("R,pq_M", [(32, 10), (64, 7), (160, 13)])
def test_block_sums_match_scalar_reference(level, R, pq_M):
    xb, xq = data(1200, 40, seed=4)
    ix = build(xb, R, pq_M)
    old = annvil.simd_level()
    annvil.set_simd_level(level)
    try:
        for q in range(3):
            lut, lq, scale, bias = ix._query_lut(xq[q:q + 1])
            # the uint8 LUT approximates the float one: lut ~ lq / scale + per-row min
            lut = lut.reshape(pq_M, 16)
            M2 = pq_M + (pq_M & 1)
            lq2 = lq.reshape(M2, 16)[:pq_M].astype(np.float64)
            approx = lq2 / scale + lut.min(1, keepdims=True)
            assert np.abs(approx - lut).max() <= 0.5 / scale + 1e-5
            for v in range(0, ix.ntotal, 97):
                n = len(ix.hnsw.get_neighbors(v))
                a = np.array(ix._block_sums(v, lq, False))[:n]
                r = np.array(ix._block_sums(v, lq, True))[:n]
                np.testing.assert_array_equal(a, r)
    finally:
        annvil.set_simd_level(old)


@pytest.mark.parametrize("metric", METRICS)
def test_simd_levels_agree(metric):
    xb, xq = data(2000, 33, metric=metric, seed=5)
    ix = build(xb, 32, 0, metric)
    old = annvil.simd_level()
    out = []
    try:
        for level in simd_levels():
            annvil.set_simd_level(level)
            out.append(ix.search(xq, 10, params=annvil.SearchParametersQG(efSearch=40)))
    finally:
        annvil.set_simd_level(old)
    for D, I in out[1:]:
        np.testing.assert_array_equal(I, out[0][1])
        np.testing.assert_allclose(D, out[0][0], rtol=1e-5, atol=1e-5)


def test_f16_storage_and_float32_storage():
    xb, xq = data(1500, 24, seed=6)
    xh = xb.astype(np.float16).astype(np.float32)
    prev = annvil.omp_get_max_threads()
    annvil.omp_set_num_threads(1)  # the same graph both times: a threaded build is not deterministic
    try:
        a = build(xh, 32, 6)
        b = annvil.IndexQG(24, 32, 6)
        b.allow_f16 = False
        b.train(xh)
        b.add(xh)
    finally:
        annvil.omp_set_num_threads(prev)
    assert a.is_f16
    assert not b.is_f16
    Da, Ia = a.search(xq, 10)
    Db, Ib = b.search(xq, 10)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_allclose(Da, Db, rtol=1e-5)


# ---- incremental adds, deletes, filters --------------------------------------------------
def test_incremental_adds_match_one_add():
    xb, xq = data(2400, 32, seed=7)
    ix = annvil.IndexQG(32, 32, 8)
    ix.train(xb)
    for i in range(0, 2400, 600):
        ix.add(xb[i:i + 600])
    # every block reflects the final graph and codes
    codes = np.array(ix._codes(), dtype=np.uint8).reshape(ix.ntotal, -1)
    for v in range(0, ix.ntotal, 53):
        blk = np.array(ix._vertex_block(v), dtype=np.uint8)
        nb = ix.hnsw.get_neighbors(v)
        np.testing.assert_array_equal(blk[: 4 * 32].view(np.int32)[: len(nb)], nb)
        for j, u in enumerate(nb):
            assert unpack_nibble(blk, 32, 8, j, 0) == codes[u, 0] & 15
    _, Ig = faiss_gt(xb, xq, 10, annvil.METRIC_L2)
    _, I = ix.search(xq, 10, params=annvil.SearchParametersQG(efSearch=128))
    assert recall(I, Ig) >= 0.95


@pytest.mark.parametrize("strategy", ["graph", "exact", "auto"])
def test_selector_filtered_search(built, strategy):
    xb, xq, ix = built
    allowed = np.arange(0, ix.ntotal, 3)
    sel = annvil.IDSelectorBatch(allowed)
    ix.filter_strategy = strategy
    try:
        D, I = ix.search(xq, 10, params=annvil.SearchParametersQG(efSearch=128, sel=sel))
    finally:
        ix.filter_strategy = "auto"
    assert np.isin(I[I >= 0], allowed).all()
    _, Ig = faiss_gt(xb[allowed], xq, 10, annvil.METRIC_L2)
    assert recall(I, allowed[Ig]) >= 0.9


def test_mark_deleted_remove_ids_and_replace():
    xb, xq = data(2000, 32, seed=8)
    ix = build(xb, 32, 8)
    dead = np.arange(0, 2000, 4)
    assert ix.mark_deleted(dead) == len(dead)
    D, I = ix.search(xq, 10, params=annvil.SearchParametersQG(efSearch=96))
    assert not np.isin(I, dead).any()
    live = np.setdiff1d(np.arange(2000), dead)
    _, Ig = faiss_gt(xb[live], xq, 10, annvil.METRIC_L2)
    assert recall(I, live[Ig]) >= 0.9
    # replace_deleted reuses slots: their codes change inside other blocks
    ix.replace_deleted = True
    new = data(100, 32, seed=9)[0]
    ids = ix.add(new)
    assert np.isin(ids, dead).all()
    # remove_ids renumbers and rebuilds the blocks
    ix2 = build(xb, 32, 8)
    removed = ix2.remove_ids(annvil.IDSelectorRange(0, 500))
    assert removed == 500 and ix2.ntotal == 1500
    _, Ig = faiss_gt(xb[500:], xq, 10, annvil.METRIC_L2)
    _, I = ix2.search(xq, 10, params=annvil.SearchParametersQG(efSearch=128))
    assert recall(I, Ig) >= 0.93
    for v in range(0, 1500, 101):
        blk = np.array(ix2._vertex_block(v), dtype=np.uint8)
        nb = ix2.hnsw.get_neighbors(v)
        np.testing.assert_array_equal(blk[:128].view(np.int32)[: len(nb)], nb)


# ---- files, mmap, pickle ----------------------------------------------------------------
@pytest.mark.parametrize("mm", [False, True])
def test_write_read_roundtrip(tmp_path, built, mm):
    xb, xq, ix = built
    path = str(tmp_path / "qg.idx")
    annvil.write_index(ix, path)
    back = annvil.read_index(path, mmap=mm)
    assert isinstance(back, annvil.IndexQG)
    assert (back.R, back.pq_M, back.ntotal, back.d) == (ix.R, ix.pq_M, ix.ntotal, ix.d)
    D0, I0 = ix.search(xq, 10)
    D1, I1 = back.search(xq, 10)
    np.testing.assert_array_equal(I0, I1)
    np.testing.assert_array_equal(D0, D1)
    back.add(xb[:10])  # a mapped index still accepts adds (copy on write)
    assert back.ntotal == ix.ntotal + 10
    p = pickle.loads(pickle.dumps(ix))
    np.testing.assert_array_equal(p.search(xq, 10)[1], I0)


def test_corrupt_file_is_rejected(tmp_path, built):
    _, _, ix = built
    path = tmp_path / "qg.idx"
    annvil.write_index(ix, str(path))
    raw = bytearray(path.read_bytes())
    # flip bytes near the end (inside the blocks): checksum or layout check
    for off in (len(raw) - 100, len(raw) // 2):
        bad = bytearray(raw)
        bad[off] ^= 0xFF
        (tmp_path / "bad.idx").write_bytes(bytes(bad))
        with pytest.raises(annvil.IndexFileError):
            annvil.read_index(str(tmp_path / "bad.idx"))


# ---- factory, parameters, bad input -----------------------------------------------------
def test_factory_and_parameter_space():
    ix = annvil.index_factory(40, "QG64,PQ20x4", annvil.METRIC_INNER_PRODUCT)
    assert isinstance(ix, annvil.IndexQG) and ix.R == 64 and ix.pq_M == 20
    assert ix.metric_type == annvil.METRIC_INNER_PRODUCT
    ix = annvil.index_factory(17, "QG")
    assert ix.R == 32 and ix.pq_M == 5 and ix.dpad == 20
    assert annvil.index_factory(30, "QG32,PQ7").pq_M == 7
    for bad in ("QG31", "QG32,PQ8x8", "QG32,SQ8", "QG32,PQ8,Flat"):
        with pytest.raises(annvil.InvalidArgumentError):
            annvil.index_factory(32, bad)
    xb, xq = data(1000, 16, seed=10)
    ix = build(xb, 32, 4)
    ps = annvil.ParameterSpace()
    ps.set_index_parameter(ix, "efSearch", 77)
    assert ix.hnsw.efSearch == 77
    # SearchParametersHNSW works too (IndexQG is an IndexHNSW)
    _, I1 = ix.search(xq, 5, params=annvil.SearchParametersHNSW(efSearch=50))
    _, I2 = ix.search(xq, 5, params=annvil.SearchParametersQG(efSearch=50))
    np.testing.assert_array_equal(I1, I2)


def test_bad_input():
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexQG(16, 31)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexQG(16, 2)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexQG(0, 32)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexQG(16, 32, -1)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexQG(16, 32, 0, annvil.METRIC_L1)
    xb, xq = data(500, 16, seed=11)
    ix = annvil.IndexQG(16, 32, 4)
    with pytest.raises(annvil.NotTrainedError):
        ix.add(xb)
    with pytest.raises(annvil.InvalidArgumentError):
        ix.train(xb[:10])  # fewer than 16 points
    assert not ix.is_trained
    ix.train(xb)
    with pytest.raises(annvil.InvalidArgumentError):
        ix.add(xb[:, :8])
    ix.add(xb)
    n0 = ix.ntotal
    with pytest.raises(annvil.InvalidArgumentError):
        ix.search(xq[:, :3], 5)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.SearchParametersQG(efSearch=0)
    with pytest.raises(annvil.InvalidArgumentError):
        ix.search(xq, 0)
    bad = xb[:5].copy()
    bad[2, 3] = np.nan
    with pytest.raises(annvil.InvalidArgumentError):
        ix.add(bad)
    assert ix.ntotal == n0
    with pytest.raises(annvil.InvalidArgumentError):
        ix._vertex_block(n0)
    # the empty index returns padding
    e = annvil.IndexQG(16, 32, 4)
    e.train(xb)
    D, I = e.search(xq[:2], 3)
    assert (I == -1).all() and (D >= 3e38).all()
