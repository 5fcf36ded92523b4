"""Every SIMD level the CPU supports gives the scalar reference's answers."""
import numpy as np
import pytest

import annvil
from conftest import SIMD_LEVELS, per_level, supported_simd_levels

LEVELS = SIMD_LEVELS


@pytest.fixture
def restore_level():
    old = annvil.simd_level()
    yield
    annvil.set_simd_level(old)


def test_level_reported():
    assert annvil.simd_level() in LEVELS
    assert LEVELS.index(annvil.simd_level()) <= LEVELS.index(annvil.detected_simd_level())


@pytest.mark.parametrize("d", [1, 3, 17, 97, 384])
@pytest.mark.parametrize("nq", [1, 11, 77])
def test_levels_agree(rng, restore_level, d, nq):
    xb = rng.standard_normal((611, d)).astype(np.float32)
    xq = rng.standard_normal((nq, d)).astype(np.float32)
    results = {}
    for level in supported_simd_levels():
        annvil.set_simd_level(level)
        assert annvil.simd_level() == level
        results[level] = [annvil.knn(xq, xb, 5), annvil.knn(xq, xb, 5, annvil.METRIC_INNER_PRODUCT),
                          annvil.knn(xq, xb, 1), annvil.knn(xq, xb, 1, annvil.METRIC_INNER_PRODUCT),
                          annvil.pairwise_distances(xq, xb)]
    ref = results["scalar"]
    for res in results.values():
        for (D, I), (Dr, Ir) in zip(res[:4], ref[:4]):
            np.testing.assert_allclose(D, Dr, rtol=1e-4, atol=1e-4)
            assert (I == Ir).mean() > 0.99
        np.testing.assert_allclose(res[4], ref[4], rtol=1e-4, atol=1e-3)
        # the k = 1 path agrees with the first column of the heap path
        np.testing.assert_array_equal(res[2][1][:, 0], res[0][1][:, 0])


def test_unsupported_level_rejected(restore_level):
    if annvil.detected_simd_level() == "avx512":
        pytest.skip("this CPU supports every level")
    with pytest.raises(ValueError):
        annvil.set_simd_level("avx512")
    with pytest.raises(ValueError):
        annvil.set_simd_level("sse9")


# ---- every float kernel family, every level against the scalar reference -------------
# Awkward sizes hit every SIMD tail (d % 8, d % 16, d < 8); n = 1, 11, 77
# rows hit the four-rows-at-a-time loops and their remainders.  A kernel that
# drops or double-counts one component is off by about one term (~1), far
# outside the tolerances, which only allow float32 reassociation.
DIMS = [1, 3, 17, 97, 384, 768]
ROWS = [1, 11, 77]


def close(a, b, d):
    # float32 sums of d terms of size ~1 in another order: relative 1e-5, or
    # absolute 2e-6 per term where the sum cancels
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6 * d)


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("n", ROWS)
def test_float_distances_every_level(rng, d, n):
    xq = rng.standard_normal((5, d)).astype(np.float32)
    xb = rng.standard_normal((n, d)).astype(np.float32)
    pq, pb = np.abs(xq) + 0.1, np.abs(xb) + 0.1  # positive data for Canberra / BrayCurtis / Jaccard
    metrics = [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT]
    extra = [annvil.METRIC_L1, annvil.METRIC_Linf, annvil.METRIC_Canberra, annvil.METRIC_BrayCurtis,
             annvil.METRIC_Jaccard]
    res = per_level(lambda: [annvil.pairwise_distances(xq, xb, m) for m in metrics] +
                    [annvil.pairwise_distances(pq, pb, m) for m in extra] +
                    [annvil.knn(xq, xb, min(n, 3), m) for m in metrics])
    ref = res["scalar"]
    for r in res.values():
        for a, b in zip(r[:7], ref[:7]):
            close(a, b, d)
        for (D, _), (Dr, _) in zip(r[7:], ref[7:]):
            close(D, Dr, d)


def sq_data(rng, qtype, n, d):
    if qtype == 5:  # QT_8bit_direct: bytes
        return rng.integers(0, 256, (n, d)).astype(np.float32)
    if qtype == 8:  # QT_8bit_direct_signed
        return rng.integers(-128, 128, (n, d)).astype(np.float32)
    return rng.standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("qtype", range(9))
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("n", ROWS)
def test_sq_distances_every_level(rng, qtype, d, n):
    xt = sq_data(rng, qtype, 200, d)
    xb, xq = xt[:n], sq_data(rng, qtype, 40, d)
    scale = float(np.abs(xt).max()) ** 2  # direct types: components up to 255
    for metric in (annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT):
        index = annvil.IndexScalarQuantizer(d, qtype, metric)
        index.train(xt)
        index.add(xb)
        # k = n: every code's distance.  One query runs the distance computer
        # (four codes at a time); 40 queries decode blocks of codes (the SIMD
        # decoders) for the panel kernels, at every level.
        res = per_level(lambda index=index: (index.search(xq[:1], n)[0], index.search(xq, n)[0]))
        for D1, D40 in res.values():
            np.testing.assert_allclose(D1, res["scalar"][0], rtol=1e-5, atol=2e-6 * d * scale)
            np.testing.assert_allclose(D40, res["scalar"][1], rtol=1e-5, atol=2e-6 * d * scale)
            np.testing.assert_allclose(D1, D40[:1], rtol=1e-5, atol=2e-6 * d * scale)


@pytest.mark.parametrize("qtype", [0, 1, 4, 6, 8])
@pytest.mark.parametrize("d", [3, 17, 97])
def test_hnsw_sq_single_code_kernels_every_level(rng, qtype, d):
    # HNSW's SQ space evaluates one code at a time (the single-code kernels)
    xt = sq_data(rng, qtype, 300, d)
    xq = sq_data(rng, qtype, 11, d)
    flat = annvil.IndexScalarQuantizer(d, qtype, annvil.METRIC_L2)
    flat.train(xt)
    flat.add(xt)
    ex = flat.search(xq, 300)
    exact = np.empty((11, 300), np.float32)
    np.put_along_axis(exact, ex[1], ex[0], 1)
    scale = float(np.abs(xt).max()) ** 2

    def run():
        index = annvil.IndexHNSWSQ(d, qtype, 8, annvil.METRIC_L2)
        index.train(xt)
        index.add(xt)
        return index.search(xq, 5)

    for D, I in per_level(run).values():
        assert (I >= 0).all()
        np.testing.assert_allclose(D, np.take_along_axis(exact, I, 1), rtol=1e-5, atol=2e-6 * d * scale)


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_hnsw_f16_every_level(rng, d, metric):
    xb = rng.standard_normal((77, d)).astype(np.float16).astype(np.float32)  # exact in half precision
    xq = rng.standard_normal((11, d)).astype(np.float32)
    exact = annvil.pairwise_distances(xq, xb, metric)

    def run():
        index = annvil.IndexHNSWFlat(d, 8, metric)
        index.hnsw.efSearch = 77
        index.add(xb)
        assert index.is_f16
        return index.search(xq, 5), index.reconstruct_n(0, 77)

    for (D, I), R in per_level(run).values():
        np.testing.assert_array_equal(R, xb)  # the half decoder is exact
        assert (I >= 0).all()
        close(D, np.take_along_axis(exact, I, 1), d)


def popcount_ref(q, b):
    x = np.bitwise_xor(q[:, None, :], b[None, :, :])
    return np.unpackbits(x, axis=2).sum(axis=2)


@pytest.mark.parametrize("code_size", [1, 3, 4, 8, 16, 17, 32, 64, 97, 384, 768])
@pytest.mark.parametrize("n", ROWS)
def test_hamming_every_level(rng, code_size, n):
    xb = rng.integers(0, 256, (n, code_size), dtype=np.uint8)
    xq = rng.integers(0, 256, (5, code_size), dtype=np.uint8)
    ref = np.sort(popcount_ref(xq, xb), axis=1)

    def run():
        index = annvil.IndexBinaryFlat(8 * code_size)
        index.add(xb)
        return index.search(xq, n)

    for D, I in per_level(run).values():
        np.testing.assert_array_equal(D, ref)  # integers: exact at every level
        np.testing.assert_array_equal(np.take_along_axis(popcount_ref(xq, xb), I, 1), D)
