"""Faiss's ivflib-level operations on IVF indexes: preassigned add / search,
copy_subset_to, update_vectors, search_and_return_codes, list ranges and
permutations, the ivflib module functions and sharding by centroids.
faiss runs the same operation on the same data where it has it."""
import os

import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")

D_ = 16


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(9)
    xt = rng.standard_normal((2000, D_)).astype("float32")
    xb = rng.standard_normal((1200, D_)).astype("float32")
    xq = rng.standard_normal((30, D_)).astype("float32")
    return xt, xb, xq


def trained(key, xt, lib=annvil):
    idx = lib.index_factory(D_, key)
    idx.train(xt)
    return idx


def shared_pair(key, xt):
    """an annvil index and a faiss index with the same coarse centroids"""
    ours = trained(key, xt)
    theirs = faiss.index_factory(D_, key)
    theirs.quantizer.train(ours.quantizer.reconstruct_n())
    theirs.quantizer.add(ours.quantizer.reconstruct_n())
    theirs.train(xt)
    return ours, theirs


def test_add_preassigned_and_search_preassigned_match_faiss(data):
    xt, xb, xq = data
    ours, theirs = shared_pair("IVF24,Flat", xt)
    rng = np.random.default_rng(3)
    lists = rng.integers(0, 24, len(xb)).astype("int64")  # any assignment, not the nearest centroid
    ours.add_core(len(xb), annvil.swig_ptr(xb), None, annvil.swig_ptr(lists))
    theirs.add_core(len(xb), faiss.swig_ptr(xb), None, faiss.swig_ptr(lists))
    for l in range(24):
        np.testing.assert_array_equal(np.sort(ours.invlists.get_ids(l)),
                                      np.sort(faiss.rev_swig_ptr(theirs.invlists.get_ids(l),
                                                                 theirs.invlists.list_size(l))))
    probe = rng.integers(0, 24, (len(xq), 5)).astype("int64")
    D, I = ours.search_preassigned(xq, 6, probe, np.zeros(probe.shape, "float32"))
    theirs.nprobe = 5
    Df, If = theirs.search_preassigned(xq, 6, probe, np.zeros(probe.shape, "float32"))
    np.testing.assert_array_equal(I, If)
    np.testing.assert_allclose(D, Df, rtol=1e-5, atol=1e-5)
    res = annvil.RangeSearchResult(len(xq))
    r = float(np.median(D[:, -1]))
    ours.range_search_preassigned_c(len(xq), annvil.swig_ptr(xq), r, annvil.swig_ptr(probe), None, res)
    lims, Dr, Ir = ours.range_search_preassigned(xq, r, probe)
    np.testing.assert_array_equal(annvil.rev_swig_ptr(res.lims, len(xq) + 1), lims)
    np.testing.assert_array_equal(res.labels, Ir)
    with pytest.raises(annvil.InvalidArgumentError):
        ours.add_core(1, xb[:1], None, np.array([24]))


@pytest.mark.parametrize("subset_type,args", [(0, (100, 700)), (1, (3, 1)), (2, (200, 900)), (3, (4, 2)),
                                              (4, (5, 17))])
@pytest.mark.parametrize("key", ["IVF24,Flat", "IVF24,SQ8"])
def test_copy_subset_to_matches_faiss(data, key, subset_type, args):
    xt, xb, _ = data
    ours, theirs = shared_pair(key, xt)
    o_sub, t_sub = annvil.clone_index(ours), faiss.clone_index(theirs)
    ours.add(xb)
    theirs.add(xb)
    n = ours.copy_subset_to(o_sub, subset_type, *args)
    theirs.copy_subset_to(t_sub, subset_type, *args)
    assert n == o_sub.ntotal == t_sub.ntotal
    for l in range(24):
        got = o_sub.invlists.get_ids(l)
        want = faiss.rev_swig_ptr(t_sub.invlists.get_ids(l), t_sub.invlists.list_size(l))
        np.testing.assert_array_equal(got, want)
    with pytest.raises(annvil.InvalidArgumentError):
        ours.copy_subset_to(o_sub, 5, 0, 1)
    with pytest.raises(TypeError):
        ours.copy_subset_to(annvil.IndexFlatL2(D_), 0, 0, 1)


def test_subsets_searched_as_shards_equal_the_whole(data):
    xt, xb, xq = data
    whole = trained("IVF24,Flat", xt)
    whole.nprobe = 4
    parts = [annvil.clone_index(whole) for _ in range(3)]
    whole.add(xb)
    sh = annvil.IndexShards(False, False)
    for i, p in enumerate(parts):
        whole.copy_subset_to(p, 1, 3, i)
        sh.add_shard(p)
    D, I = sh.search(xq, 10)
    Dw, Iw = whole.search(xq, 10)
    np.testing.assert_array_equal(I, Iw)
    np.testing.assert_array_equal(D, Dw)


@pytest.mark.parametrize("dm", [1, 2])
def test_update_vectors_matches_faiss(data, dm):
    xt, xb, xq = data
    ours, theirs = shared_pair("IVF24,Flat", xt)
    ours.add(xb)
    theirs.add(xb)
    ours.set_direct_map_type(dm)
    theirs.set_direct_map_type(dm)
    keys = np.arange(0, 300, 3).astype("int64")
    newx = xb[keys][::-1].copy() + 0.01
    ours.update_vectors(keys, newx)
    theirs.update_vectors(keys, newx)
    assert ours.ntotal == len(xb)
    np.testing.assert_array_equal(np.stack([ours.reconstruct(int(k)) for k in keys]), newx)
    ours.nprobe = theirs.nprobe = 24
    D, I = ours.search(xq, 10)
    Df, If = theirs.search(xq, 10)
    np.testing.assert_array_equal(I, If)
    fresh = annvil.clone_index(ours)
    with pytest.raises(annvil.InvalidArgumentError):
        ours.update_vectors(np.array([len(xb) + 5]), xb[:1])  # unknown id: nothing changes
    np.testing.assert_array_equal(ours.search(xq, 10)[1], fresh.search(xq, 10)[1])
    ours.set_direct_map_type(0)
    with pytest.raises(annvil.InvalidArgumentError):
        ours.update_vectors(keys[:1], xb[:1])


@pytest.mark.parametrize("key", ["IVF24,Flat", "IVF24,SQ8", "IVF24,PQ4x4np"])
def test_search_and_return_codes(data, key):
    xt, xb, xq = data
    idx = trained(key, xt)
    idx.add(xb)
    idx.nprobe = 5
    Dref, Iref = idx.search(xq, 8)
    D, I, codes = idx.search_and_return_codes(xq, 8, include_listnos=True)
    np.testing.assert_array_equal(I, Iref)
    np.testing.assert_array_equal(D, Dref)
    assert codes.shape == (len(xq), 8, idx.sa_code_size())
    # the codes are sa_encode's of the stored vectors
    for q in range(3):
        np.testing.assert_array_equal(idx.sa_decode(codes[q]), np.stack([idx.reconstruct(int(i)) for i in I[q]])
                                      if idx.direct_map_type else idx.sa_decode(codes[q]))
        rec = idx.sa_decode(codes[q])
        np.testing.assert_allclose(((rec - xq[q]) ** 2).sum(1), D[q], rtol=1e-4, atol=1e-4)
    _, _, c2 = idx.search_and_return_codes(xq, 8)
    assert c2.shape[2] == idx.code_size
    np.testing.assert_array_equal(c2, codes[:, :, idx.sa_code_size() - idx.code_size:])


def test_permute_invlists_with_quantizer(data):
    xt, xb, xq = data
    idx = trained("IVF24,SQ8", xt)
    idx.add(xb)
    idx.nprobe = 4
    Dref, Iref = idx.search(xq, 5)
    sizes = np.array([idx.invlists.list_size(i) for i in range(24)])
    perm = np.argsort(sizes)
    idx.quantizer.permute_entries(perm)
    idx.permute_invlists(perm)
    assert np.all(np.diff([idx.invlists.list_size(i) for i in range(24)]) >= 0)
    D, I = idx.search(xq, 5)
    np.testing.assert_array_equal(I, Iref)
    np.testing.assert_array_equal(D, Dref)
    with pytest.raises(annvil.InvalidArgumentError):
        idx.permute_invlists(np.zeros(24, "int64"))


def test_ivflib_functions(data):
    xt, xb, xq = data
    a = trained("IVF24,Flat", xt)
    b = annvil.clone_index(a)
    a.add(xb[:600])
    b.add(xb[600:])
    annvil.check_compatible_for_merge(a, b)
    annvil.merge_into(a, b, True)
    assert a.ntotal == len(xb) and b.ntotal == 0
    a.nprobe = 3
    one = trained("IVF24,Flat", xt)
    one.add(xb)
    one.nprobe = 3
    np.testing.assert_array_equal(a.search(xq, 5)[1], one.search(xq, 5)[1])
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.check_compatible_for_merge(a, trained("IVF12,Flat", xt))

    lists = annvil.search_centroid(a, xq)
    np.testing.assert_array_equal(lists, a.quantizer.search(xq, 1)[1].ravel())
    D, I, qc, rc = annvil.search_and_return_centroids(a, xq, 5)
    np.testing.assert_array_equal(qc, lists)
    for q in range(len(xq)):
        for j in range(5):
            assert I[q, j] in a.invlists.get_ids(int(rc[q, j]))

    il = annvil.get_invlist_range(a, 4, 9)
    assert il.nlist == 5
    np.testing.assert_array_equal(il.get_ids(0), a.invlists.get_ids(4))
    c = annvil.clone_index(a)
    empty = annvil.ArrayInvertedLists(5, a.code_size)
    annvil.set_invlist_range(c, 4, 9, empty)
    assert c.ntotal == a.ntotal - sum(a.invlists.list_size(i) for i in range(4, 9))
    annvil.set_invlist_range(c, 4, 9, il)
    np.testing.assert_array_equal(c.search(xq, 5)[1], a.search(xq, 5)[1])

    # search_with_parameters: the params' nprobe, and the counters of this call
    a.nprobe = 1
    p = annvil.SearchParametersIVF(nprobe=3)
    D1, I1, st = annvil.search_with_parameters(a, xq, 5, p, output_stats=True)
    a.nprobe = 3
    annvil.cvar.indexIVF_stats.reset()
    D2, I2 = a.search(xq, 5)
    np.testing.assert_array_equal(I1, I2)
    assert st["ndis"] == annvil.cvar.indexIVF_stats.ndis
    r = float(np.median(D2[:, -1]))
    lims, Dr, Ir, st = annvil.range_search_with_parameters(a, xq, r, p, output_stats=True)
    np.testing.assert_array_equal(lims, a.range_search(xq, r)[0])


@pytest.mark.parametrize("generate_ids", [False, True])
def test_shard_ivf_index_centroids(tmp_path, data, generate_ids):
    xt, xb, _ = data
    q = annvil.IndexFlatL2(D_)
    idx = annvil.IndexIVFFlat(q, D_, 50)
    cent = xb[:50]
    q.add(cent)
    tmpl = os.path.join(str(tmp_path), "s%d.index")
    annvil.shard_ivf_index_centroids(idx, 4, tmpl, None, generate_ids)
    seen = 0
    for j in range(4):
        sh = annvil.read_index(tmpl % j)
        mine = np.arange(j, 50, 4)
        seen += len(mine)
        assert sh.quantizer.ntotal == len(mine)
        for pos, i in enumerate(mine):
            np.testing.assert_array_equal(sh.quantizer.reconstruct(int(i) if generate_ids else pos), cent[i])
    assert seen == 50
    with pytest.raises(RuntimeError):
        annvil.shard_ivf_index_centroids(annvil.IndexIVFFlat(annvil.IndexFlatL2(D_), D_, 50), 4, tmpl)
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.shard_ivf_index_centroids(idx, 4, os.path.join(str(tmp_path), "noformat"))


def test_quantizer_and_codec_assignment(data):
    xt, xb, xq = data
    master = trained("IVF24,PQ4x8", xt)
    child = annvil.IndexIVFPQ(master.quantizer, D_, 24, 4, 8)
    child.pq = master.pq
    child.is_trained = True
    child.add(xb)
    master.add(xb)
    master.nprobe = child.nprobe = 4
    np.testing.assert_array_equal(child.search(xq, 5)[1], master.search(xq, 5)[1])
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.IndexIVFPQ(annvil.IndexFlatL2(D_), D_, 24, 8, 8).pq = master.pq  # other M
    # a new quantizer holding the same centroids leaves results unchanged
    q2 = annvil.IndexHNSWFlat(D_, 16)
    q2.add(master.quantizer.reconstruct_n())
    before = master.search(xq, 5)
    master.quantizer = q2
    after = master.search(xq, 5)
    assert np.mean(before[1] == after[1]) > 0.9
    with pytest.raises(annvil.InvalidArgumentError):
        master.quantizer = annvil.IndexFlatL2(D_ + 1)


def test_bucket_sort_and_memcpy():
    rng = np.random.default_rng(0)
    tab = rng.integers(0, 7, (50, 3)).astype("int64")
    orig = tab.copy()
    lims = annvil.matrix_bucket_sort_inplace(tab, nbucket=7)
    assert lims[-1] == orig.size
    for b in range(7):
        rows = tab.ravel()[lims[b]:lims[b + 1]]
        want = np.nonzero(orig == b)[0]
        np.testing.assert_array_equal(np.sort(rows), np.sort(want))
    # faiss agrees on the buckets
    tab_f = orig.copy()
    lims_f = faiss.matrix_bucket_sort_inplace(tab_f, nbucket=7)
    np.testing.assert_array_equal(lims, lims_f)
    dst = np.zeros(4, "int64")
    annvil.memcpy(annvil.swig_ptr(dst), np.arange(4, dtype="int64"), dst.nbytes)
    np.testing.assert_array_equal(dst, np.arange(4))
    with pytest.raises(annvil.InvalidArgumentError):
        annvil.memcpy(dst, np.arange(2, dtype="int64"), dst.nbytes)
