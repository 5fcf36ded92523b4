"""Binary indexes and Hamming utilities, checked against Faiss on the same
codes: exact search and range search, IVF, HNSW, hash indexes, the float
front, ids, files, factory strings, search parameters and bad input."""
import pickle

import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")


def codes(n, nbytes, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, nbytes), dtype=np.uint8)


def ref_dist(a, b):
    """Hamming distances by numpy: (len(a), len(b)) int32."""
    return np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=-1).sum(-1).astype(np.int32)


def assert_exact_knn(D, I, xq, xb, k):
    """D are the k smallest true distances (ties in any order); I points at codes with those distances."""
    full = ref_dist(xq, xb)
    assert D.dtype == np.int32 and I.dtype == np.int64
    kk = min(k, xb.shape[0])
    np.testing.assert_array_equal(D[:, :kk], np.sort(full, axis=1)[:, :kk])
    np.testing.assert_array_equal(np.take_along_axis(full, I[:, :kk], 1), D[:, :kk])
    assert np.all(I[:, kk:] == -1) and np.all(D[:, kk:] == np.iinfo(np.int32).max)


def simd_levels():
    best = annvil.detected_simd_level()
    return [lv for lv in ("scalar", "avx2", "avx512") if lv == "scalar" or lv == best or
            (lv == "avx2" and best == "avx512")]


@pytest.fixture(params=simd_levels())
def simd(request):
    old = annvil.simd_level()
    annvil.set_simd_level(request.param)
    yield request.param
    annvil.set_simd_level(old)


# ---- kernels and utilities --------------------------------------------------------------
@pytest.mark.parametrize("nbytes", [1, 3, 4, 8, 12, 16, 24, 32, 40, 64, 65, 128])
def test_pairwise_distances_match_numpy(simd, nbytes):
    a, b = codes(13, nbytes, 1), codes(300, nbytes, 2)
    np.testing.assert_array_equal(annvil.pairwise_hamming(a, b), ref_dist(a, b))


@pytest.mark.parametrize("nq", [1, 11, 77])
@pytest.mark.parametrize("nbytes", [4, 8, 16, 32, 64, 5])
def test_knn_hamming_against_faiss(simd, nq, nbytes):
    xb, xq = codes(3000, nbytes, 3), codes(nq, nbytes, 4)
    D, I = annvil.knn_hamming(xq, xb, 10)
    Df, If = faiss.knn_hamming(xq, xb, 10)
    np.testing.assert_array_equal(D, Df)
    assert_exact_knn(D, I, xq, xb, 10)


def test_hamming_pointer_utilities_against_faiss():
    a, b = codes(21, 16, 5), codes(90, 16, 6)
    for mod in (annvil, faiss):
        dis = np.empty((21, 90), np.int32)
        mod.hammings(mod.swig_ptr(a), mod.swig_ptr(b), 21, 90, 16, mod.swig_ptr(dis))
        np.testing.assert_array_equal(dis, ref_dist(a, b))
    full = ref_dist(a, b)
    counts = []
    for mod in (annvil, faiss):
        c = np.zeros(1, np.uint64)
        mod.hamming_count_thres(mod.swig_ptr(a), mod.swig_ptr(b), 21, 90, 56, 16, mod.swig_ptr(c))
        counts.append(int(c[0]))
        c = np.zeros(1, np.uint64)
        mod.crosshamming_count_thres(mod.swig_ptr(b), 90, 56, 16, mod.swig_ptr(c))
        counts.append(int(c[0]))
    assert counts[0] == counts[2] == int((full <= 56).sum()) > 0
    assert counts[1] == counts[3] > 0
    idx = np.empty(2 * counts[0], np.int64)
    dis = np.empty(counts[0], np.int32)
    got = annvil.match_hamming_thres(annvil.swig_ptr(a), annvil.swig_ptr(b), 21, 90, 56, 16,
                                     annvil.swig_ptr(idx), annvil.swig_ptr(dis))
    assert got == counts[0]
    assert set(zip(idx[0::2].tolist(), idx[1::2].tolist())) == set(zip(*np.nonzero(full <= 56)))
    np.testing.assert_array_equal(dis, full[idx[0::2], idx[1::2]])


def test_generalized_hammings_and_heap_form():
    a, b = codes(9, 8, 7) % 4, codes(60, 8, 8) % 4  # small alphabet: many equal bytes
    for fn in ("generalized_hammings_knn_hc", "hammings_knn_hc"):
        out = []
        for mod in (annvil, faiss):
            D = np.empty((9, 5), np.int32)
            I = np.empty((9, 5), np.int64)
            h = mod.int_maxheap_array_t()
            h.k, h.nh, h.ids, h.val = 5, 9, mod.swig_ptr(I), mod.swig_ptr(D)
            getattr(mod, fn)(h, mod.swig_ptr(a), mod.swig_ptr(b), 60, 8, True)
            out.append(D)
        np.testing.assert_array_equal(out[0], out[1])


def test_bitvec_shuffle_and_conversions_against_faiss():
    rs = np.random.RandomState(0)
    x = codes(50, 8, 9)
    order = rs.permutation(64)[:40].astype(np.int32)
    outs = []
    for mod in (annvil, faiss):
        y = np.empty((50, 5), np.uint8)
        mod.bitvec_shuffle(50, 64, 40, mod.swig_ptr(order), mod.swig_ptr(x), mod.swig_ptr(y))
        outs.append(y)
    np.testing.assert_array_equal(outs[0], outs[1])
    f = annvil.binary_to_real(x)
    assert f.shape == (50, 64) and set(np.unique(f)) == {-1.0, 1.0}
    np.testing.assert_array_equal(annvil.real_to_binary(f), x)
    v = rs.standard_normal(64).astype(np.float32)
    r1, r2 = np.empty(8, np.uint8), np.empty(8, np.uint8)
    annvil.real_to_binary(64, annvil.swig_ptr(v), annvil.swig_ptr(r1))
    faiss.real_to_binary(64, faiss.swig_ptr(v), faiss.swig_ptr(r2))
    np.testing.assert_array_equal(r1, r2)
    assert annvil.popcount64(0xF0F0) == faiss.popcount64(0xF0F0) == 8


# ---- flat ---------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [8, 32, 64, 128, 256, 512, 136])
def test_flat_search_against_faiss(d):
    xb, xq = codes(2000, d // 8, 10), codes(77, d // 8, 11)
    ours, ref = annvil.IndexBinaryFlat(d), faiss.IndexBinaryFlat(d)
    ours.add(xb)
    ref.add(xb)
    D, I = ours.search(xq, 7)
    Dr, Ir = ref.search(xq, 7)
    np.testing.assert_array_equal(D, Dr)
    assert_exact_knn(D, I, xq, xb, 7)
    assert ours.code_size == ref.code_size == d // 8 and ours.ntotal == 2000


def test_flat_padding_and_empty():
    ours = annvil.IndexBinaryFlat(32)
    D, I = ours.search(codes(3, 4, 0), 4)
    assert np.all(I == -1) and np.all(D == np.iinfo(np.int32).max)
    xb = codes(3, 4, 1)
    ours.add(xb)
    D, I = ours.search(codes(5, 4, 2), 6)
    assert_exact_knn(D, I, codes(5, 4, 2), xb, 6)


def test_flat_range_search_against_faiss():
    xb, xq = codes(3000, 8, 12), codes(40, 8, 13)
    ours, ref = annvil.IndexBinaryFlat(64), faiss.IndexBinaryFlat(64)
    ours.add(xb)
    ref.add(xb)
    for radius in (0, 20, 25, 64):
        lims, D, I = ours.range_search(xq, radius)
        lr, Dr, Ir = ref.range_search(xq, radius)
        np.testing.assert_array_equal(lims, lr)
        assert D.dtype == np.int32
        for q in range(40):
            got = dict(zip(I[lims[q]:lims[q + 1]].tolist(), D[lims[q]:lims[q + 1]].tolist()))
            exp = dict(zip(Ir[lr[q]:lr[q + 1]].tolist(), Dr[lr[q]:lr[q + 1]].tolist()))
            assert got == exp


def test_flat_reconstruct_remove_reset():
    xb = codes(100, 16, 14)
    ours, ref = annvil.IndexBinaryFlat(128), faiss.IndexBinaryFlat(128)
    ours.add(xb)
    ref.add(xb)
    np.testing.assert_array_equal(ours.reconstruct(17), xb[17])
    np.testing.assert_array_equal(ours.reconstruct_n(10, 5), xb[10:15])
    assert ours.remove_ids(np.arange(0, 100, 3)) == ref.remove_ids(np.arange(0, 100, 3).astype(np.int64))
    np.testing.assert_array_equal(ours.reconstruct_n(0, ours.ntotal), ref.reconstruct_n(0, ref.ntotal))
    np.testing.assert_array_equal(np.asarray(ours.xb).reshape(-1, 16), ours.reconstruct_n(0, ours.ntotal))
    ours.reset()
    assert ours.ntotal == 0


def test_selector_filters_flat_results():
    xb, xq = codes(500, 8, 15), codes(10, 8, 16)
    ours = annvil.IndexBinaryFlat(64)
    ours.add(xb)
    sel = annvil.IDSelectorRange(100, 200)
    D, I = ours.search(xq, 5, params=annvil.SearchParameters(sel=sel))
    assert np.all((I >= 100) & (I < 200))
    assert_exact_knn(D, I - 100, xq, xb[100:200], 5)


# ---- ids ----------------------------------------------------------------------------------
def test_idmap_and_idmap2_against_faiss():
    xb, xq = codes(300, 8, 17), codes(20, 8, 18)
    ids = np.random.default_rng(0).choice(10**6, 300, replace=False).astype(np.int64)
    for cls in ("IndexBinaryIDMap", "IndexBinaryIDMap2"):
        ours = getattr(annvil, cls)(annvil.IndexBinaryFlat(64))
        ref = getattr(faiss, cls)(faiss.IndexBinaryFlat(64))
        ours.add_with_ids(xb, ids)
        ref.add_with_ids(xb, ids)
        D, I = ours.search(xq, 5)
        Dr, Ir = ref.search(xq, 5)
        np.testing.assert_array_equal(D, Dr)
        row = {int(v): i for i, v in enumerate(ids)}
        rows = np.vectorize(row.__getitem__)(I)
        np.testing.assert_array_equal(np.take_along_axis(ref_dist(xq, xb), rows, 1), D)
        assert ours.remove_ids(ids[:50]) == 50 and ours.ntotal == 250
        D2, I2 = ours.search(xq, 5)
        assert not set(I2.ravel()) & set(ids[:50])
        if cls == "IndexBinaryIDMap2":
            np.testing.assert_array_equal(ours.reconstruct(int(ids[123])), xb[123])
    with pytest.raises(RuntimeError):
        annvil.IndexBinaryIDMap(annvil.IndexBinaryFlat(64)).add(xb)


# ---- IVF ----------------------------------------------------------------------------------
def make_ivf(mod, d, nlist, xt, quantizer=None):
    q = quantizer if quantizer is not None else mod.IndexBinaryFlat(d)
    index = mod.IndexBinaryIVF(q, d, nlist)
    index.cp.min_points_per_centroid = 5
    index.train(xt)
    return index


def test_ivf_exhaustive_equals_flat_and_recall_like_faiss():
    d = 64
    xt, xb, xq = codes(2000, 8, 20), codes(3000, 8, 21), codes(100, 8, 22)
    ours, ref = make_ivf(annvil, d, 16, xt), make_ivf(faiss, d, 16, xt)
    assert ours.is_trained and ours.quantizer.ntotal == 16
    ours.add(xb)
    ref.add(xb)
    flat = faiss.IndexBinaryFlat(d)
    flat.add(xb)
    Dgt, Igt = flat.search(xq, 10)
    ours.nprobe = 16
    D, I = ours.search(xq, 10)
    np.testing.assert_array_equal(D, Dgt)
    lims, Dr, Ir = ours.range_search(xq, 24)
    lf, Df, If = flat.range_search(xq, 24)
    np.testing.assert_array_equal(lims, lf)
    ours.nprobe = ref.nprobe = 4
    r_ours = np.mean([len(set(a) & set(b)) for a, b in zip(ours.search(xq, 10)[1], Igt)])
    r_ref = np.mean([len(set(a) & set(b)) for a, b in zip(ref.search(xq, 10)[1], Igt)])
    assert r_ours >= 0.8 * r_ref


def test_ivf_untrained_and_small_training_raise():
    index = annvil.IndexBinaryIVF(annvil.IndexBinaryFlat(32), 32, 8)
    assert not index.is_trained
    with pytest.raises(annvil.NotTrainedError):
        index.add(codes(10, 4, 0))
    with pytest.raises(annvil.NotTrainedError):
        index.search(codes(1, 4, 0), 1)
    with pytest.raises(ValueError):
        index.train(codes(4, 4, 0))
    assert not index.is_trained and index.quantizer.ntotal == 0


def test_ivf_direct_map_reconstruct_and_remove():
    d = 32
    xt, xb = codes(500, 4, 23), codes(800, 4, 24)
    index = make_ivf(annvil, d, 8, xt)
    index.add(xb)
    index.make_direct_map()
    for i in (0, 13, 799):
        np.testing.assert_array_equal(index.reconstruct(i), xb[i])
    np.testing.assert_array_equal(index.reconstruct_n(100, 20), xb[100:120])
    index2 = annvil.IndexBinaryIVF(index.quantizer, d, 8)
    ids = np.arange(800, dtype=np.int64) * 7 + 3
    index2.add_with_ids(xb, ids)
    index2.set_direct_map_type(annvil.DirectMap.Hashtable)
    np.testing.assert_array_equal(index2.reconstruct(int(ids[5])), xb[5])
    assert index2.remove_ids(ids[:100]) == 100 and index2.ntotal == 700
    with pytest.raises(ValueError):
        index2.reconstruct(int(ids[0]))
    assert sum(index2.get_list_size(l) for l in range(8)) == 700


def test_ivf_search_parameters_and_stats():
    d = 64
    xb, xq = codes(1000, 8, 25), codes(20, 8, 26)
    index = make_ivf(annvil, d, 32, xb)
    index.add(xb)
    D1, I1 = index.search(xq, 5, params=annvil.SearchParametersIVF(nprobe=3))
    index.nprobe = 3
    D2, I2 = index.search(xq, 5)
    np.testing.assert_array_equal(D1, D2)
    np.testing.assert_array_equal(I1, I2)
    stats = annvil.cvar.indexIVF_stats
    stats.reset()
    index.search(xq[:1], 5, params=annvil.SearchParametersIVF(nprobe=8, max_codes=40))
    assert 0 < stats.ndis <= 40 and stats.nq == 1


def test_ivf_hnsw_quantizer_params():
    d = 64
    xb, xq = codes(1000, 8, 27), codes(20, 8, 28)
    index = make_ivf(annvil, d, 32, xb, annvil.IndexBinaryHNSW(d, 16))
    index.add(xb)
    p = annvil.SearchParametersIVF(nprobe=10, quantizer_params=annvil.SearchParametersHNSW(efSearch=10))
    D1, I1 = index.search(xq, 5, params=p)
    index.nprobe = 10
    index.quantizer.hnsw.efSearch = 10
    D2, I2 = index.search(xq, 5)
    np.testing.assert_array_equal(I1, I2)
    ps = annvil.ParameterSpace()
    ps.set_index_parameter(index, "quantizer_efSearch", 24)
    assert index.quantizer.hnsw.efSearch == 24


def test_ivf_from_float_quantizer_equals_binary_quantizer():
    d = 128
    xt, xb, xq = codes(600, 16, 29), codes(2000, 16, 30), codes(50, 16, 31)
    a = make_ivf(annvil, d, 16, xt)
    b = make_ivf(annvil, d, 16, xt, annvil.IndexBinaryFromFloat(annvil.IndexFlatL2(d)))
    a.add(xb)
    b.add(xb)
    np.testing.assert_array_equal(a.search(xq, 10)[0], b.search(xq, 10)[0])


# ---- HNSW ---------------------------------------------------------------------------------
def test_hnsw_exact_distances_and_recall_like_faiss():
    d = 64
    xb, xq = codes(3000, 8, 32), codes(100, 8, 33)
    ours, ref = annvil.IndexBinaryHNSW(d, 16), faiss.IndexBinaryHNSW(d, 16)
    ours.add(xb)
    ref.add(xb)
    D, I = ours.search(xq, 10)
    np.testing.assert_array_equal(np.take_along_axis(ref_dist(xq, xb), I, 1), D)
    flat = faiss.IndexBinaryFlat(d)
    flat.add(xb)
    _, Igt = flat.search(xq, 10)
    rec = lambda I: np.mean([len(set(a) & set(b)) for a, b in zip(I, Igt)])  # noqa: E731
    for ef in (16, 64):
        ours.hnsw.efSearch = ref.hnsw.efSearch = ef
        assert rec(ours.search(xq, 10)[1]) >= rec(ref.search(xq, 10)[1]) - 0.5
    D1, I1 = ours.search(xq, 10, params=annvil.SearchParametersHNSW(efSearch=4))
    assert not np.array_equal(I1, ours.search(xq, 10)[1])


def test_hnsw_same_graph_as_float_hnsw_over_pm1():
    xb, xq = codes(800, 4, 34), codes(50, 4, 35)
    n = annvil.omp_get_max_threads()
    annvil.omp_set_num_threads(1)
    try:
        a = annvil.IndexBinaryHNSW(32, 16)
        b = annvil.IndexBinaryFromFloat(annvil.IndexHNSWFlat(32, 16))
        a.add(xb)
        b.add(xb)
    finally:
        annvil.omp_set_num_threads(n)
    np.testing.assert_array_equal(a.search(xq, 5)[0], b.search(xq, 5)[0])


def test_from_float_reports_quarter_l2():
    d = 256
    xb, xq = codes(500, 32, 36), codes(20, 32, 37)
    index = annvil.IndexBinaryFromFloat(annvil.IndexFlatL2(d))
    index.add(xb)
    D, I = index.search(xq, 10)
    assert_exact_knn(D, I, xq, xb, 10)


# ---- hashes -------------------------------------------------------------------------------
@pytest.mark.parametrize("nflip", [0, 1, 3])
def test_hash_results_equal_faiss(nflip):
    d = 128
    xb, xq = codes(3000, 16, 38), codes(30, 16, 39)
    for args in ((d, 10), (d, 3, 8)):
        cls = "IndexBinaryHash" if len(args) == 2 else "IndexBinaryMultiHash"
        ours, ref = getattr(annvil, cls)(*args), getattr(faiss, cls)(*args)
        ours.add(xb)
        ref.add(xb)
        ours.nflip = ref.nflip = nflip
        lims, D, I = ours.range_search(xq, 50)
        lr, Dr, Ir = ref.range_search(xq, 50)
        np.testing.assert_array_equal(lims, lr)
        for q in range(30):
            assert set(I[lims[q]:lims[q + 1]]) == set(Ir[lr[q]:lr[q + 1]])
        D, I = ours.search(xq, 5)
        Dr, Ir = ref.search(xq, 5)
        np.testing.assert_array_equal(D, Dr)
        assert np.all(np.diff(D, axis=1) >= 0)


def test_hash_stats_and_all_flips_is_exact():
    d = 64
    xb, xq = codes(1000, 8, 40), codes(10, 8, 41)
    index = annvil.IndexBinaryHash(d, 6)
    index.add(xb)
    index.nflip = 6
    stats = annvil.cvar.indexBinaryHash_stats
    stats.reset()
    D, I = index.search(xq, 5)
    assert stats.nq == 10 and stats.ndis == 10 * 1000 and stats.n0 == 10 * 64
    assert_exact_knn(D, I, xq, xb, 5)


# ---- files, pickling, cloning -----------------------------------------------------------------
def built_indexes():
    d = 64
    xt, xb = codes(500, 8, 42), codes(800, 8, 43)
    out = []
    flat = annvil.IndexBinaryFlat(d)
    out.append(flat)
    out.append(make_ivf(annvil, d, 8, xt))
    out.append(make_ivf(annvil, d, 8, xt, annvil.IndexBinaryHNSW(d, 8)))
    out.append(annvil.IndexBinaryHNSW(d, 12))
    out.append(annvil.IndexBinaryHash(d, 8))
    out.append(annvil.IndexBinaryMultiHash(d, 2, 8))
    out.append(annvil.IndexBinaryFromFloat(annvil.IndexHNSWFlat(d, 8)))
    for index in out:
        index.add(xb)
    idm = annvil.IndexBinaryIDMap2(annvil.IndexBinaryFlat(d))
    idm.add_with_ids(xb, np.arange(800, dtype=np.int64) * 3)
    out.append(idm)
    return out


def test_serialize_roundtrip_every_type(tmp_path):
    xq = codes(30, 8, 44)
    for k, index in enumerate(built_indexes()):
        D, I = index.search(xq, 4)
        for copy in (annvil.deserialize_index_binary(annvil.serialize_index_binary(index)),
                     annvil.clone_binary_index(index), pickle.loads(pickle.dumps(index))):
            assert type(copy) is type(index)
            D2, I2 = copy.search(xq, 4)
            np.testing.assert_array_equal(D, D2)
            np.testing.assert_array_equal(I, I2)
        path = str(tmp_path / f"b{k}.index")
        annvil.write_index_binary(index, path)
        for mm in (False, True):
            back = annvil.read_index_binary(path, mmap=mm)
            np.testing.assert_array_equal(back.search(xq, 4)[1], I)


def test_file_errors():
    data = annvil.serialize_index_binary(annvil.IndexBinaryFlat(32))
    with pytest.raises(annvil.IndexFileError):
        annvil.deserialize_index_binary(data[:-3])
    bad = data.copy()
    bad[80] ^= 0xFF
    with pytest.raises(annvil.IndexFileError):
        annvil.deserialize_index_binary(bad)
    with pytest.raises(annvil.IndexFileError):  # a float index is not a binary one
        annvil.deserialize_index_binary(annvil.serialize_index(annvil.IndexFlatL2(8)))
    with pytest.raises(annvil.IndexFileError):
        annvil.deserialize_index(data)


# ---- factory and bad input ----------------------------------------------------------------
def test_factory():
    f = annvil.index_binary_factory
    assert isinstance(f(16, "BFlat"), annvil.IndexBinaryFlat)
    ivf = f(16, "BIVF10")
    assert ivf.nlist == 10 and ivf.code_size == 2 and isinstance(ivf.quantizer, annvil.IndexBinaryFlat)
    ih = f(256, "BIVF1024_BHNSW32")
    assert ih.nlist == 1024 and isinstance(ih.quantizer, annvil.IndexBinaryHNSW)
    assert isinstance(f(256, "BIVF64_HNSW16").quantizer, annvil.IndexBinaryHNSW)
    assert f(256, "BHNSW32").hnsw.M == 32
    assert f(256, "BHash12").b == 12
    mh = f(256, "BHash5x6")
    assert (mh.nhash, mh.b) == (5, 6)
    for desc in ("IDMap2,BFlat", "BFlat,IDMap2"):
        assert isinstance(f(16, desc), annvil.IndexBinaryIDMap2)
    assert type(f(16, "IDMap,BFlat")) is annvil.IndexBinaryIDMap
    for bad in ("BPQ8", "Flat", "BIVFx"):
        with pytest.raises(ValueError):
            f(16, bad)
    with pytest.raises(ValueError):
        f(12, "BFlat")


def test_bad_input_raises_and_leaves_index_unchanged():
    with pytest.raises(ValueError):
        annvil.IndexBinaryFlat(12)
    with pytest.raises(ValueError):
        annvil.IndexBinaryFlat(0)
    index = annvil.IndexBinaryFlat(32)
    index.add(codes(10, 4, 0))
    with pytest.raises(TypeError):
        index.add(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError):
        index.add(codes(3, 5, 0))
    with pytest.raises(ValueError):
        index.add(np.full((2, 4), 300))
    with pytest.raises(ValueError):
        index.search(codes(3, 8, 0), 2)
    with pytest.raises(ValueError):
        index.search(codes(3, 4, 0), 0)
    with pytest.raises(ValueError):
        index.reconstruct(10)
    with pytest.raises(AttributeError):
        index.nprob = 3
    assert index.ntotal == 10
    index.add(np.arange(8).reshape(2, 4))  # integer arrays within [0, 255] are converted
    assert index.ntotal == 12
    with pytest.raises(ValueError):
        annvil.IndexBinaryIVF(annvil.IndexBinaryFlat(32), 64, 4)
    with pytest.raises(ValueError):
        annvil.IndexBinaryHash(32, 40)
    with pytest.raises(ValueError):
        annvil.IndexBinaryMultiHash(32, 5, 8)


def test_shards_and_replicas():
    xb, xq = codes(200, 4, 45), codes(30, 4, 46)
    ref = annvil.IndexBinaryFlat(32)
    ref.add(xb)
    Dref, Iref = ref.search(xq, 10)
    shards = annvil.IndexBinaryShards(32)
    for _ in range(4):
        shards.add_shard(annvil.IndexBinaryFlat(32))
    shards.add(xb)
    D, I = shards.search(xq, 10)
    np.testing.assert_array_equal(D, Dref)
    rep = annvil.IndexBinaryReplicas(False)
    for _ in range(3):
        sub = annvil.IndexBinaryFlat(32)
        sub.add(xb)
        rep.addIndex(sub)
    D, I = rep.search(xq, 10)
    np.testing.assert_array_equal(D, Dref)
    np.testing.assert_array_equal(I, Iref)
    assert rep.code_size == 4 and rep.ntotal == 200


@pytest.mark.parametrize("hnsw", [False, True])
@pytest.mark.parametrize("generate_ids", [False, True])
def test_shard_binary_ivf_index_centroids(tmp_path, hnsw, generate_ids):
    d = 32
    cent = codes(60, 4, 47)
    q = annvil.IndexBinaryHNSW(d, 8) if hnsw else annvil.IndexBinaryFlat(d)
    index = annvil.IndexBinaryIVF(q, d, 60)
    index.quantizer.add(cent)
    template = str(tmp_path / "s%d.index")
    annvil.shard_binary_ivf_index_centroids(index, 7, template, None, generate_ids)
    seen = 0
    for j in range(7):
        shard = annvil.read_index_binary(template % j)
        mine = np.arange(j, 60, 7)
        seen += len(mine)
        for pos, i in enumerate(mine):
            got = shard.quantizer.reconstruct(int(i) if generate_ids else pos)
            np.testing.assert_array_equal(got, cent[i])
    assert seen == 60
