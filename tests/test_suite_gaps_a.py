"""Smaller Faiss APIs that its own tests and contrib helpers call: the
inverted multi-index (MultiIndexQuantizer, IMI factory strings),
permute_entries on flat and HNSW indexes, CodeSet.  faiss is the oracle."""
import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")


def test_multi_index_quantizer_matches_faiss_with_same_codebooks():
    rng = np.random.default_rng(2)
    d = 16
    xt = rng.standard_normal((3000, d)).astype("float32")
    xq = rng.standard_normal((25, d)).astype("float32")
    ours = annvil.MultiIndexQuantizer(d, 2, 5)
    with pytest.raises(annvil.NotTrainedError):
        ours.search(xq, 3)
    ours.train(xt)
    assert ours.ntotal == 1024 and ours.is_trained
    theirs = faiss.MultiIndexQuantizer(d, 2, 5)
    faiss.copy_array_to_vector(np.asarray(ours.pq.centroids, "float32").ravel(), theirs.pq.centroids)
    theirs.pq.train_type = 0
    theirs.is_trained = True
    theirs.ntotal = 1024
    for k in (1, 7, 200):
        D, I = ours.search(xq, k)
        Df, If = theirs.search(xq, k)
        np.testing.assert_allclose(D, Df, rtol=1e-5, atol=1e-5)
        # same labels up to ties in the sums
        same = I == If
        assert same.mean() > 0.97
        for q, j in zip(*np.nonzero(~same)):
            assert abs(D[q, j] - Df[q, j]) < 1e-4
    for key in (0, 37, 1023):
        np.testing.assert_array_equal(ours.reconstruct(key), theirs.reconstruct(key))
        # the label's distance is the distance to its reconstruction
    D, I = ours.search(xq[:1], 3)
    rec = ours.reconstruct(int(I[0, 0]))
    assert abs(((rec - xq[0]) ** 2).sum() - D[0, 0]) < 1e-4
    with pytest.raises(annvil.InvalidArgumentError):
        ours.add(xt[:1])
    c = annvil.clone_index(ours)
    np.testing.assert_array_equal(c.search(xq, 5)[1], ours.search(xq, 5)[1])


def test_imi_ivf_finds_exact_neighbours_with_all_lists():
    rng = np.random.default_rng(4)
    d = 12
    xt = rng.random((300, d), dtype="float32")
    xb = rng.random((800, d), dtype="float32")
    xq = rng.random((9, d), dtype="float32")
    idx = annvil.index_factory(d, "IMI2x3,Flat")
    assert isinstance(idx.quantizer, annvil.MultiIndexQuantizer) and idx.nlist == 64
    assert idx.quantizer_trains_alone == 1
    idx.train(xt)
    idx.add(xb)
    idx.nprobe = 64
    _, I = idx.search(xq, 4)
    _, Iref = annvil.knn(xq, xb, 4)
    np.testing.assert_array_equal(I, Iref)
    f = faiss.index_factory(d, "IMI2x3,Flat")
    assert f.nlist == idx.nlist
    # sa codes: list number (1 byte for 64 lists) then the vector
    assert idx.sa_code_size() == f.sa_code_size()


def test_flat_and_hnsw_permute_entries():
    rng = np.random.default_rng(6)
    d = 8
    xb = rng.integers(-8, 8, (500, d)).astype("float32")  # exact in halves: HNSW keeps fp16 storage
    xq = rng.standard_normal((20, d)).astype("float32")
    for idx in (annvil.IndexFlatL2(d), annvil.IndexHNSWFlat(d, 8)):
        idx.add(xb)
        Dref, Iref = idx.search(xq, 6)
        perm = rng.permutation(idx.ntotal)
        idx.permute_entries(perm)
        D, I = idx.search(xq, 6)
        np.testing.assert_array_equal(D, Dref)
        np.testing.assert_array_equal(perm[I], Iref)
        np.testing.assert_array_equal(idx.reconstruct(5), xb[perm[5]])
        with pytest.raises(annvil.InvalidArgumentError):
            idx.permute_entries(np.zeros(idx.ntotal, "int64"))
    f = faiss.IndexFlatL2(d)
    f.add(xb)
    f.permute_entries(perm)
    ours = annvil.IndexFlatL2(d)
    ours.add(xb)
    ours.permute_entries(perm)
    np.testing.assert_array_equal(ours.reconstruct_n(0, 500), f.reconstruct_n(0, 500))


def test_code_set_matches_faiss():
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 3, (700, 5)).astype("uint8")
    ours = annvil.CodeSet(5)
    theirs = faiss.CodeSet(5)
    np.testing.assert_array_equal(ours.insert(codes[:400]), theirs.insert(codes[:400]))
    np.testing.assert_array_equal(ours.insert(codes[400:]), theirs.insert(codes[400:]))
    assert len(ours) == len(np.unique(codes, axis=0))
    with pytest.raises(annvil.InvalidTypeError):
        ours.insert(codes.astype("int32"))


def test_multi_index_quantizer2_equals_the_plain_one_with_flat_assignment():
    rng = np.random.default_rng(12)
    d = 16
    xt = rng.standard_normal((2000, d)).astype("float32")
    xq = rng.standard_normal((30, d)).astype("float32")
    plain = annvil.MultiIndexQuantizer(d, 2, 4)
    plain.train(xt)
    a0, a1 = annvil.IndexFlatL2(d // 2), annvil.IndexFlatL2(d // 2)
    q2 = annvil.MultiIndexQuantizer2(d, 4, a0, a1)
    q2.pq = plain.pq  # a trained codebook: the virtual centroids exist
    assert q2.is_trained and q2.ntotal == 256
    with pytest.raises(annvil.InvalidArgumentError):
        q2.search(xq, 5)  # the assign indexes are still empty
    q2.train(xt)  # fills the assign indexes with the sub-centroids
    assert a0.ntotal == a1.ntotal == 16
    q2.pq = plain.pq
    D, I = q2.search(xq, 20)
    Dp, Ip = plain.search(xq, 20)
    np.testing.assert_allclose(D, Dp, rtol=1e-5, atol=1e-5)
    assert (I == Ip).mean() > 0.97
    # as a coarse quantizer, trained alone
    ivf = annvil.IndexIVFFlat(annvil.MultiIndexQuantizer2(d, 4, annvil.IndexFlatL2(d // 2),
                                                          annvil.IndexFlatL2(d // 2)), d, 256)
    ivf.train(xt)
    ivf.add(xt[:500])
    ivf.nprobe = 256
    np.testing.assert_array_equal(ivf.search(xq, 3)[1], annvil.knn(xq, xt[:500], 3)[1])
    # faiss builds the same object
    f = faiss.MultiIndexQuantizer2(d, 4, faiss.IndexFlatL2(d // 2), faiss.IndexFlatL2(d // 2))
    assert f.pq.M == q2.pq.M and f.pq.ksub == q2.pq.ksub
