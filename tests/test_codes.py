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


# ---- IndexFlatCodes: the behaviour the four code-array indexes share ----------------------------
FLAT_CODES_KEYS = ["Flat", "SQ8", "SQ4", "PQ6", "PQ6x4fs"]


def _trained(key, xt, metric=annvil.METRIC_L2):
    index = annvil.index_factory(D_, key, metric)
    index.train(xt)
    return index


def test_flat_codes_isinstance_as_faiss():
    for make in (lambda m: m.IndexFlat(D_), lambda m: m.IndexFlatL2(D_), lambda m: m.IndexFlatIP(D_),
                 lambda m: m.IndexFlat1D(), lambda m: m.IndexPQ(D_, 6, 8),
                 lambda m: m.IndexScalarQuantizer(D_, 0), lambda m: m.IndexPQFastScan(D_, 6, 4),
                 lambda m: m.IndexHNSWFlat(D_, 16)):
        a, f = make(annvil), make(faiss)
        assert isinstance(a, annvil.IndexFlatCodes) == isinstance(f, faiss.IndexFlatCodes), type(a).__name__
    assert issubclass(annvil.IndexScalarQuantizer, annvil.IndexFlatCodes)
    assert annvil.IndexFlat(D_).code_size == faiss.IndexFlat(D_).code_size == 4 * D_
    with pytest.raises(TypeError):
        annvil.IndexFlatCodes()


@pytest.mark.parametrize("key", FLAT_CODES_KEYS)
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_flat_codes_merge_from(data, key, metric):
    xt, xb, xq = data
    whole = _trained(key, xt, metric)
    a, b = annvil.clone_index(whole), annvil.clone_index(whole)
    whole.add(xb)
    a.add(xb[:700])
    b.add(xb[700:])
    a.merge_from(b)
    assert a.ntotal == len(xb) and b.ntotal == 0
    np.testing.assert_array_equal(a.reconstruct_n(0, a.ntotal), whole.reconstruct_n(0, whole.ntotal))
    Da, Ia = a.search(xq, 7)
    Dw, Iw = whole.search(xq, 7)
    np.testing.assert_array_equal(Ia, Iw)
    np.testing.assert_allclose(Da, Dw, rtol=1e-5)
    b.add(xb[:3])  # the emptied index is usable
    assert b.ntotal == 3


@pytest.mark.parametrize("key", ["Flat", "SQ8"])
def test_flat_codes_merge_from_equals_faiss(data, key):
    xt, xb, _ = data
    out = []
    for lib in (annvil, faiss):
        a, b = lib.index_factory(D_, key), lib.index_factory(D_, key)
        a.train(xt)
        b.train(xt)
        a.add(xb[:500])
        b.add(xb[500:900])
        a.merge_from(b)
        out.append((a.ntotal, b.ntotal, lib.vector_to_array(a.codes).ravel()))
    assert out[0][:2] == out[1][:2]
    np.testing.assert_array_equal(out[0][2], out[1][2])


@pytest.mark.parametrize("key", FLAT_CODES_KEYS)
def test_flat_codes_merge_errors(data, key):
    xt, xb, _ = data
    a = _trained(key, xt)
    a.add(xb[:10])
    with pytest.raises(ValueError):
        a.merge_from(a)
    with pytest.raises(TypeError):
        a.merge_from(annvil.IndexIDMap(annvil.IndexFlatL2(D_)))
    if key != "Flat":  # trained on other data: the codes would decode differently
        other = _trained(key, xt[::-1].copy() * 3)
        other.add(xb[:5])
        with pytest.raises(ValueError):
            a.merge_from(other)
        assert a.ntotal == 10 and other.ntotal == 5
    b = annvil.clone_index(a)
    if key.endswith("fs"):  # Faiss's fast-scan accepts and ignores add_id
        a.merge_from(b, 5)
        assert a.ntotal == 20 and b.ntotal == 0
    else:
        with pytest.raises(ValueError):
            a.merge_from(b, 5)
        assert a.ntotal == 10 and b.ntotal == 10


@pytest.mark.parametrize("key", FLAT_CODES_KEYS)
def test_flat_codes_remove_ids_shifts(data, key):
    xt, xb, xq = data
    index = _trained(key, xt)
    index.add(xb[:300])
    before = index.reconstruct_n(0, 300)
    removed = np.r_[0, 5, 31, 32, 33, 150:170, 299].astype("int64")
    assert index.remove_ids(removed) == len(removed)
    keep = np.setdiff1d(np.arange(300), removed)
    assert index.ntotal == len(keep)
    np.testing.assert_array_equal(index.reconstruct_n(0, index.ntotal), before[keep])
    assert index.remove_ids(np.array([1000], "int64")) == 0  # nothing selected: nothing changes
    np.testing.assert_array_equal(index.reconstruct(3), before[keep[3]])
    # the search sees the compacted ids
    ref = _trained(key, xt)
    ref.add(before[keep] if key == "Flat" else xb[:300][keep])
    np.testing.assert_array_equal(index.search(xq, 5)[1], ref.search(xq, 5)[1])
    index.reset()
    assert index.ntotal == 0 and index.search(xq[:1], 2)[1].tolist() == [[-1, -1]]


@pytest.mark.parametrize("key", ["Flat", "SQ8", "SQfp16"])
def test_flat_codes_remove_ids_equals_faiss(data, key):
    xt, xb, _ = data
    out = []
    for lib in (annvil, faiss):
        index = lib.index_factory(D_, key)
        index.train(xt)
        index.add(xb[:200])
        n = index.remove_ids(lib.IDSelectorRange(20, 90))
        out.append((n, index.ntotal, lib.vector_to_array(index.codes).ravel()))
    assert out[0][:2] == out[1][:2]
    np.testing.assert_array_equal(out[0][2], out[1][2])


@pytest.mark.parametrize("key", FLAT_CODES_KEYS)
@pytest.mark.parametrize("n", [1, 11, 77])
def test_flat_codes_reconstruct_is_decode_of_encode(data, key, n):
    xt, xb, _ = data
    index = _trained(key, xt)
    index.add(xb[:100])
    codes = index.sa_encode(xb[:100])
    assert codes.shape == (100, index.sa_code_size())
    dec = index.sa_decode(codes)
    np.testing.assert_array_equal(index.reconstruct_n(13, n), dec[13:13 + n])
    np.testing.assert_array_equal(index.reconstruct(13 + n - 1), dec[13 + n - 1])
    np.testing.assert_array_equal(index.reconstruct_n(0, 0).shape, (0, D_))
    with pytest.raises(ValueError):
        index.reconstruct(100)
    with pytest.raises(ValueError):
        index.reconstruct_n(95, 10)
    if not key.endswith("fs"):  # fast-scan codes are packed by block, not rows
        np.testing.assert_array_equal(np.asarray(index.codes).reshape(100, -1), codes)


@pytest.mark.parametrize("key", [k for k in FLAT_CODES_KEYS if k != "Flat"])
def test_flat_codes_untrained_add_raises(data, key):
    xt, xb, _ = data
    index = annvil.index_factory(D_, key)
    assert not index.is_trained
    with pytest.raises(RuntimeError):
        index.add(xb[:3])
    with pytest.raises(RuntimeError):
        index.sa_encode(xb[:3])
    assert index.ntotal == 0


@pytest.mark.parametrize("key", FLAT_CODES_KEYS)
def test_flat_codes_mmap_copy_on_write(data, key, tmp_path):
    xt, xb, xq = data
    index = _trained(key, xt)
    index.add(xb[:400])
    path = str(tmp_path / "x.annvil")
    annvil.write_index(index, path)
    raw = open(path, "rb").read()
    mapped = annvil.read_index(path, mmap=True)
    assert isinstance(mapped, type(index))
    np.testing.assert_array_equal(mapped.search(xq, 5)[1], index.search(xq, 5)[1])
    assert mapped.remove_ids(np.arange(10, dtype="int64")) == 10
    mapped.add(xb[400:450])
    other = annvil.clone_index(index)
    mapped.merge_from(other)
    assert mapped.ntotal == 400 - 10 + 50 + 400
    np.testing.assert_array_equal(mapped.reconstruct_n(0, 390), index.reconstruct_n(10, 390))
    assert open(path, "rb").read() == raw  # the file is never written through the mapping


def test_flat_faiss_file_mmap_and_hnsw_storage(data, tmp_path):
    """Faiss files: the flat vectors (and HNSW-Flat's storage) are used in place."""
    _, xb, xq = data
    flat, hnsw = faiss.IndexFlatL2(D_), faiss.IndexHNSWFlat(D_, 16)
    flat.add(xb)
    hnsw.add(xb)
    faiss.write_index(flat, str(tmp_path / "flat.faiss"))
    faiss.write_index(hnsw, str(tmp_path / "hnsw.faiss"))
    for mmap in (False, True):
        m = annvil.read_index(str(tmp_path / "flat.faiss"), mmap=mmap)
        assert isinstance(m, annvil.IndexFlatL2) and m.code_size == 4 * D_
        np.testing.assert_array_equal(m.get_xb(), xb)
        np.testing.assert_array_equal(m.search(xq, 4)[1], flat.search(xq, 4)[1])
        h = annvil.read_index(str(tmp_path / "hnsw.faiss"), mmap=mmap)
        np.testing.assert_array_equal(h.reconstruct_n(0, len(xb)), xb)
        storage = h.storage  # a copy, as an IndexFlat (bind_hnsw.cpp)
        assert isinstance(storage, annvil.IndexFlat) and storage.ntotal == len(xb)
        np.testing.assert_array_equal(storage.get_xb(), xb)
