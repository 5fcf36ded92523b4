"""Faiss's module-level API (random data, heaps, pointers, clustering, IO
streams, strict attributes, result padding), with faiss-cpu as the oracle."""
import io
import os
import threading

import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")

FLT_MAX = np.finfo(np.float32).max


# ---- random data: Faiss's generator, value for value --------------------------------------
@pytest.mark.parametrize("n", [1, 7, 1023, 1024, 1025, 5000])
@pytest.mark.parametrize("seed", [0, 1234, -3, 2**40 + 5])
def test_random_values_equal_faiss(n, seed):
    np.testing.assert_array_equal(annvil.rand(n, seed), faiss.rand(n, seed))
    np.testing.assert_array_equal(annvil.randn(n, seed), faiss.randn(n, seed))
    np.testing.assert_array_equal(annvil.randint(n, seed), faiss.randint(n, seed))
    np.testing.assert_array_equal(annvil.randint(n, seed, vmax=97), faiss.randint(n, seed, vmax=97))


def test_random_shapes_and_smooth_vectors():
    a = annvil.randn((3, 17), 5)
    assert a.shape == (3, 17) and a.dtype == np.float32
    np.testing.assert_array_equal(a, faiss.randn((3, 17), 5))
    assert annvil.randint((4, 2), vmax=3).dtype == np.int64
    x, ref = annvil.rand_smooth_vectors(300, 33, seed=9), faiss.rand_smooth_vectors(300, 33, seed=9)
    np.testing.assert_allclose(x, ref, atol=1e-5)  # a float sum of 10 terms, order may differ
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.randint(5, vmax=0)
    with pytest.raises(annvil.InvalidTypeError):
        annvil.rand(5, seed=1.5)


def test_pointer_forms_of_random_functions():
    x = np.zeros(2000, np.float32)
    annvil.float_randn(annvil.swig_ptr(x), x.size, 42)
    np.testing.assert_array_equal(x, faiss.randn(2000, 42))
    p = np.zeros(50, np.int32)
    annvil.rand_perm(annvil.swig_ptr(p), 50, 3)
    ref = np.zeros(50, np.int32)
    faiss.rand_perm(faiss.swig_ptr(ref), 50, 3)
    np.testing.assert_array_equal(p, ref)


# ---- top-k and result heaps -------------------------------------------------------------
@pytest.mark.parametrize("shape,k", [((1, 1), 1), ((13, 97), 10), ((5, 3), 8)])
def test_kmin_kmax_equal_faiss(shape, k):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for ours, ref in ((annvil.kmin, faiss.kmin), (annvil.kmax, faiss.kmax)):
        D, I = ours(x, k)
        Dr, Ir = ref(x, k)
        np.testing.assert_array_equal(D, Dr)
        np.testing.assert_array_equal(I, Ir)


@pytest.mark.parametrize("keep_max", [False, True])
def test_result_heap_equals_faiss(keep_max):
    rng = np.random.default_rng(1)
    nq, nb, k = 11, 300, 7
    D = rng.standard_normal((nq, nb)).astype(np.float32)
    I = rng.permutation(nq * nb).reshape(nq, nb).astype(np.int64)
    ours, ref = annvil.ResultHeap(nq, k, keep_max=keep_max), faiss.ResultHeap(nq, k, keep_max=keep_max)
    for i0 in range(0, nb, 77):
        ours.add_result(D[:, i0:i0 + 77], I[:, i0:i0 + 77])
        ref.add_result(D[:, i0:i0 + 77], I[:, i0:i0 + 77])
    sub = np.array([2, 5, 2])
    ours.add_result_subset(sub, D[:3, :4] * 3, I[:3, :4] + 10**6)
    ref.add_result_subset(sub, D[:3, :4] * 3, I[:3, :4] + 10**6)
    ours.finalize()
    ref.finalize()
    np.testing.assert_array_equal(ours.D, ref.D)
    np.testing.assert_array_equal(ours.I, ref.I)


def test_result_heap_pads_like_faiss():
    ours, ref = annvil.ResultHeap(2, 5), faiss.ResultHeap(2, 5)
    for h in (ours, ref):
        h.add_result(np.ones((2, 2), np.float32), np.arange(4).reshape(2, 2))
        h.finalize()
    np.testing.assert_array_equal(ours.D, ref.D)
    np.testing.assert_array_equal(ours.I, ref.I)


@pytest.mark.parametrize("dtype", ["float32", "int32"])
@pytest.mark.parametrize("keep_max", [False, True])
def test_merge_knn_results_equals_faiss(dtype, keep_max):
    rng = np.random.default_rng(2)
    nshard, n, k = 4, 9, 6
    D = rng.integers(0, 1000, (nshard, n, k)).astype(dtype) if dtype == "int32" else \
        rng.standard_normal((nshard, n, k)).astype(dtype)
    D.sort(axis=2)
    if keep_max:
        D = np.ascontiguousarray(D[:, :, ::-1])
    I = rng.integers(0, 10**6, (nshard, n, k)).astype(np.int64)
    I[1, 0, 3:] = -1  # a shard with fewer results
    ours = annvil.merge_knn_results(D, I, keep_max=keep_max)
    ref = faiss.merge_knn_results(D, I, keep_max=keep_max)
    np.testing.assert_array_equal(ours[0], ref[0])
    # equal values may come from either shard: compare the (value, id) multisets
    for q in range(n):
        assert sorted(zip(ours[0][q], ours[1][q])) == sorted(zip(ref[0][q], ref[1][q]))


def test_ranklist_intersection_and_eval():
    a = np.array([5, 3, -1, 3, 2**61, 9], np.int64)
    b = np.array([3, 3, 2**61, -1, 7], np.int64)
    assert annvil.ranklist_intersection_size(len(a), annvil.swig_ptr(a), len(b), annvil.swig_ptr(b)) == \
        faiss.ranklist_intersection_size(len(a), faiss.swig_ptr(a), len(b), faiss.swig_ptr(b)) == 2
    rng = np.random.default_rng(3)
    I1, I2 = rng.integers(0, 30, (20, 10)), rng.integers(0, 30, (20, 10))
    assert annvil.eval_intersection(I1, I2) == faiss.eval_intersection(I1, I2)


def test_imbalance_factor_equals_faiss():
    assign = np.random.default_rng(4).integers(0, 17, 1000).astype(np.int64)
    ref = faiss.imbalance_factor(len(assign), 17, faiss.swig_ptr(assign))
    assert annvil.imbalance_factor(len(assign), 17, annvil.swig_ptr(assign)) == pytest.approx(ref)
    assert annvil.imbalance_factor(17, assign) == pytest.approx(ref)


def test_matrix_stats_report():
    rng = np.random.default_rng(5)
    m = rng.random((40, 20)).astype(np.float32)
    m[:, 2] = 1.5
    m[3:7] = 0
    ours, ref = annvil.MatrixStats(m), faiss.MatrixStats(m)
    for phrase in ("has 4 copies", "4 null vectors", "37 vectors are distinct", "no constant dimensions"):
        assert phrase in ours.comments and phrase in ref.comments
    assert ours.n0 == ref.n0 == 4 and ours.n_valid == ref.n_valid
    assert annvil.MatrixStats(m).hash_value == ours.hash_value


# ---- pointer-level helpers --------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 3, 17, 97])
def test_vector_functions_take_pointers(d):
    rng = np.random.default_rng(d)
    a, b = rng.random(d).astype(np.float32), rng.random(d).astype(np.float32)
    c, cr = np.zeros(d, np.float32), np.zeros(d, np.float32)
    i = annvil.fvec_madd_and_argmin(d, annvil.swig_ptr(a), -0.7, annvil.swig_ptr(b), annvil.swig_ptr(c))
    ir = faiss.fvec_madd_and_argmin(d, faiss.swig_ptr(a), -0.7, faiss.swig_ptr(b), faiss.swig_ptr(cr))
    assert i == ir
    np.testing.assert_allclose(c, cr, rtol=1e-6)
    y = rng.random((11, d)).astype(np.float32)
    out, ref = np.zeros(11, np.float32), np.zeros(11, np.float32)
    annvil.fvec_L2sqr_ny(annvil.swig_ptr(out), annvil.swig_ptr(a), annvil.swig_ptr(y), d, 11)
    faiss.fvec_L2sqr_ny(faiss.swig_ptr(ref), faiss.swig_ptr(a), faiss.swig_ptr(y), d, 11)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    ix, iy = np.array([0, 0, 0], np.int64), np.array([10, 3, 0], np.int64)
    dis, disr = np.zeros(3, np.float32), np.zeros(3, np.float32)
    x1 = a.reshape(1, d)
    annvil.pairwise_indexed_inner_product(d, 3, annvil.swig_ptr(x1), annvil.swig_ptr(ix), annvil.swig_ptr(y),
                                          annvil.swig_ptr(iy), annvil.swig_ptr(dis))
    faiss.pairwise_indexed_inner_product(d, 3, faiss.swig_ptr(x1), faiss.swig_ptr(ix), faiss.swig_ptr(y),
                                         faiss.swig_ptr(iy), faiss.swig_ptr(disr))
    np.testing.assert_allclose(dis, disr, rtol=1e-5)


def test_pointer_checks():
    a = np.zeros(4, np.float32)
    with pytest.raises(annvil.InvalidArgumentError, match="holds 4"):
        annvil.fvec_madd(5, annvil.swig_ptr(a), 1.0, annvil.swig_ptr(a), annvil.swig_ptr(a))
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.swig_ptr(np.zeros((4, 4), np.float32)[:, 1])
    with pytest.raises(annvil.InvalidTypeError):
        annvil.swig_ptr([1, 2])
    p = annvil.swig_ptr(np.arange(10, dtype=np.int64))
    np.testing.assert_array_equal(annvil.rev_swig_ptr(p, 3), [0, 1, 2])
    assert int(p) == p.array.ctypes.data


def test_vectors():
    v = annvil.Float32Vector()
    annvil.copy_array_to_vector(np.arange(5, dtype=np.float32), v)
    assert v.size() == 5 and v.at(4) == 4
    v.push_back(7)
    np.testing.assert_array_equal(annvil.vector_to_array(v), [0, 1, 2, 3, 4, 7])
    dst = np.zeros(3, np.float32)
    annvil.copy_array_to_vector(np.ones(3, np.float32), dst)
    assert dst.sum() == 3
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.copy_array_to_vector(np.ones(4, np.float32), dst)


# ---- clone, extract, attributes ------------------------------------------------------------
def test_clone_index_is_deep():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((500, 12)).astype(np.float32)
    ix = annvil.index_factory(12, "IVF8,Flat")
    ix.train(x)
    ix.add(x)
    c = annvil.clone_index(ix)
    assert type(c) is type(ix) and c.ntotal == 500 and c.nprobe == ix.nprobe
    np.testing.assert_array_equal(c.search(x[:5], 3)[1], ix.search(x[:5], 3)[1])
    c.add(x[:10])
    assert ix.ntotal == 500 and c.ntotal == 510
    with pytest.raises(annvil.InvalidTypeError):
        annvil.clone_index("not an index")


def test_extract_index_ivf_through_wrappers():
    for s in ("IVF4,Flat", "IDMap,IVF4,Flat", "IVF4,Flat,IDMap2", "L2norm,IVF4,Flat", "IVF4,PQ4,RFlat",
              "OPQ4,IVF4,PQ4,Refine(Flat)"):
        ix = annvil.index_factory(16, s)
        assert isinstance(annvil.extract_index_ivf(ix), annvil.IndexIVF), s
    assert annvil.try_extract_index_ivf(annvil.IndexFlatL2(4)) is None
    with pytest.raises(RuntimeError):
        annvil.extract_index_ivf(annvil.IndexFlatL2(4))


def test_unknown_attributes_raise():
    ix = annvil.index_factory(8, "IVF4,Flat")
    with pytest.raises(AttributeError, match="nprob"):
        ix.nprob = 3
    ix.nprobe = 3
    assert ix.nprobe == 3
    with pytest.raises(AttributeError):
        annvil.SearchParametersIVF().nprob = 2
    with pytest.raises(AttributeError):
        annvil.IndexFlatL2(4).foo = 1
    ix.referenced_objects = [1]  # Faiss's own keep-alive name is allowed
    ix._private = 1               # annvil's Python layer
    # SWIG ownership calls are harmless
    ix.this.disown()
    ix.own_fields = False
    assert ix.own_fields is False and ix.thisown


def test_search_parameters_keep_their_objects():
    import sys
    sel = annvil.IDSelectorBatch(np.arange(5))
    before = sys.getrefcount(sel)
    p = annvil.SearchParametersIVF()
    p.sel = sel
    assert sys.getrefcount(sel) == before + 1
    p.sel = None
    assert sys.getrefcount(sel) == before
    p2 = annvil.SearchParameters(sel=sel)
    assert sys.getrefcount(sel) == before + 1
    del p2
    assert sys.getrefcount(sel) == before


def test_metric_type_settable_before_training():
    q = annvil.IndexFlatIP(8)
    ix = annvil.IndexIVFFlat(q, 8, 4)
    ix.metric_type = annvil.METRIC_INNER_PRODUCT
    assert ix.metric_type == annvil.METRIC_INNER_PRODUCT
    with pytest.raises(annvil.InvalidArgumentError, match="before the index is trained"):
        annvil.IndexFlatL2(8).metric_type = annvil.METRIC_INNER_PRODUCT


# ---- Faiss's result conventions ---------------------------------------------------------------
@pytest.mark.parametrize("s", ["Flat", "IVF4,Flat", "HNSW8", "PQ4", "IVF4,PQ4", "IVF4,SQ8", "IDMap,Flat"])
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_missing_results_padded_like_faiss(s, metric):
    rng = np.random.default_rng(7)
    xt = rng.standard_normal((300, 8)).astype(np.float32)
    xb = xt[:5]
    res = []
    for mod in (annvil, faiss):
        ix = mod.index_factory(8, s, metric)
        ix.train(xt)
        if s.startswith("IDMap"):
            ix.add_with_ids(xb, np.arange(5) + 100)
        else:
            ix.add(xb)
        if hasattr(ix, "nprobe"):
            ix.nprobe = 4
        res.append(ix.search(xb[:3], 9))
    (D, I), (Dr, Ir) = res
    np.testing.assert_array_equal(I < 0, Ir < 0)
    np.testing.assert_array_equal(D[I < 0], Dr[Ir < 0])
    assert (np.abs(D[I < 0]) == FLT_MAX).all()


def test_bad_k_is_also_an_assertion_error():
    ix = annvil.IndexFlatL2(4)
    ix.add(np.zeros((3, 4), np.float32))
    for k in (0, -5):
        with pytest.raises(AssertionError):
            ix.search(np.zeros((1, 4), np.float32), k)
        with pytest.raises(ValueError):
            ix.search(np.zeros((1, 4), np.float32), k)


# ---- write_index / read_index on streams ------------------------------------------------------
def _small_index():
    ix = annvil.IndexFlatL2(6)
    ix.add(np.random.default_rng(8).standard_normal((40, 6)).astype(np.float32))
    return ix


def test_callback_writer_reader_round_trip():
    ix = _small_index()
    buf = io.BytesIO()
    annvil.write_index(ix, annvil.PyCallbackIOWriter(buf.write, 7))
    annvil.write_index(ix, annvil.PyCallbackIOWriter(buf.write))  # two indexes in one stream
    assert buf.getvalue() == annvil.serialize_index(ix).tobytes() * 2
    buf.seek(0)
    r = annvil.PyCallbackIOReader(buf.read, 13)
    a, b = annvil.read_index(r), annvil.read_index(annvil.BufferedIOReader(r, 5))
    for c in (a, b):
        np.testing.assert_array_equal(c.reconstruct_n(0, 40), ix.reconstruct_n(0, 40))
    with pytest.raises(TypeError):
        annvil.write_index(ix, annvil.PyCallbackIOWriter("not callable"))


def test_file_objects_vectors_and_pipes(tmp_path):
    ix = _small_index()
    with open(tmp_path / "a.idx", "wb") as f:
        annvil.write_index(ix, f)
    with open(tmp_path / "a.idx", "rb") as f:
        assert annvil.read_index(f).ntotal == 40
    w = annvil.VectorIOWriter()
    annvil.write_index(ix, w)
    r = annvil.VectorIOReader()
    annvil.copy_array_to_vector(annvil.vector_to_array(w.data), r.data)
    assert annvil.read_index(r).ntotal == 40
    rf, wf = os.pipe()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("ix", annvil.read_index(
        annvil.PyCallbackIOReader(lambda n: os.read(rf, n)))))
    t.start()
    annvil.write_index(ix, annvil.PyCallbackIOWriter(lambda b: os.write(wf, b)))
    t.join(10)
    os.close(wf)
    os.close(rf)
    assert out["ix"].ntotal == 40
    with pytest.raises(annvil.IndexFileError):
        annvil.read_index(io.BytesIO(annvil.serialize_index(ix).tobytes()[:100]))


# ---- clustering -----------------------------------------------------------------------------
def test_clustering_class_like_faiss():
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((3000, 16)) + 4 * rng.integers(0, 3, (3000, 1))).astype(np.float32)
    res = {}
    for mod in (annvil, faiss):
        clus = mod.Clustering(16, 20)
        clus.niter = 15
        clus.seed = 3
        index = mod.IndexFlatL2(16)
        clus.train(x, index)
        stats = clus.iteration_stats
        objs = [stats.at(i).obj for i in range(stats.size())]
        cent = mod.vector_to_array(clus.centroids).reshape(20, 16)
        assert index.ntotal == 20
        res[mod.__name__] = (objs, index.search(x, 1)[0].sum())
    objs, err = res["annvil"]
    assert all(a >= b for a, b in zip(objs, objs[1:]))
    assert err <= res["faiss"][1] * 1.02
    assert cent.shape == (20, 16)


def test_clustering_parameters_have_faiss_fields():
    ours, ref = annvil.ClusteringParameters(), faiss.ClusteringParameters()
    fields = [a for a in dir(ref) if not a.startswith("_") and a not in ("this", "thisown")]
    for f in fields:
        assert getattr(ours, f) == getattr(ref, f), f
    ivf = annvil.index_factory(8, "IVF4,PQ4")
    ivf.cp.min_points_per_centroid = 5
    assert ivf.cp.min_points_per_centroid == 5
    ivf.pq.cp.niter = 3
    assert ivf.pq.cp.niter == 3
    with pytest.raises(AttributeError):
        ivf.cp.not_a_field = 1


def test_weighted_clustering_pulls_centroids():
    rng = np.random.default_rng(10)
    a = rng.standard_normal((500, 4)).astype(np.float32)
    b = (rng.standard_normal((20, 4)) + 20).astype(np.float32)
    x = np.vstack([a, b])
    w = np.ones(len(x), np.float32)
    clus = annvil.Clustering(4, 1)
    clus.train(x, annvil.IndexFlatL2(4))
    c0 = annvil.vector_to_array(clus.centroids)
    w[500:] = 1000
    clus = annvil.Clustering(4, 1)
    clus.train(x, annvil.IndexFlatL2(4), weights=w)
    c1 = annvil.vector_to_array(clus.centroids)
    assert c1.mean() > 15 > c0.mean()


@pytest.mark.parametrize("method", ["RANDOM", "KMEANS_PLUS_PLUS", "AFK_MC2"])
def test_initialization_methods(method):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((2000, 8)) + 30 * rng.integers(0, 10, (2000, 1))).astype(np.float32)
    init = annvil.ClusteringInitialization(8, 10)
    init.method = getattr(annvil, "ClusteringInitMethod_" + method)
    init.seed = 5
    c = np.zeros((10, 8), np.float32)
    init.init_centroids(len(x), annvil.swig_ptr(x), annvil.swig_ptr(c))
    assert all((x == row).all(1).any() for row in c)  # chosen among the points
    assert len(np.unique(c, axis=0)) == 10
    c2 = np.zeros((10, 8), np.float32)
    init.init_centroids(len(x), annvil.swig_ptr(x), annvil.swig_ptr(c2))
    np.testing.assert_array_equal(c, c2)
    if method != "RANDOM":  # D^2 seeding finds the 10 far-apart groups
        groups = np.unique(np.round(c[:, 0] / 30))
        assert len(groups) >= 9


def test_kmeans_early_stop_and_cp_keywords():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1000, 8)).astype(np.float32)
    km = annvil.Kmeans(8, 5, niter=500, init_method=annvil.ClusteringInitMethod_KMEANS_PLUS_PLUS)
    km.train(x)
    assert len(km.obj) < 500
    assert list(km.obj) == [s["obj"] for s in km.iteration_stats]
    with pytest.raises(TypeError):
        annvil.Kmeans(8, 5, nonsense=1)


# ---- build information --------------------------------------------------------------------
def test_build_information():
    opts = annvil.get_compile_options()
    assert isinstance(opts, str) and "DD" in opts
    assert annvil.check_openmp()
    level = annvil.SIMDConfig.get_level()
    assert annvil.SIMDConfig.is_simd_level_available(annvil.SIMDLevel_NONE)
    annvil.SIMDConfig.set_level(annvil.SIMDLevel_NONE)
    try:
        assert annvil.simd_level() == "scalar"
    finally:
        annvil.SIMDConfig.set_level(level)
    assert annvil.cvar.distance_compute_blas_threshold == faiss.cvar.distance_compute_blas_threshold
    with pytest.raises(AttributeError):
        annvil.cvar.no_such_variable = 3
    assert annvil.is_similarity_metric(annvil.METRIC_INNER_PRODUCT)
    assert not annvil.is_similarity_metric(annvil.METRIC_L2)
    import annvil.swigfaiss as sf
    assert sf.IndexFlatL2 is annvil.IndexFlatL2


def test_ivf_stats_count_like_faiss():
    rng = np.random.default_rng(13)
    xb = rng.standard_normal((2000, 16)).astype(np.float32)
    res = {}
    for mod in (annvil, faiss):
        ix = mod.index_factory(16, "IVF16,Flat")
        ix.train(xb)
        ix.add(xb)
        ix.nprobe = 4
        st = mod.cvar.indexIVF_stats
        st.reset()
        _, I = ix.search(xb[:30], 5)
        full = (st.nq, st.nlist, st.ndis)
        st.reset()
        sel = mod.IDSelectorBatch(np.arange(0, 2000, 2))
        ix.search(xb[:30], 5, params=mod.SearchParametersIVF(nprobe=4, sel=sel))
        res[mod.__name__] = (full, st.ndis, ix.quantizer.search(xb[:30], 4)[1])
    (full, half, keys), (full_r, half_r, keys_r) = res["annvil"], res["faiss"]
    assert full[0] == 30 and full[1] == 30 * 4 and 0 < half < full[2]
    if np.array_equal(np.sort(keys, 1), np.sort(keys_r, 1)):  # same coarse assignment: same counts
        assert full == full_r and half == half_r
    pq = annvil.index_factory(16, "IVF16,PQ4x4fs")
    pq.train(xb)
    pq.add(xb)
    annvil.cvar.indexIVF_stats.reset()
    pq.search(xb[:3], 2)
    assert annvil.cvar.indexIVF_stats.ndis > 0


@pytest.mark.parametrize("imin,imax", [(10, 20), (-10, 20), (10, 40), (30, 80), (5, 5)])
def test_sorted_id_range_bounds(imin, imax):
    ids = np.sort(np.random.default_rng(imin + 50).integers(0, 30, 25)).astype(np.int64)
    sel = annvil.IDSelectorRange(imin, imax, True)
    assert sel.assume_sorted
    j = np.zeros(2, np.uint64)
    sel.find_sorted_ids_bounds(len(ids), annvil.swig_ptr(ids), annvil.swig_ptr(j[:1]), annvil.swig_ptr(j[1:]))
    ref = np.zeros(2, np.uint64)
    faiss.IDSelectorRange(imin, imax, True).find_sorted_ids_bounds(
        len(ids), faiss.swig_ptr(ids), faiss.swig_ptr(ref[:1]), faiss.swig_ptr(ref[1:]))
    (expected,) = np.where((ids >= imin) & (ids < imax))
    for j0, j1 in (j.astype(int), ref.astype(int)):  # Faiss's bounds for an empty range may differ
        if len(expected):
            np.testing.assert_array_equal(np.arange(j0, j1), expected)
        else:
            assert j0 >= j1 or j0 == j1


@pytest.mark.parametrize("n,k", [(1, 1), (20, 20), (300, 7), (1000, 64)])
def test_exact_1d_kmeans_is_optimal(n, k):
    x = np.random.default_rng(n + k).random(n).astype(np.float32).reshape(-1, 1)
    ours = annvil.Clustering1D(k)
    obj = ours.train_exact(x)
    ref = faiss.Clustering1D(k)
    ref.train_exact(x)
    c, cr = annvil.vector_to_array(ours.centroids), faiss.vector_to_array(ref.centroids)

    def err(cent):
        return float(((x - cent.reshape(1, -1)) ** 2).min(1).sum())
    assert err(c) <= err(cr) * (1 + 1e-4) + 1e-9  # both are optimal
    assert obj == pytest.approx(err(c), rel=1e-3, abs=1e-6)
    km = annvil.Kmeans(1, k, niter=20)
    if n >= k:
        km.train(x)
        assert err(c) <= err(km.centroids.ravel()) * (1 + 1e-6) + 1e-9


def test_smawk_row_minima():
    i, j = np.meshgrid(np.arange(23), np.arange(31), indexing="ij")
    a = ((i * 1.3 - j) ** 2).astype(np.float32)  # Monge: totally monotone
    out = np.zeros(23, np.int64)
    annvil.smawk(23, 31, annvil.swig_ptr(a), annvil.swig_ptr(out))
    np.testing.assert_array_equal(out, a.argmin(1))
