"""Bad input raises a clear exception and leaves the index unchanged; awkward
but valid input (float64, float16, non-contiguous, lists, 1-D) is converted."""
import numpy as np
import pytest

import annvil


@pytest.fixture
def index(rng):
    idx = annvil.IndexFlatL2(8)
    idx.add(rng.standard_normal((50, 8)).astype(np.float32))
    return idx


def snapshot(idx):
    return idx.ntotal, idx.reconstruct_n(0, idx.ntotal).copy()


def assert_unchanged(idx, snap):
    n, data = snap
    assert idx.ntotal == n
    np.testing.assert_array_equal(idx.reconstruct_n(0, idx.ntotal), data)


def test_conversions(index, rng):
    x = rng.standard_normal((5, 8))
    D64, I64 = index.search(x, 3)  # float64
    D32, I32 = index.search(x.astype(np.float32), 3)
    np.testing.assert_array_equal(I64, I32)
    D16, I16 = index.search(x.astype(np.float16), 3)
    assert I16.shape == (5, 3)
    xf = np.asfortranarray(x.astype(np.float32))
    np.testing.assert_array_equal(index.search(xf, 3)[1], I32)
    strided = np.zeros((5, 16), np.float32)
    strided[:, ::2] = x
    np.testing.assert_array_equal(index.search(strided[:, ::2], 3)[1], I32)
    np.testing.assert_array_equal(index.search(x.tolist(), 3)[1], I32)
    D1, I1 = index.search(x[0].astype(np.float32), 3)  # single 1-D vector
    np.testing.assert_array_equal(I1, I32[:1])
    assert D32.dtype == np.float32 and I32.dtype == np.int64
    n = index.ntotal
    index.add(np.ones(8))  # 1-D add
    assert index.ntotal == n + 1
    D, I = index.search(np.zeros((0, 8), np.float32), 3)
    assert D.shape == (0, 3) and I.shape == (0, 3)


@pytest.mark.parametrize("bad, exc", [
    (np.zeros((3, 7), np.float32), ValueError),
    (np.zeros((3, 9), np.float32), ValueError),
    (np.zeros(7, np.float32), ValueError),
    (np.zeros((2, 2, 8), np.float32), ValueError),
    (np.array([["a"] * 8]), TypeError),
    (np.zeros((2, 8), np.complex64), TypeError),
    ([[1, 2], [3]], TypeError),
])
def test_bad_vectors(index, bad, exc):
    snap = snapshot(index)
    with pytest.raises(exc):
        index.add(bad)
    with pytest.raises(exc):
        index.search(bad, 3)
    assert_unchanged(index, snap)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite(index, value):
    snap = snapshot(index)
    x = np.zeros((4, 8), np.float32)
    x[2, 5] = value
    with pytest.raises(ValueError, match="NaN or infinity.*row 2, column 5"):
        index.add(x)
    with pytest.raises(ValueError):
        index.search(x, 3)
    with pytest.raises(ValueError):
        index.add(np.full((1, 8), 1e300))  # overflows float32
    assert_unchanged(index, snap)


@pytest.mark.parametrize("k, exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("3", TypeError),
                                    (True, TypeError)])
def test_bad_k(index, k, exc):
    with pytest.raises(exc):
        index.search(np.zeros((1, 8), np.float32), k)


def test_errors_are_runtime_errors_too(index):
    # drop-in code written for Faiss catches RuntimeError
    with pytest.raises(RuntimeError):
        index.search(np.zeros((1, 8), np.float32), 0)
    with pytest.raises(annvil.InvalidArgumentError):
        index.search(np.zeros((1, 7), np.float32), 1)


def test_bad_ids(rng):
    idx = annvil.IndexIDMap(annvil.IndexFlatL2(4))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="4 ids for 5 vectors"):
        idx.add_with_ids(x, np.arange(4))
    with pytest.raises(TypeError):
        idx.add_with_ids(x, np.arange(5, dtype=np.float32) + 0.5)
    with pytest.raises(ValueError):
        idx.add_with_ids(x, np.arange(10).reshape(5, 2))
    assert idx.ntotal == 0
    idx.add_with_ids(x, np.arange(5, dtype=np.int32))
    assert idx.ntotal == 5


def test_bad_constructor_args():
    with pytest.raises(ValueError):
        annvil.IndexFlatL2(0)
    with pytest.raises(ValueError):
        annvil.IndexFlat(8, 7)
    with pytest.raises(ValueError):
        annvil.IndexIDMap(None)
    with pytest.raises(TypeError):
        annvil.IndexFlatL2("8")


def test_idmap_requires_empty_index(rng):
    sub = annvil.IndexFlatL2(4)
    sub.add(rng.standard_normal((2, 4)))
    with pytest.raises(ValueError):
        annvil.IndexIDMap(sub)


def test_search_before_train():
    km = annvil.Kmeans(4, 2)
    with pytest.raises(annvil.NotTrainedError):
        km.assign(np.zeros((1, 4), np.float32))


def test_bad_params(index):
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 8), np.float32), 1, params="nprobe=3")
    with pytest.raises(ValueError):
        annvil.SearchParameters(sel=np.array([0.5, 1.5]))


def test_range_search_bad_radius(index):
    with pytest.raises(ValueError):
        index.range_search(np.zeros((1, 8), np.float32), np.nan)


def test_core_errors_record_where_they_were_raised():
    # errors raised by the C++ core carry `where` = "function (file.cpp:line)"
    import re

    with pytest.raises(annvil.InvalidArgumentError) as e:
        annvil.IndexPQ(10, 3, 8)
    assert re.fullmatch(r"\w+ \(\w+\.(cpp|h):\d+\)", e.value.where), e.value.where
    assert ".cpp" not in str(e.value)  # the message itself stays about the user's input
