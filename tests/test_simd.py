"""Every SIMD level the CPU supports gives the scalar reference's answers."""
import numpy as np
import pytest

import annvil

LEVELS = ["scalar", "avx2", "avx512"]


def supported():
    best = LEVELS.index(annvil.detected_simd_level())
    return LEVELS[: best + 1]


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
    for level in supported():
        annvil.set_simd_level(level)
        assert annvil.simd_level() == level
        results[level] = [annvil.knn(xq, xb, 5), annvil.knn(xq, xb, 5, annvil.METRIC_INNER_PRODUCT),
                          annvil.knn(xq, xb, 1), annvil.knn(xq, xb, 1, annvil.METRIC_INNER_PRODUCT),
                          annvil.pairwise_distances(xq, xb)]
    ref = results["scalar"]
    for level, res in results.items():
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
