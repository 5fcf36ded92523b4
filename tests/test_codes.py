"""Standalone codes (sa_code_size / sa_encode / sa_decode / add_sa_codes),
search_and_reconstruct, index.codes, the boolean ID selectors and the
padding of missing results, checked against Faiss on the same data."""
import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")

D_ = 24


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    xt = (rng.standard_normal((3000, D_)) * 2).astype("float32")
    xb = (rng.standard_normal((1200, D_)) * 2).astype("float32")
    xq = (rng.standard_normal((30, D_)) * 2).astype("float32")
    return xt, xb, xq


# ---- byte-exact codes where the codec is deterministic -------------------------------------
@pytest.mark.parametrize("key", ["Flat", "SQ8", "SQfp16", "SQ8,RFlat"])
@pytest.mark.parametrize("n", [1, 11, 77])
def test_codes_equal_faiss(data, key, n):
    xt, xb, _ = data
    a, f = annvil.index_factory(D_, key), faiss.index_factory(D_, key)
    a.train(xt)
    f.train(xt)
    assert a.sa_code_size() == f.sa_code_size()
    ca, cf = a.sa_encode(xb[:n]), f.sa_encode(xb[:n])
    assert ca.dtype == np.uint8 and ca.shape == (n, f.sa_code_size())
    np.testing.assert_array_equal(ca, cf)
    np.testing.assert_allclose(a.sa_decode(ca), f.sa_decode(cf), rtol=1e-5, atol=1e-5)


def test_sq8_codes_clamp_out_of_range(data):
    xt, _, _ = data
    a, f = annvil.IndexScalarQuantizer(D_, 0), faiss.IndexScalarQuantizer(D_, 0)
    a.train(xt)
    f.train(xt)
    x = np.vstack([xt[:5] * 10, np.zeros((1, D_), "float32")]).astype("float32")
    np.testing.assert_array_equal(a.sa_encode(x), f.sa_encode(x))


def test_index_codes_attribute(data):
    _, xb, _ = data
    for make in (lambda m: m.IndexFlatL2(D_), lambda m: m.IndexScalarQuantizer(D_, 0)):
        a, f = make(annvil), make(faiss)
        a.train(xb)
        f.train(xb)
        a.add(xb[:50])
        f.add(xb[:50])
        np.testing.assert_array_equal(annvil.vector_to_array(a.codes), faiss.vector_to_array(f.codes))


# ---- the IVF layout: list number then the code ------------------------------------------------
@pytest.mark.parametrize("key,nlist", [("IVF16,Flat", 16), ("IVF300,Flat", 300), ("IVF16,SQ8", 16),
                                       ("IVF16,PQ6x4", 16), ("IVF16,PQ6x4fs", 16)])
def test_ivf_codes_layout(data, key, nlist):
    xt, xb, _ = data
    a, f = annvil.index_factory(D_, key), faiss.index_factory(D_, key)
    a.train(xt)
    f.train(xt)
    assert a.sa_code_size() == f.sa_code_size()
    codes = a.sa_encode(xb[:200])
    lb = 1 if nlist <= 256 else 2
    listno = codes[:, :lb].astype(np.int64) @ (256 ** np.arange(lb))
    _, assign = a.quantizer.search(xb[:200], 1)
    np.testing.assert_array_equal(listno, assign[:, 0])
    if key.endswith("Flat"):  # IVFFlat codes are the raw vectors after the list number
        np.testing.assert_array_equal(codes[:, lb:].view("float32"), xb[:200])
    # decoding matches reconstruction of the stored vectors
    a.add(xb[:200])
    a.make_direct_map()
    rec = np.stack([a.reconstruct(i) for i in range(200)])
    np.testing.assert_allclose(a.sa_decode(codes), rec, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key", ["Flat", "SQ8", "PQ6", "PQ6x4fs", "IVF16,Flat", "IVF16,SQ8", "IVF16,PQ6",
                                 "IVF16,PQ6x4fs", "HNSW16", "HNSW16,SQ8", "HNSW16,PQ6", "OPQ6,PQ6",
                                 "SQ8,RFlat"])
def test_add_sa_codes_same_as_add(data, key):
    xt, xb, xq = data
    ref = annvil.index_factory(D_, key)
    ref.train(xt)
    new = annvil.clone_index(ref)
    prev = annvil.omp_get_max_threads()
    annvil.omp_set_num_threads(1)  # HNSW graphs are deterministic with one thread
    try:
        ref.add(xb)
        new.add_sa_codes(new.sa_encode(xb))
    finally:
        annvil.omp_set_num_threads(prev)
    assert new.ntotal == ref.ntotal == len(xb)
    for idx in (ref, new):
        if hasattr(idx, "nprobe"):
            idx.nprobe = 4
    Dr, Ir = ref.search(xq, 10)
    Dn, In = new.search(xq, 10)
    np.testing.assert_array_equal(In, Ir)
    np.testing.assert_allclose(Dn, Dr, rtol=1e-5)
    # decode(encode(x)) is what the index reconstructs
    if not key.startswith("IVF"):
        np.testing.assert_allclose(new.sa_decode(new.sa_encode(xb[:9])), ref.reconstruct_n(0, 9),
                                   rtol=1e-4, atol=1e-4)


def test_idmap_add_sa_codes(data):
    xt, xb, xq = data
    ids = np.arange(len(xb)) * 3 + 11
    for key in ("IDMap2,PQ6", "IDMap,IVF16,Flat", "IDMap2,IVF16,SQ8"):
        ref = annvil.index_factory(D_, key)
        ref.train(xt)
        new = annvil.clone_index(ref)
        ref.add_with_ids(xb, ids)
        new.add_sa_codes(new.index.sa_encode(xb), ids)
        np.testing.assert_array_equal(new.search(xq, 5)[1], ref.search(xq, 5)[1])
        if key.startswith("IDMap2,IVF"):
            new.index.make_direct_map()
            ref.index.make_direct_map()
            np.testing.assert_allclose(new.reconstruct(int(ids[7])), ref.reconstruct(int(ids[7])), rtol=1e-6)
    with pytest.raises(ValueError):
        new.add_sa_codes(new.index.sa_encode(xb[:3]))  # IDMap needs the ids


def test_codec_bad_input(data):
    xt, xb, _ = data
    sq = annvil.IndexScalarQuantizer(D_, 0)
    with pytest.raises(RuntimeError):
        sq.sa_encode(xb[:2])  # not trained
    sq.train(xt)
    with pytest.raises(ValueError):
        sq.sa_decode(np.zeros((2, D_ + 1), np.uint8))
    with pytest.raises(ValueError):
        sq.sa_decode(np.zeros((2, D_), np.float32))
    ivf = annvil.index_factory(D_, "IVF16,Flat")
    ivf.train(xt)
    bad = ivf.sa_encode(xb[:3])
    bad[1, 0] = 200  # list 200 of 16
    with pytest.raises(ValueError):
        ivf.sa_decode(bad)
    with pytest.raises(ValueError):
        ivf.add_sa_codes(bad)
    assert ivf.ntotal == 0  # the failed call changed nothing
    with pytest.raises(RuntimeError):
        annvil.IndexIDMap(annvil.IndexFlatL2(D_)).sa_encode(xb[:1]).shape  # noqa: B018
        raise RuntimeError("IDMap forwards to its index: fine")


# ---- search_and_reconstruct ---------------------------------------------------------------------
@pytest.mark.parametrize("key", ["Flat", "SQ8", "PQ6", "IVF16,Flat", "IVF16,PQ6", "IVF16,SQ8", "HNSW16",
                                 "IVF16,PQ6x4fs", "OPQ6,PQ6", "IDMap,Flat", "IDMap,IVF16,SQ8", "SQ8,RFlat"])
def test_search_and_reconstruct(data, key):
    xt, xb, xq = data
    a = annvil.index_factory(D_, key)
    a.train(xt)
    if key.startswith("IDMap"):
        ids = np.arange(len(xb)) + 1000
        a.add_with_ids(xb, ids)
    else:
        ids = np.arange(len(xb))
        a.add(xb)
    D, I = a.search(xq, 7)
    D2, I2, R = a.search_and_reconstruct(xq, 7)
    np.testing.assert_array_equal(I2, I)
    np.testing.assert_array_equal(D2, D)
    assert R.shape == (len(xq), 7, D_)
    # each row is the stored vector of its label (the decoded code)
    inner = a.index if key.startswith("IDMap") else a
    pos = np.searchsorted(ids, I)
    for q in range(0, len(xq), 7):
        for j in range(7):
            if hasattr(inner, "make_direct_map") and not hasattr(inner, "_dm_done"):
                inner.make_direct_map()
                inner._dm_done = True
            np.testing.assert_allclose(R[q, j], inner.reconstruct(int(pos[q, j])), rtol=1e-5, atol=1e-5)


def test_search_and_reconstruct_matches_faiss_flat(data):
    _, xb, xq = data
    a, f = annvil.IndexFlatL2(D_), faiss.IndexFlatL2(D_)
    a.add(xb[:5])
    f.add(xb[:5])
    Da, Ia, Ra = a.search_and_reconstruct(xq, 8)  # k > ntotal: padded rows
    Df, If, Rf = f.search_and_reconstruct(xq, 8)
    np.testing.assert_array_equal(Ia, If)
    np.testing.assert_allclose(Da, Df, rtol=1e-5)
    np.testing.assert_array_equal(Ra[:, :5], Rf[:, :5])
    assert np.isnan(Ra[:, 5:]).all()


# ---- padding of missing results -------------------------------------------------------------
@pytest.mark.parametrize("key", ["Flat", "SQ8", "PQ6x4", "PQ6x4fs", "IVF16,Flat", "IVF16,PQ6x4fs", "HNSW16"])
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_missing_results_padding(data, key, metric):
    xt, xb, xq = data
    a = annvil.index_factory(D_, key, metric)
    f = faiss.index_factory(D_, key, metric)
    a.train(xt[:1000])
    f.train(xt[:1000])
    a.add(xb[:4])
    f.add(xb[:4])
    for idx in (a, f):
        if hasattr(idx, "nprobe"):
            idx.nprobe = 16  # every list: the 4 vectors are always found
    Da, Ia = a.search(xq, 9)
    Df, If = f.search(xq, 9)
    missing = If == -1
    np.testing.assert_array_equal(Ia == -1, missing)
    assert (Ia[:, :4] >= 0).all() and missing[:, 4:].all()
    fmax = np.finfo("float32").max
    assert (Da[missing] == (fmax if metric == annvil.METRIC_L2 else -fmax)).all()
    if "fs" not in key:  # Faiss's fast-scan pads with its quantised threshold instead
        np.testing.assert_array_equal(Da[missing], Df[missing])


# ---- selectors -------------------------------------------------------------------------------
def test_boolean_selectors_match_faiss(data):
    _, xb, xq = data
    ids = np.array([3, 17, 40, 41, 500, 999])

    def build(m):
        arr = m.IDSelectorArray(len(ids), m.swig_ptr(ids) if m is faiss else ids)
        rng = m.IDSelectorRange(30, 600)
        return {"array": arr, "and": m.IDSelectorAnd(arr, rng), "or": m.IDSelectorOr(arr, rng),
                "xor": m.IDSelectorXOr(arr, rng), "not": m.IDSelectorNot(arr)}

    sa, sf = build(annvil), build(faiss)
    a, f = annvil.IndexFlatL2(D_), faiss.IndexFlatL2(D_)
    a.add(xb)
    f.add(xb)
    for name in sa:
        Ia = a.search(xq, 8, params=annvil.SearchParameters(sel=sa[name]))[1]
        If = f.search(xq, 8, params=faiss.SearchParameters(sel=sf[name]))[1]
        np.testing.assert_array_equal(Ia, If, err_msg=name)
        members = [i for i in range(1000) if sa[name].is_member(i)]
        assert members == [i for i in range(1000) if sf[name].is_member(i)], name
    with pytest.raises(TypeError):
        annvil.IDSelectorAnd(sa["array"], None)
