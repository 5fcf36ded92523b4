"""Meta indexes held in process: IndexShards, IndexReplicas, IndexShardsIVF.
Each is checked against faiss's own meta index built over the same members,
and against one index holding everything."""
import threading

import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")

D_ = 24


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    xt = rng.standard_normal((3000, D_)).astype("float32")
    xb = rng.standard_normal((1500, D_)).astype("float32")
    xq = rng.standard_normal((40, D_)).astype("float32")
    return xt, xb, xq


def blocks(n, m):
    return [(n * s // m, n * (s + 1) // m) for s in range(m)]


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_shards_of_flat_match_faiss_and_one_index(data, threaded, metric):
    _, xb, xq = data
    ours = annvil.IndexShards(D_, threaded)
    theirs = faiss.IndexShards(D_, threaded)
    keep = []
    for i0, i1 in blocks(len(xb), 4):
        a = annvil.IndexFlat(D_, metric)
        a.add(xb[i0:i1])
        ours.add_shard(a)
        f = faiss.IndexFlat(D_, metric)
        f.add(xb[i0:i1])
        theirs.add_shard(f)
        keep.append(f)
    assert ours.ntotal == len(xb) and ours.count() == 4 and ours.metric_type == metric
    D, I = ours.search(xq, 12)
    Df, If = theirs.search(xq, 12)
    np.testing.assert_array_equal(I, If)
    np.testing.assert_allclose(D, Df, rtol=1e-5, atol=1e-5)
    one = annvil.IndexFlat(D_, metric)
    one.add(xb)
    D1, I1 = one.search(xq, 12)
    np.testing.assert_array_equal(I, I1)
    np.testing.assert_array_equal(D, D1)


def test_shards_add_splits_blocks_and_ids_without_successive_ids(data):
    _, xb, xq = data
    ours = annvil.IndexShards(D_, True, False)
    theirs = faiss.IndexShards(D_, True, False)
    keep = []
    for _ in range(3):
        ours.add_shard(annvil.IndexIDMap(annvil.IndexFlatL2(D_)))
        f = faiss.IndexIDMap(faiss.IndexFlatL2(D_))
        theirs.add_shard(f)
        keep.append(f)
    ours.add(xb)
    theirs.add(xb)
    assert [ours.at(i).ntotal for i in range(3)] == [theirs.at(i).ntotal for i in range(3)]
    D, I = ours.search(xq, 7)
    Df, If = theirs.search(xq, 7)
    np.testing.assert_array_equal(I, If)
    np.testing.assert_allclose(D, Df, rtol=1e-5)
    # the first shard holds the first block, with its original ids
    np.testing.assert_array_equal(ours.at(0).id_map, np.arange(len(xb) // 3))


def test_shards_rules_and_errors(data):
    _, xb, xq = data
    s = annvil.IndexShards(False, True)  # (threaded, successive_ids): d from the first shard
    assert s.d == 0
    with pytest.raises(annvil.InvalidArgumentError):
        s.search(xq, 3)  # no shard yet
    f = annvil.IndexFlatL2(D_)
    s.add_shard(f)
    assert s.d == D_
    with pytest.raises(annvil.InvalidArgumentError):
        s.add_shard(annvil.IndexFlatL2(D_ + 1))
    with pytest.raises(annvil.InvalidArgumentError):
        s.add_shard(annvil.IndexFlatIP(D_))  # other metric
    with pytest.raises(annvil.InvalidArgumentError):
        s.add_shard(f)  # twice
    s.add(xb[:100])
    with pytest.raises(annvil.InvalidArgumentError):
        s.add(xb[:10])  # successive ids: one add only, as Faiss
    with pytest.raises(annvil.InvalidArgumentError):
        s.add_with_ids(xb[:10], np.arange(10))
    assert s.ntotal == 100
    np.testing.assert_array_equal(s.reconstruct(42), xb[42])
    # shards modified directly: sync picks the new sizes up
    f.add(xb[100:110])
    s.sync_with_shard_indexes()
    assert s.ntotal == 110
    s.remove_shard(f)
    assert s.count() == 0 and s.ntotal == 0
    with pytest.raises(AttributeError):
        s.succesive_ids = False  # typo: Faiss raises too


def test_shards_range_search_and_files(data):
    _, xb, xq = data
    s = annvil.IndexShards(D_)
    for i0, i1 in blocks(len(xb), 3):
        a = annvil.IndexFlatL2(D_)
        a.add(xb[i0:i1])
        s.add_shard(a)
    one = annvil.IndexFlatL2(D_)
    one.add(xb)
    r = float(np.median(one.search(xq, 20)[0][:, -1]))
    lims, D, I = s.range_search(xq, r)
    lr, Dr, Ir = one.range_search(xq, r)
    np.testing.assert_array_equal(lims, lr)
    for q in range(len(xq)):
        a = sorted(zip(I[lims[q]:lims[q + 1]], D[lims[q]:lims[q + 1]]))
        b = sorted(zip(Ir[lr[q]:lr[q + 1]], Dr[lr[q]:lr[q + 1]]))
        assert a == b
    c = annvil.clone_index(s)
    assert type(c) is annvil.IndexShards and c.count() == 3
    np.testing.assert_array_equal(c.search(xq, 5)[1], s.search(xq, 5)[1])


def test_shards_search_runs_concurrently_with_member_adds(data):
    _, xb, xq = data
    s = annvil.IndexShards(D_, True)
    members = [annvil.IndexFlatL2(D_) for _ in range(3)]
    for m in members:
        s.add_shard(m)
    s.add(xb[:300])
    errors = []

    def searcher():
        try:
            for _ in range(30):
                D, I = s.search(xq, 5)
                assert (I >= 0).all()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=searcher)
    t.start()
    for i in range(30):
        members[i % 3].add(xb[300 + i:301 + i])
    t.join()
    assert not errors


@pytest.mark.parametrize("threaded", [False, True])
def test_replicas_match_faiss(data, threaded):
    xt, xb, xq = data
    ours = annvil.IndexReplicas(D_, threaded)
    theirs = faiss.IndexReplicas(D_, threaded)
    keep = []
    for _ in range(3):
        ours.add_replica(annvil.IndexHNSWFlat(D_, 16))
        f = faiss.IndexHNSWFlat(D_, 16)
        theirs.add_replica(f)
        keep.append(f)
    ours.add(xb)
    theirs.add(xb)
    assert ours.ntotal == len(xb) and all(ours.at(i).ntotal == len(xb) for i in range(3))
    D, I = ours.search(xq, 10)
    # each query block went to one replica: equal to that replica's own answer
    for r, (i0, i1) in enumerate(blocks(len(xq), 3)):
        Dr, Ir = ours.at(r).search(xq[i0:i1], 10)
        np.testing.assert_array_equal(I[i0:i1], Ir)
    gt = annvil.knn(xq, xb, 10)[1]
    Df, If = theirs.search(xq, 10)
    rec = np.mean([len(set(a) & set(b)) for a, b in zip(I, gt)]) / 10
    rec_f = np.mean([len(set(a) & set(b)) for a, b in zip(If, gt)]) / 10
    assert rec >= rec_f - 0.05
    np.testing.assert_array_equal(ours.reconstruct(7), xb[7])


def test_replicas_train_reaches_every_replica(data):
    xt, xb, xq = data
    r = annvil.IndexReplicas()
    for _ in range(2):
        r.add_replica(annvil.index_factory(D_, "IVF16,Flat"))
    assert not r.is_trained
    r.train(xt)
    assert r.is_trained and all(r.at(i).is_trained for i in range(2))
    r.add(xb)
    assert r.ntotal == len(xb)
    with pytest.raises(annvil.InvalidArgumentError):
        r.add_replica(annvil.IndexFlatL2(D_))  # holds other data


@pytest.mark.parametrize("key", ["IVF32,Flat", "IVF32,SQ8", "IVF32,PQ6x4np"])
def test_shards_ivf_equals_one_ivf_and_faiss(data, key):
    xt, xb, xq = data
    ref = annvil.index_factory(D_, key)
    ref.train(xt)
    ref.nprobe = 6
    empty = annvil.clone_index(ref)
    ref.add(xb)
    Dref, Iref = ref.search(xq, 10)
    sh = annvil.IndexShardsIVF(ref.quantizer, ref.nlist, True, True)
    for i0, i1 in blocks(len(xb), 3):
        part = annvil.clone_index(empty)
        part.add(xb[i0:i1])
        sh.add_shard(part)
    D, I = sh.search(xq, 10)
    np.testing.assert_array_equal(I, Iref)
    np.testing.assert_allclose(D, Dref, rtol=1e-6)
    # per-call nprobe reaches the shards
    D2, I2 = sh.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=32))
    np.testing.assert_array_equal(I2, ref.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=32))[1])

    # the same construction in faiss
    fref = faiss.index_factory(D_, key)
    fref.train(xt)
    fref.nprobe = 6
    fempty = faiss.clone_index(fref)
    fsh = faiss.IndexShardsIVF(fref.quantizer, fref.nlist, False, True)
    keep = []
    for i0, i1 in blocks(len(xb), 3):
        part = faiss.clone_index(fempty)
        part.add(xb[i0:i1])
        fsh.add_shard(part)
        keep.append(part)
    assert fsh.ntotal == sh.ntotal


def test_shards_ivf_train_and_add_through_common_quantizer(data):
    xt, xb, xq = data
    q = annvil.IndexFlatL2(D_)
    sh = annvil.IndexShardsIVF(q, 20, False, False)
    for _ in range(3):
        sh.add_shard(annvil.index_factory(D_, "IVF20,Flat"))
    assert not sh.is_trained
    sh.train(xt)
    assert sh.is_trained and q.ntotal == 20
    for i in range(3):  # every shard got the common centroids
        np.testing.assert_array_equal(sh.at(i).quantizer.reconstruct_n(), q.reconstruct_n())
    sh.add(xb)
    ref = annvil.IndexIVFFlat(q, D_, 20)
    ref.train(xt)
    ref.add(xb)
    D, I = sh.search(xq, 8)
    Dr, Ir = ref.search(xq, 8)
    np.testing.assert_array_equal(I, Ir)
    np.testing.assert_allclose(D, Dr, rtol=1e-6)
    with pytest.raises(TypeError):
        sh.add_shard(annvil.IndexFlatL2(D_))
    with pytest.raises(annvil.InvalidArgumentError):
        sh.add_shard(annvil.index_factory(D_, "IVF21,Flat"))
