"""IndexLSH against Faiss (identical codes, thresholds and results for the
same rotation), the standalone codec, files, merging, factory strings, bad
input; IndexLSHMultiTable (recall grows with probes to exact, ids / files /
removal)."""
import numpy as np
import pytest

import annvil
import faiss
from conftest import clustered

DIMS = [1, 3, 17, 97, 384]


def sets(d, seed=0, nt=600, nb=500, nq=30):
    rs = np.random.RandomState(seed)
    return (rs.randn(nt, d).astype(np.float32), rs.randn(nb, d).astype(np.float32),
            rs.randn(nq, d).astype(np.float32))


def faiss_codes(index):
    return faiss.vector_to_array(index.codes).reshape(index.ntotal, -1)


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("rotate,train_t", [(True, False), (True, True), (False, False), (False, True)])
def test_codes_and_search_identical_to_faiss(d, rotate, train_t):
    xt, xb, xq = sets(d)
    more = {2 * d + 3} if rotate and d < 100 else set()  # nbits > d: a tight frame
    for nbits in sorted({d, max(1, d // 2)} | more):
        a = annvil.IndexLSH(d, nbits, rotate, train_t)
        f = faiss.IndexLSH(d, nbits, rotate, train_t)
        assert a.is_trained == f.is_trained == (not train_t)
        if rotate:  # the same rotation as Faiss's (up to float rounding)
            np.testing.assert_allclose(a.rrot.A, faiss.vector_to_array(f.rrot.A), atol=1e-5)
            annvil.copy_array_to_vector(faiss.vector_to_array(f.rrot.A), a.rrot.A)  # bit-exact
        a.train(xt)
        f.train(xt)
        if train_t:
            np.testing.assert_allclose(a.thresholds, faiss.vector_to_array(f.thresholds), atol=1e-5)
            annvil.copy_array_to_vector(faiss.vector_to_array(f.thresholds), a.thresholds)
        a.add(xb)
        f.add(xb)
        assert a.code_size == f.code_size == (nbits + 7) // 8
        np.testing.assert_array_equal(a.codes, faiss_codes(f))
        np.testing.assert_array_equal(a.sa_encode(xq), f.sa_encode(xq))
        D, I = a.search(xq, 7)
        Df, If = f.search(xq, 7)
        np.testing.assert_array_equal(D, Df)
        # equal Hamming distances: the same ids up to order within ties
        for i in range(len(xq)):
            for dist in np.unique(D[i][:-1]):  # the last distance may be cut
                assert set(I[i][D[i] == dist]) == set(If[i][Df[i] == dist])
        dec, decf = a.sa_decode(a.sa_encode(xq)), f.sa_decode(f.sa_encode(xq))
        cols = d if rotate else nbits  # Faiss leaves the other columns uninitialised
        np.testing.assert_allclose(dec[:, :cols], decf[:, :cols], atol=1e-4)
        np.testing.assert_array_equal(a.reconstruct_n(0, 3), a.sa_decode(a.codes[:3]))


def test_missing_results_and_selector():
    xt, xb, xq = sets(16)
    a = annvil.IndexLSH(16, 32)
    a.add(xb[:5])
    D, I = a.search(xq[:2], 8)
    f = faiss.IndexLSH(16, 32)
    f.add(xb[:5])
    Df, If = f.search(xq[:2], 8)
    np.testing.assert_array_equal(I[:, 5:], -1)
    np.testing.assert_array_equal(D[:, 5:], Df[:, 5:])
    D, I = a.search(xq, 3, params=annvil.SearchParameters(sel=annvil.IDSelectorRange(1, 3)))
    assert set(I.ravel()) == {1, 2, -1}


def test_file_roundtrip_merge_remove(tmp_path):
    xt, xb, xq = sets(24)
    a = annvil.IndexLSH(24, 40, True, True)
    a.train(xt)
    a.add(xb)
    p = str(tmp_path / "lsh.idx")
    annvil.write_index(a, p)
    b = annvil.read_index(p)
    assert type(b) is annvil.IndexLSH and b.train_thresholds and b.nbits == 40
    np.testing.assert_array_equal(b.codes, a.codes)
    np.testing.assert_array_equal(b.search(xq, 5)[0], a.search(xq, 5)[0])
    np.testing.assert_array_equal(annvil.read_index(p, mmap=True).codes, a.codes)
    c = annvil.clone_index(a)
    a.merge_from(c)
    assert a.ntotal == 1000 and c.ntotal == 0
    np.testing.assert_array_equal(a.codes[500:], a.codes[:500])
    other = annvil.IndexLSH(24, 40, True, True)
    other.train(xt[:100])
    with pytest.raises(annvil.InvalidArgumentError):
        a.merge_from(other)
    n = a.remove_ids(np.arange(500, 1000))
    assert n == 500 and a.ntotal == 500
    np.testing.assert_array_equal(a.codes, b.codes)
    data = bytearray(annvil.serialize_index(b).tobytes())
    for cut in (10, len(data) // 2, len(data) - 3):
        with pytest.raises(annvil.IndexFileError):
            annvil.deserialize_index(bytes(data[:cut]))


def test_transfer_thresholds():
    xt, xb, xq = sets(16)
    a = annvil.IndexLSH(16, 16, False, True)
    a.train(xt)
    lt = annvil.LinearTransform(16, 16, False)
    annvil.copy_array_to_vector(np.eye(16, dtype=np.float32).ravel(), lt.A)
    codes = a.sa_encode(xq)
    a.transfer_thresholds(lt)
    assert not a.train_thresholds and lt.have_bias
    np.testing.assert_array_equal(a.sa_encode(lt.apply(xq)), codes)


@pytest.mark.parametrize("desc,cls", [("LSH", "IndexLSH"), ("LSHrt", "IndexLSH"), ("LSH16rt", "IndexLSH"),
                                      ("LSHr", "IndexLSH"), ("LSHt", "IndexLSH"), ("ITQ,LSH", "IndexPreTransform"),
                                      ("ITQ16,LSH", "IndexPreTransform"), ("ITQ,LSHt", "IndexPreTransform"),
                                      ("PCAR16,L2Norm,PCAW8,LSHr", "IndexPreTransform")])
def test_factory(desc, cls):
    d = 32
    xt, xb, xq = sets(d)
    a = annvil.index_factory(d, desc)
    f = faiss.index_factory(d, desc)
    assert type(a).__name__ == cls == type(f).__name__
    inner = a.index if cls == "IndexPreTransform" else a
    finner = faiss.downcast_index(f.index) if cls == "IndexPreTransform" else f
    assert (inner.nbits, inner.rotate_data, inner.train_thresholds) == \
        (finner.nbits, finner.rotate_data, finner.train_thresholds)
    a.train(xt)
    a.add(xb)
    assert a.sa_code_size() == f.sa_code_size()
    D, I = a.search(xq, 5)
    assert (I >= 0).all()
    if cls == "IndexLSH":  # same codes (same rotation) as Faiss
        f.train(xt)
        f.add(xb)
        same = (a.codes == faiss_codes(f)).all(1).mean()
        assert same > 0.98
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.index_factory(d, desc, annvil.METRIC_INNER_PRODUCT) if cls == "IndexLSH" else \
            annvil.index_factory(d, "LSH40")  # 40 bits > d without rotation


def test_bad_input():
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexLSH(8, 16, False)  # nbits > d without rotation
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexLSH(8, 0)
    a = annvil.IndexLSH(8, 8, True, True)
    with pytest.raises(annvil.NotTrainedError):
        a.add(np.zeros((3, 8), np.float32))
    with pytest.raises(annvil.InvalidArgumentError):
        a.train(np.zeros((3, 9), np.float32))  # wrong d
    a.train(np.random.rand(20, 8).astype(np.float32))
    with pytest.raises((annvil.InvalidArgumentError, annvil.InvalidTypeError)):
        a.add(np.array([["x"] * 8]))
    with pytest.raises(annvil.InvalidArgumentError):
        a.sa_decode(np.zeros((2, 3), np.uint8))  # wrong code size
    with pytest.raises((annvil.InvalidTypeError, annvil.InvalidArgumentError)):
        a.sa_decode(np.zeros((2, 1), np.float32))  # not uint8
    with pytest.raises(annvil.InvalidArgumentError):
        a.thresholds = np.zeros(3, np.float32)
    assert a.ntotal == 0


# ---- multi-table ------------------------------------------------------------------
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_multitable_recall_grows_to_exact(rng, metric):
    d = 48
    xb = clustered(rng, 4000, d)
    xq = clustered(rng, 50, d)
    if metric == annvil.METRIC_INNER_PRODUCT:
        annvil.normalize_L2(xb)
        annvil.normalize_L2(xq)
    ref = faiss.IndexFlat(d, metric)
    ref.add(xb)
    Dr, Ir = ref.search(xq, 10)
    idx = annvil.IndexLSHMultiTable(d, 12, 10, metric)
    with pytest.raises(annvil.NotTrainedError):
        idx.add(xb)
    idx.train(xb)
    idx.add(xb[:1500])
    idx.add(xb[1500:])
    recalls = []
    for nprobe in (1, 8, 64, 1024):
        idx.nprobe = nprobe
        D, I = idx.search(xq, 10)
        recalls.append(np.mean([len(set(I[i]) & set(Ir[i])) / 10 for i in range(len(xq))]))
        # what is returned is exact
        valid = I >= 0
        np.testing.assert_allclose(D[valid], np.take_along_axis(Dr, np.zeros_like(I), 1)[valid] * 0 +
                                   ((xb[I[valid]] - np.repeat(xq, 10, 0).reshape(50, 10, d)[valid]) ** 2).sum(-1)
                                   if metric == annvil.METRIC_L2 else
                                   (xb[I[valid]] * np.repeat(xq, 10, 0).reshape(50, 10, d)[valid]).sum(-1),
                                   rtol=1e-4, atol=1e-4)
    assert recalls == sorted(recalls) and recalls[-1] == 1.0 and recalls[0] < 1.0
    # per-call parameters
    D2, I2 = idx.search(xq, 10, params=annvil.SearchParametersLSHMultiTable(nprobe=8))
    idx.nprobe = 8
    np.testing.assert_array_equal(idx.search(xq, 10)[1], I2)


def test_multitable_files_remove_factory(tmp_path, rng):
    d = 17
    xb = rng.standard_normal((800, d)).astype(np.float32)
    idx = annvil.index_factory(d, "LSHMT6x8")
    assert type(idx) is annvil.IndexLSHMultiTable and idx.ntables == 6 and idx.nbits == 8
    idx.train(xb)
    idx.add(xb)
    idx.nprobe = 4
    D, I = idx.search(xb[:20], 5)
    assert (I[:, 0] == np.arange(20)).all()  # a stored vector finds itself
    p = str(tmp_path / "mt.idx")
    annvil.write_index(idx, p)
    idx2 = annvil.read_index(p)
    assert idx2.nprobe == 4
    np.testing.assert_array_equal(idx2.search(xb[:20], 5)[1], I)
    np.testing.assert_array_equal(idx2.reconstruct(3), xb[3])
    assert idx.remove_ids(np.arange(0, 800, 2)) == 400
    D, I = idx.search(xb[1:40:2], 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(20))
    idx.reset()
    assert idx.ntotal == 0 and (idx.search(xb[:2], 3)[1] == -1).all()
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexLSHMultiTable(d, 4, 40)
    with pytest.raises(annvil.InvalidArgumentError):
        idx.nprobe = 0
    with pytest.raises(annvil.InvalidArgumentError):
        idx.search(np.zeros((2, d + 1), np.float32), 3)
