"""merge_from / check_compatible_for_merge, and HNSW remove_ids compaction
(ids shift as in IndexFlat) next to mark_deleted tombstones; Faiss is the
oracle where it has the operation."""
import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")

D_ = 20


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    xt = rng.standard_normal((2000, D_)).astype("float32")
    xb = rng.standard_normal((900, D_)).astype("float32")
    xq = rng.standard_normal((25, D_)).astype("float32")
    return xt, xb, xq


def recall(I, gt):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(I, gt)])


@pytest.mark.parametrize("key", ["Flat", "SQ8", "SQfp16", "PQ5x4", "PQ5x4fs", "OPQ5,PQ5x4", "SQ8,RFlat"])
def test_merge_equals_one_index(data, key):
    xt, xb, xq = data
    trained = annvil.index_factory(D_, key)
    trained.train(xt)
    whole, a, b = (annvil.clone_index(trained) for _ in range(3))
    whole.add(xb)
    a.add(xb[:300])
    b.add(xb[300:])
    a.check_compatible_for_merge(b)
    a.merge_from(b)
    assert a.ntotal == len(xb) and b.ntotal == 0
    Dw, Iw = whole.search(xq, 10)
    Dm, Im = a.search(xq, 10)
    np.testing.assert_array_equal(Im, Iw)
    np.testing.assert_allclose(Dm, Dw, rtol=1e-5)


@pytest.mark.parametrize("key", ["Flat", "SQ8"])
def test_merge_same_as_faiss(data, key):
    xt, xb, xq = data
    res = []
    for m in (annvil, faiss):
        a = m.index_factory(D_, key)
        a.train(xt)
        b = m.clone_index(a)
        a.add(xb[:400])
        b.add(xb[400:])
        a.merge_from(b)
        res.append(a.search(xq, 10))
    np.testing.assert_array_equal(res[0][1], res[1][1])
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-5)


@pytest.mark.parametrize("cls", ["IndexIDMap", "IndexIDMap2"])
def test_merge_idmap_flat_as_langchain(data, cls):
    """LangChain's FAISS.merge_from: IDMap-wrapped IndexFlat stores, ids shifted."""
    _, xb, xq = data
    res = []
    for m in (annvil, faiss):
        a = getattr(m, cls)(m.IndexFlatL2(D_))
        b = getattr(m, cls)(m.IndexFlatL2(D_))
        a.add_with_ids(xb[:500], np.arange(500, dtype="int64"))
        b.add_with_ids(xb[500:], np.arange(len(xb) - 500, dtype="int64"))
        a.merge_from(b, 500)
        assert a.ntotal == len(xb) and b.ntotal == 0
        res.append(a.search(xq, 8))
        if cls == "IndexIDMap2":
            np.testing.assert_array_equal(a.reconstruct(650), xb[650])
    np.testing.assert_array_equal(res[0][1], res[1][1])
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-5)


@pytest.mark.parametrize("key", ["IVF16,Flat", "IVF16,SQ8", "IVF16,PQ5x4", "IVF16,PQ5x4fs"])
def test_merge_ivf_with_add_id(data, key):
    xt, xb, xq = data
    trained = annvil.index_factory(D_, key)
    trained.train(xt)
    whole, a, b = (annvil.clone_index(trained) for _ in range(3))
    for idx in (whole, a, b):
        idx.nprobe = 4
    whole.add(xb)
    a.add(xb[:300])
    b.add(xb[300:])
    a.merge_from(b, 300)
    assert a.ntotal == len(xb) and b.ntotal == 0
    Dw, Iw = whole.search(xq, 10)
    Dm, Im = a.search(xq, 10)
    np.testing.assert_array_equal(Im, Iw)
    np.testing.assert_allclose(Dm, Dw, rtol=1e-5)


def test_merge_idmap_over_ivf_keeps_user_ids(data):
    """IVF stores positions under IDMap: the merge shifts them (Faiss does not)."""
    xt, xb, xq = data
    a = annvil.index_factory(D_, "IDMap,IVF16,Flat")
    a.train(xt)
    b = annvil.clone_index(a)
    ids = np.arange(len(xb)) * 7 + 3
    a.add_with_ids(xb[:300], ids[:300])
    b.add_with_ids(xb[300:], ids[300:])
    a.merge_from(b)
    a.index.nprobe = 16
    I = a.search(xb[::37], 1)[1][:, 0]
    np.testing.assert_array_equal(I, ids[::37])


@pytest.mark.parametrize("key", ["HNSW16", "HNSW16,SQ8", "HNSW16,PQ5x4", "IDMap,HNSW16"])
def test_merge_hnsw(data, key):
    xt, xb, xq = data
    a = annvil.index_factory(D_, key)
    a.train(xt)
    b = annvil.clone_index(a)
    if key.startswith("IDMap"):
        a.add_with_ids(xb[:400], np.arange(400) + 10000)
        b.add_with_ids(xb[400:], np.arange(400, len(xb)) + 10000)
        offset = 10000
    else:
        a.add(xb[:400])
        b.add(xb[400:])
        offset = 0
    a.merge_from(b)
    assert a.ntotal == len(xb) and b.ntotal == 0
    inner = a.index if offset else a
    stored = np.stack([inner.reconstruct(i) for i in range(inner.ntotal)])  # decoded codes
    gt = annvil.knn(xq, stored, 10)[1] + offset
    assert recall(a.search(xq, 10)[1], gt) > 0.85
    # the merged vectors are where a plain add would put them
    if offset == 0:
        np.testing.assert_allclose(a.reconstruct(650), annvil.clone_index(a).reconstruct(650))


def test_merge_incompatible(data):
    xt, xb, _ = data
    flat = annvil.IndexFlatL2(D_)
    with pytest.raises(TypeError):
        flat.merge_from(annvil.IndexFlatIP(D_))
    with pytest.raises(ValueError):
        flat.merge_from(annvil.IndexFlatL2(D_ + 1))
    with pytest.raises(ValueError):
        flat.merge_from(annvil.IndexFlatL2(D_), 5)  # ids are positions
    with pytest.raises(ValueError):
        flat.merge_from(flat)
    sq1, sq2 = annvil.IndexScalarQuantizer(D_, 0), annvil.IndexScalarQuantizer(D_, 0)
    sq1.train(xt)
    sq2.train(xt[:100])
    sq2.add(xb[:10])
    with pytest.raises(ValueError):
        sq1.merge_from(sq2)  # trained differently
    assert sq1.ntotal == 0 and sq2.ntotal == 10  # nothing moved
    with pytest.raises(TypeError):
        annvil.IndexIDMap(annvil.IndexFlatL2(D_)).merge_from(annvil.IndexFlatL2(D_))
    with pytest.raises(RuntimeError):
        annvil.IndexIDMap(annvil.IndexFlatL2(D_)).check_compatible_for_merge(
            annvil.IndexIDMap(annvil.IndexFlatIP(D_)))


# ---- HNSW deletes: remove_ids compacts, mark_deleted keeps ids --------------------------------
@pytest.mark.parametrize("key", ["HNSW16", "HNSW16,SQ8", "HNSW16,PQ5x4"])
def test_hnsw_remove_ids_shifts_like_flat(data, key):
    xt, xb, xq = data
    h = annvil.index_factory(D_, key)
    h.train(xt)
    h.add(xb)
    h.hnsw.efSearch = 64
    flat = annvil.IndexFlatL2(D_)
    flat.add(np.stack([h.reconstruct(i) for i in range(h.ntotal)]))  # the stored (decoded) vectors
    gone = np.unique(np.r_[0, np.arange(5, 900, 3), 899])
    assert h.remove_ids(gone) == flat.remove_ids(gone) == len(gone)
    assert h.ntotal == flat.ntotal == len(xb) - len(gone) and h.n_deleted == 0
    # positions shifted exactly as in IndexFlat
    for i in (0, 1, 100, h.ntotal - 1):
        np.testing.assert_allclose(h.reconstruct(i), flat.reconstruct(i), rtol=1e-6)
    # the repaired graph still finds the neighbours
    gt = flat.search(xq, 10)[1]
    assert recall(h.search(xq, 10)[1], gt) > (0.9 if key == "HNSW16" else 0.8)
    # ... and is a valid graph (the file reader checks every link)
    back = annvil.deserialize_index(annvil.serialize_index(h))
    np.testing.assert_array_equal(back.search(xq, 5)[1], h.search(xq, 5)[1])
    # more adds after a removal land at the end
    fresh = xq[:3] * 4  # far from everything stored
    h.add(fresh)
    assert h.ntotal == flat.ntotal + 3
    assert (h.search(fresh, 1)[1][:, 0] == np.arange(flat.ntotal, flat.ntotal + 3)).mean() >= 2 / 3


def test_hnsw_remove_everything_and_entry_point(data):
    _, xb, xq = data
    h = annvil.IndexHNSWFlat(D_, 8)
    h.add(xb[:200])
    ep = h.hnsw.entry_point
    assert h.remove_ids(np.array([ep])) == 1  # the entry point goes: a new one is chosen
    assert h.search(xq, 3)[1].min() >= 0
    assert h.remove_ids(annvil.IDSelectorRange(0, h.ntotal)) == 199
    assert h.ntotal == 0
    D, I = h.search(xq, 2)
    assert (I == -1).all()
    h.add(xb[:10])
    assert h.search(xb[:1], 1)[1][0, 0] == 0


def test_hnsw_mark_deleted_and_idmap_stable_ids(data):
    _, xb, xq = data
    h = annvil.IndexHNSWFlat(D_, 16)
    h.add(xb)
    assert h.mark_deleted(np.arange(10)) == 10
    assert h.ntotal == len(xb) and h.n_deleted == 10
    assert not np.isin(h.search(xq, 10)[1], np.arange(10)).any()
    # remove_ids after tombstones: the tombstones move with their slots
    assert h.remove_ids(np.arange(10, 20)) == 10
    assert h.ntotal == len(xb) - 10 and h.n_deleted == 10
    assert not np.isin(h.search(xq, 10)[1], np.arange(10)).any()
    # under IDMap the user ids stay stable
    m = annvil.IndexIDMap(annvil.IndexHNSWFlat(D_, 16))
    ids = np.arange(len(xb)) * 5 + 1
    m.add_with_ids(xb, ids)
    assert m.remove_ids(ids[:300]) == 300
    I = m.search(xb[300::50], 1)[1][:, 0]
    np.testing.assert_array_equal(I, ids[300::50])
