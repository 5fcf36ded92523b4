"""Vector transforms against Faiss: RandomRotationMatrix (same matrix for the
same seed), PCAMatrix (same subspace / variances / reconstructions, up to the
sign of each eigenvector), whitening, PCAR, ITQ, centering, remapping,
Hadamard rotation, LinearTransform helpers, the factory prefixes, files and
bad input."""
import numpy as np
import pytest

import annvil
import faiss

DIMS = [1, 3, 17, 97, 384]


def data(n, d, seed=0):
    rs = np.random.RandomState(seed)
    # correlated data with a decaying spectrum (distinct eigenvalues)
    basis = rs.randn(d, d).astype(np.float32)
    scales = (1.0 / (1 + np.arange(d))).astype(np.float32)
    return ((rs.randn(n, d).astype(np.float32) * scales) @ basis + rs.rand(d).astype(np.float32)).astype(np.float32)


def faiss_vec(v):
    return faiss.vector_to_array(v)


@pytest.mark.parametrize("d_in,d_out", [(1, 1), (3, 3), (17, 5), (5, 17), (97, 97), (384, 64)])
def test_random_rotation_same_as_faiss(d_in, d_out):
    for seed in (5, 12345):
        f = faiss.RandomRotationMatrix(d_in, d_out)
        f.init(seed)
        a = annvil.RandomRotationMatrix(d_in, d_out)
        a.init(seed)
        np.testing.assert_allclose(a.A, faiss_vec(f.A), atol=1e-5)
        assert a.is_orthonormal and a.is_trained
        x = data(20, d_in)
        np.testing.assert_allclose(a.apply(x), f.apply(x), atol=1e-4)
        if d_out <= d_in:
            np.testing.assert_allclose(a.reverse_transform(a.apply(x)) @ a.A.reshape(d_out, d_in).T,
                                       a.apply(x), atol=1e-4)


@pytest.mark.parametrize("d", DIMS)
def test_pca_matches_faiss(d):
    n = max(200, 4 * d)
    x = data(n, d)
    d_out = max(1, d // 2)
    a = annvil.PCAMatrix(d, d_out)
    a.train(x)
    f = faiss.PCAMatrix(d, d_out)
    f.train(x)
    fe = faiss_vec(f.eigenvalues)
    np.testing.assert_allclose(a.eigenvalues, fe, rtol=2e-3, atol=1e-3 * fe[0])
    np.testing.assert_allclose(a.mean, faiss_vec(f.mean), atol=1e-5)
    ya, yf = a.apply(x), f.apply(x)
    # same projection up to the sign of each component
    signs = np.sign((ya * yf).sum(0))
    np.testing.assert_allclose(ya, yf * signs, atol=2e-3 * np.abs(yf).max())
    # variances decrease and equal the eigenvalues (Faiss's: of the scatter matrix, n * variance)
    var = ya.var(0)
    assert np.all(np.diff(var) <= 1e-6 * var[0] + 1e-7)
    np.testing.assert_allclose(var * n, a.eigenvalues[:d_out], rtol=1e-3, atol=1e-6 * n)
    # same reconstruction (the subspace projection) as Faiss
    np.testing.assert_allclose(a.reverse_transform(ya), f.reverse_transform(yf), atol=2e-3 * np.abs(x).max())
    A = a.A.reshape(d_out, d)
    np.testing.assert_allclose(A @ A.T, np.eye(d_out), atol=1e-4)
    assert a.is_orthonormal


def test_pca_gram_path_and_retrain():
    d, n = 64, 20
    x = np.random.RandomState(123).rand(n, d).astype(np.float32)
    a = annvil.PCAMatrix(d, 8)
    a.train(x)
    y1 = a.apply(x)
    a.train(x)
    np.testing.assert_allclose(a.apply(x), y1, atol=1e-5)
    f = faiss.PCAMatrix(d, 8)
    f.train(x)
    yf = f.apply(x)
    np.testing.assert_allclose(np.abs(y1), np.abs(yf), atol=1e-3)
    np.testing.assert_allclose(a.eigenvalues[:8], faiss_vec(f.eigenvalues)[:8], rtol=1e-3)


def test_pca_whitening_epsilon_and_rotation():
    d = 32
    x = data(2000, d, 1)
    for power, rot in [(-0.5, False), (0.0, True), (-0.5, True)]:
        a = annvil.PCAMatrix(d, 8, power, rot)
        a.train(x)
        f = faiss.PCAMatrix(d, 8, power, rot)
        f.train(x)
        ya, yf = a.apply(x), f.apply(x)
        if power == -0.5:  # whitened: the scatter matrix of the outputs is I
            np.testing.assert_allclose(ya.T.astype(np.float64) @ ya, np.eye(8), atol=2e-2)
        if not rot:
            signs = np.sign((ya * yf).sum(0))
            np.testing.assert_allclose(ya, yf * signs, atol=1e-2 * np.abs(yf).max())
        else:  # same span and the same pairwise geometry
            np.testing.assert_allclose(ya @ ya.T, yf @ yf.T, atol=2e-2 * np.abs(yf @ yf.T).max())
        assert a.is_orthonormal == (power == 0)
    # a degenerate subspace: division by 0 unless epsilon is set
    x[:, ::2] = 0
    a = annvil.PCAMatrix(d, 30, -0.5)
    a.train(x)
    assert not np.all(np.isfinite(a.apply(x)))
    a = annvil.PCAMatrix(d, 30, -0.5)
    a.epsilon = 1e-5
    a.train(x)
    assert np.all(np.isfinite(a.apply(x)))


def test_pca_balanced_bins():
    d = 16
    x = data(1000, d)
    a = annvil.PCAMatrix(d, 8)
    a.balanced_bins = 2
    a.train(x)
    f = faiss.PCAMatrix(d, 8)
    f.balanced_bins = 2
    f.train(x)
    var_a = a.apply(x).var(0).reshape(2, 4).sum(1)
    var_f = f.apply(x).var(0).reshape(2, 4).sum(1)
    np.testing.assert_allclose(var_a, var_f, rtol=1e-3)


def binarisation_loss(y):
    return float(((np.where(y < 0, -1, 1) - y) ** 2).sum())


@pytest.mark.parametrize("d_in,d_out,pca", [(16, 16, False), (32, 8, True)])
def test_itq_transform(d_in, d_out, pca):
    x = data(3000, d_in, 2)
    a = annvil.ITQTransform(d_in, d_out, pca)
    a.train(x)
    f = faiss.ITQTransform(d_in, d_out, pca)
    f.train(x)
    ya, yf = a.apply(x), f.apply(x)
    assert ya.shape == (3000, d_out)
    # the same (normalised, centred) data in an orthonormal basis: same norms
    np.testing.assert_allclose((ya ** 2).sum(1), (yf ** 2).sum(1), rtol=2e-3, atol=1e-4)
    np_ = np.linalg.norm
    A = a.pca_then_itq.A.reshape(d_out, d_in)
    np.testing.assert_allclose(A @ A.T, np.eye(d_out), atol=1e-4)
    # ITQ does what it is for: less binarisation loss than the PCA alone and than Faiss's
    pca_only = annvil.PCAMatrix(d_in, d_out)
    xn = x - x.mean(0)
    xn /= np_(xn, axis=1, keepdims=True)
    pca_only.have_bias = False
    pca_only.train(xn)
    assert binarisation_loss(ya) < binarisation_loss(pca_only.apply(xn))
    assert binarisation_loss(ya) <= binarisation_loss(yf) * 1.01
    with pytest.raises(annvil.InvalidArgumentError):
        a.train(x)  # already trained (as Faiss)


def test_itq_matrix_init_rotation_and_fields():
    d = 8
    x = data(500, d, 3)
    itq = annvil.ITQMatrix(d)
    itq.max_iter = 0
    R = np.linalg.qr(np.random.RandomState(0).randn(d, d))[0]
    annvil.copy_array_to_vector(R.ravel(), itq.init_rotation)
    itq.train(x)
    np.testing.assert_allclose(itq.A.reshape(d, d), R.T, atol=1e-6)  # y = R^T x: rotated = x R
    itq = annvil.ITQMatrix(d)
    itq.max_iter = 3
    itq.train(x)
    A = itq.A.reshape(d, d)
    np.testing.assert_allclose(A @ A.T, np.eye(d), atol=1e-5)


def test_centering_remap_hadamard():
    d = 17
    x = data(300, d)
    c = annvil.CenteringTransform(d)
    assert not c.is_trained
    c.train(x)
    fc = faiss.CenteringTransform(d)
    fc.train(x)
    np.testing.assert_allclose(c.apply(x), fc.apply(x), atol=1e-4)
    np.testing.assert_allclose(c.reverse_transform(c.apply(x)), x, atol=1e-4)
    for d_out, uniform in [(5, True), (30, True), (30, False), (5, False)]:
        r = annvil.RemapDimensionsTransform(d, d_out, uniform)
        fr = faiss.RemapDimensionsTransform(d, d_out, uniform)
        np.testing.assert_array_equal(r.map, faiss_vec(fr.map))
        np.testing.assert_array_equal(r.apply(x), fr.apply(x))
    perm = np.random.RandomState(0).permutation(d).astype(np.int32)
    r = annvil.RemapDimensionsTransform(d, d, perm)
    np.testing.assert_array_equal(r.reverse_transform(r.apply(x)), x)
    for dh in (3, 17, 97):
        xh = data(10, dh)
        h = annvil.HadamardRotation(dh, 42)
        fh = faiss.HadamardRotation(dh, 42)
        assert h.d_out == fh.d_out
        np.testing.assert_array_equal(h.signs1, faiss_vec(fh.signs1))
        np.testing.assert_allclose(h.apply(xh), fh.apply(xh), atol=1e-5)
        np.testing.assert_allclose(h.reverse_transform(h.apply(xh)), xh, atol=1e-5)


def test_linear_transform_helpers():
    lt = annvil.LinearTransform(20, 10, True)
    rs = np.random.RandomState(10)
    A = np.linalg.qr(rs.randn(20, 20))[0][:10].astype(np.float32)
    annvil.copy_array_to_vector(A.ravel(), lt.A)
    annvil.copy_array_to_vector(rs.randn(10).astype(np.float32), lt.b)
    np.testing.assert_array_equal(lt.A, A.ravel())
    lt.set_is_orthonormal()
    assert lt.is_orthonormal
    x = rs.rand(30, 20).astype(np.float32)
    y = lt.apply(x)
    np.testing.assert_allclose(y, x @ A.T + lt.b, atol=1e-5)
    np.testing.assert_allclose(lt.apply(lt.reverse_transform(y)), y, atol=1e-4)
    np.testing.assert_allclose(lt.transform_transpose(y), (y - lt.b) @ A, atol=1e-5)
    lt2 = annvil.LinearTransform(20, 10, True)
    annvil.copy_array_to_vector(rs.randn(200).astype(np.float32), lt2.A)
    lt2.set_is_orthonormal()
    assert not lt2.is_orthonormal
    with pytest.raises(RuntimeError):
        lt2.reverse_transform(y)
    with pytest.raises(annvil.InvalidArgumentError):
        lt.check_identical(lt2)
    lt.check_identical(lt)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.copy_array_to_vector(np.zeros(7, np.float32), lt.A)  # wrong size


@pytest.mark.parametrize("desc,dout", [("PCA8,Flat", 8), ("PCAW4,Flat", 4), ("PCAR16,Flat", 16), ("ITQ,Flat", 32),
                                       ("ITQ8,Flat", 8), ("RR16,Flat", 16), ("Pad40,Flat", 40), ("HR,Flat", 32),
                                       ("L2norm,PCA8,IVF4,PQ4np", 8), ("PCAR16,IVF8,SQ8", 16),
                                       ("Center,Flat", 32)])
def test_factory_transforms_against_faiss(desc, dout):
    d = 32
    xt = data(2000, d, 4)
    xq = data(20, d, 5)
    a = annvil.index_factory(d, desc)
    assert a.index.d == dout if hasattr(a, "index") else True
    a.train(xt)
    a.add(xt)
    D, I = a.search(xq, 5)
    assert I.shape == (20, 5) and (I >= 0).all()
    if desc.startswith("Center"):
        return
    f = faiss.index_factory(d, desc)
    assert [type(t).__name__ for t in a.chain] == \
        [type(faiss.downcast_VectorTransform(f.chain.at(i))).__name__ for i in range(f.chain.size())]
    if "IVF" not in desc and "ITQ" not in desc:
        f.train(xt)
        f.add(xt)
        Df, If = f.search(xq, 5)
        assert (I[:, 0] == If[:, 0]).mean() > 0.9


def test_pretransform_file_roundtrip_and_merge(tmp_path):
    d = 16
    x = data(500, d)
    for desc in ("PCAW8,Flat", "ITQ8,Flat", "Pad20,Flat", "HR,Flat", "Center,Flat", "PCAR8,Flat"):
        idx = annvil.index_factory(d, desc)
        idx.train(x)
        idx.add(x)
        p = str(tmp_path / "i.idx")
        annvil.write_index(idx, p)
        idx2 = annvil.read_index(p)
        np.testing.assert_array_equal(idx2.search(x[:10], 3)[1], idx.search(x[:10], 3)[1])
        t = idx.chain[0]
        annvil.write_VectorTransform(t, p)
        t2 = annvil.read_VectorTransform(p)
        np.testing.assert_array_equal(t2.apply(x[:5]), t.apply(x[:5]))
        clone = annvil.clone_index(idx)
        idx.merge_from(clone)
        assert idx.ntotal == 1000
    a = annvil.index_factory(d, "PCA8,Flat")
    b = annvil.index_factory(d, "PCA8,Flat")
    a.train(x)
    b.train(x[:300])
    with pytest.raises(annvil.InvalidArgumentError):
        a.merge_from(b)


def test_bad_input():
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.PCAMatrix(0, 4)
    p = annvil.PCAMatrix(8, 4)
    with pytest.raises(annvil.NotTrainedError):
        p.apply(np.zeros((2, 8), np.float32))
    with pytest.raises(annvil.InvalidArgumentError):
        p.train(np.zeros((10, 7), np.float32))  # wrong d
    with pytest.raises((annvil.InvalidArgumentError, annvil.InvalidTypeError)):
        p.train(np.array([["a"] * 8] * 10))
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.PCAMatrix(8, 12).train(np.random.rand(100, 8).astype(np.float32))  # d_out > d_in
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.PCAMatrix(8, 4).train(np.full((10, 8), np.nan, np.float32))
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.ITQTransform(8, 4, False)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.RemapDimensionsTransform(4, 2, np.array([0, 9], np.int32))
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.index_factory(8, "PCA16,Flat")
    it = annvil.ITQMatrix(4)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.copy_array_to_vector(np.zeros(5), it.init_rotation)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.matrix_qr(2, 3, np.zeros(6, np.float32))


def test_matrix_qr_same_as_faiss():
    rs = np.random.RandomState(0)
    for m, n in [(5, 5), (17, 3), (97, 97)]:
        a = rs.randn(m * n).astype(np.float32)
        b = a.copy()
        annvil.matrix_qr(m, n, a)
        faiss.matrix_qr(m, n, faiss.swig_ptr(b))
        np.testing.assert_allclose(a, b, atol=1e-5)
