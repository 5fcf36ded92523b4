"""Faiss's index file format (cpp/faiss_io.h), both ways: files written by
faiss-cpu and read by annvil give Faiss's search results (and are written
back byte for byte), files written by annvil with format="faiss" are read by
faiss-cpu with the same results; unsupported types are named; truncated and
corrupted files raise IndexFileError."""

import numpy as np
import pytest

import annvil

faiss = pytest.importorskip("faiss")

D = 20
METRICS = [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Single-threaded on both sides: deterministic and cheap on a shared machine."""
    nf, na = faiss.omp_get_max_threads(), annvil.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    annvil.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(nf)
    annvil.omp_set_num_threads(na)


_FAISS_CACHE = {}


@pytest.fixture(scope="module")
def data():
    rs = np.random.RandomState(123)
    basis = rs.randn(6, D).astype("float32")

    def draw(n):
        return (rs.randn(n, 6).astype("float32") @ basis + 0.4 * rs.randn(n, D)).astype("float32")

    return draw(1200), draw(1000), draw(25)


# Faiss factory strings; every one is read into the annvil counterpart
KEYS = [
    "Flat", "IDMap,Flat", "IDMap2,Flat",
    "IVF16,Flat", "IVF16,SQ8", "IVF16,SQ4", "IVF16,SQ6", "IVF16,SQfp16", "IVF16,SQbf16", "IVF16,SQ8_direct",
    "IVF16,PQ4x6", "IVF16,PQ4x6np",
    "SQ8", "SQ4", "SQfp16", "PQ5x6",
    "PQ10x4fs", "PQ5x4fs", "IVF16,PQ10x4fs", "IVF16,PQ5x4fsr",
    "HNSW16", "HNSW16_SQ8", "HNSW16_PQ4x6",
    "PQ4x6,RFlat", "PQ4x6,Refine(SQ8)",
    "L2norm,Flat", "RR20,Flat", "OPQ4,PQ4x6", "OPQ4_16,PQ4x6",
    "IVF16_HNSW8,Flat", "IDMap,HNSW16",
]

FASTSCAN = ("x4fs",)


def _faiss_index(key, metric, data):
    if (key, metric) in _FAISS_CACHE:
        return faiss.deserialize_index(_FAISS_CACHE[key, metric])
    fi = _build_faiss_index(key, metric, data)
    _FAISS_CACHE[key, metric] = faiss.serialize_index(fi)
    return fi


def _build_faiss_index(key, metric, data):
    xt, xb, _ = data
    fi = faiss.index_factory(D, key, metric)
    fi.train(xt)
    if "IDMap" in key:
        fi.add_with_ids(xb, np.arange(len(xb), dtype="int64") * 7 + 3)
    else:
        fi.add(xb)
    ivf = faiss.try_extract_index_ivf(fi)
    if ivf is not None:
        ivf.nprobe = 5
    return fi


def _compare_fastscan(fi, ai, xq):
    """Fast-scan distances are quantised, and annvil's quantisation of the
    LUTs is its own: the codes must decode to Faiss's vectors exactly, and
    the searches agree on most neighbours."""
    n = fi.ntotal
    if isinstance(ai, annvil.IndexPQFastScan):
        # (faiss 1.15's IVF fast-scan reconstruct_n crashes on an index read
        # from a file: there the byte-identical round trip shows the codes)
        np.testing.assert_array_equal(ai.reconstruct_n(0, n), fi.reconstruct_n(0, n))
    _, I0 = fi.search(xq, 10)
    _, I1 = ai.search(xq, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I0, I1)]) > 0.7


def _compare(D0, I0, D1, I1):
    """Same distances; the same ids, up to the order of exactly tied
    distances (PQ codes can coincide)."""
    np.testing.assert_allclose(D1, D0, rtol=1e-5, atol=1e-4)
    for d0, i0, i1 in zip(D0, I0, I1):
        bad = np.nonzero(i0 != i1)[0]
        for j in bad:
            tied = np.abs(d0 - d0[j]) <= 1e-5 * max(1.0, abs(d0[j]))
            if tied[-1]:
                # at the end of the row the tie may include a vector just
                # outside the top k (the distances were checked equal above)
                continue
            assert tied.sum() > 1 and set(i0[tied]) == set(i1[tied]), (i0, i1, d0)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
@pytest.mark.parametrize("key", KEYS)
def test_read_faiss_file(tmp_path, data, key, metric):
    fi = _faiss_index(key, metric, data)
    path = str(tmp_path / "f.index")
    faiss.write_index(fi, path)
    ai = annvil.read_index(path)
    assert ai.ntotal == fi.ntotal and ai.d == fi.d and ai.metric_type == fi.metric_type
    xq = data[2]
    if any(s in key for s in FASTSCAN):
        _compare_fastscan(fi, ai, xq)
    else:
        _compare(*fi.search(xq, 10), *ai.search(xq, 10))
    # and back: the bytes Faiss wrote, exactly
    b0 = faiss.serialize_index(fi)
    b1 = annvil.serialize_index(ai, format="faiss")
    assert len(b1) == len(b0) and np.array_equal(b1, b0)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
@pytest.mark.parametrize("key", ["HNSW16", "HNSW16_SQ8", "PQ10x4fs", "IVF16,PQ10x4fs"])
def test_default_search_matches(tmp_path, data, key, metric):
    """The default search too: HNSW graphs walk the same way; fast-scan
    (quantised LUTs) agrees on most neighbours."""
    fi = _faiss_index(key, metric, data)
    ai = annvil.deserialize_index(faiss.serialize_index(fi))
    D0, I0 = fi.search(data[2], 10)
    D1, I1 = ai.search(data[2], 10)
    if "fs" in key:
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I0, I1)])
        assert overlap > 0.7
    else:
        _compare(D0, I0, D1, I1)


def _annvil_index(key, metric, data):
    xt, xb, _ = data
    if key == "RR20,Flat":
        ai = annvil.IndexPreTransform(annvil.RandomRotationMatrix(D, D), annvil.IndexFlat(D, metric))
    else:
        ai = annvil.index_factory(D, key, metric)
    if hasattr(ai, "pq"):
        ai.pq.cp.niter = 8
    ai.train(xt)
    if "IDMap" in key:
        ai.add_with_ids(xb, np.arange(len(xb), dtype="int64") * 5 + 1)
    else:
        ai.add(xb)
    if hasattr(ai, "nprobe"):
        ai.nprobe = 5
    return ai


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
@pytest.mark.parametrize("key", KEYS)
def test_write_faiss_file(tmp_path, data, key, metric):
    ai = _annvil_index(key, metric, data)
    path = str(tmp_path / "a.index")
    annvil.write_index(ai, path, format="faiss")
    fi = faiss.read_index(path)
    ivf = faiss.try_extract_index_ivf(fi)
    if ivf is not None:
        ivf.nprobe = 5
    if "IVF16_HNSW" in key:
        faiss.downcast_index(ivf.quantizer).hnsw.efSearch = ai.quantizer.hnsw.efSearch
    xq = data[2]
    a2 = annvil.read_index(path)  # read back by annvil too
    if any(s in key for s in FASTSCAN):
        _compare_fastscan(fi, ai, xq)
    else:
        _compare(*ai.search(xq, 10), *fi.search(xq, 10))
    _compare(*ai.search(xq, 10), *a2.search(xq, 10))


@pytest.mark.parametrize("key", ["Flat", "PQ5x6", "SQ8", "HNSW16", "HNSW16_PQ4x6", "IVF16,PQ4x6", "IDMap,Flat"])
def test_mmap(tmp_path, data, key):
    fi = _faiss_index(key, annvil.METRIC_L2, data)
    path = str(tmp_path / "f.index")
    faiss.write_index(fi, path)
    ai = annvil.read_index(path, annvil.IO_FLAG_MMAP)
    _compare(*fi.search(data[2], 5), *ai.search(data[2], 5))
    # a mapped index still takes adds (copy on write)
    ai.add(data[1][:10]) if "IDMap" not in key else ai.add_with_ids(data[1][:10], np.arange(10) + 10 ** 6)
    assert ai.ntotal == fi.ntotal + 10


def test_streams_and_bytes(tmp_path, data):
    fi = _faiss_index("IVF16,SQ8", annvil.METRIC_L2, data)
    buf = faiss.serialize_index(fi)
    ai = annvil.deserialize_index(buf.tobytes())
    w = annvil.VectorIOWriter()
    annvil.write_index(ai, w, format="faiss")
    b = annvil.vector_to_array(w.data)
    assert np.array_equal(b, buf)
    r = annvil.VectorIOReader()
    annvil.copy_array_to_vector(b, r.data)
    a2 = annvil.read_index(r)
    _compare(*fi.search(data[2], 5), *a2.search(data[2], 5))
    with pytest.raises(annvil.InvalidArgumentError, match="format"):
        annvil.serialize_index(ai, format="faiss2")


def test_unsupported_types_are_named(tmp_path, data):
    xt, xb, _ = data
    nsg = faiss.IndexNSGFlat(D, 16)
    nsg.add(xb[:200])
    with pytest.raises(annvil.IndexFileError, match=r"IndexNSGFlat \(fourcc INSf\) is not supported"):
        annvil.deserialize_index(faiss.serialize_index(nsg))
    rq = faiss.IndexResidualQuantizer(D, 2, 4)
    rq.train(xt)
    with pytest.raises(annvil.IndexFileError, match=r"IndexResidualQuantizer \(fourcc IxRq\) is not supported"):
        annvil.deserialize_index(faiss.serialize_index(rq))
    ivf = faiss.index_factory(D, "IVF8,Flat")
    ivf.train(xt)
    path = str(tmp_path / "bin.index")
    bi = faiss.IndexBinaryFlat(64)
    faiss.write_index_binary(bi, path)
    with pytest.raises(annvil.IndexFileError, match="read_index_binary"):
        annvil.read_index(path)
    faiss.write_index(ivf, path)
    with pytest.raises(annvil.IndexFileError, match="read_index\\b"):
        annvil.read_index_binary(path)
    # a deleted-slot HNSW has no Faiss form
    h = annvil.IndexHNSWFlat(D, 8)
    h.add(xb[:100])
    h.mark_deleted(annvil.IDSelectorRange(0, 3))
    with pytest.raises(annvil.InvalidArgumentError, match="compact"):
        annvil.serialize_index(h, format="faiss")


# ---- binary indexes -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bdata():
    rs = np.random.RandomState(5)
    return rs.randint(0, 256, (2000, 16), dtype=np.uint8), rs.randint(0, 256, (20, 16), dtype=np.uint8)


BKEYS = ["BFlat", "IDMap,BFlat", "IDMap2,BFlat", "BIVF8", "BHNSW16", "BIVF8_HNSW8", "BHash12", "BHash3x10"]


def _bin_index(lib, key, bdata):
    xb, _ = bdata
    if key.startswith("IDMap2"):
        idx = lib.IndexBinaryIDMap2(lib.IndexBinaryFlat(128))
    elif key.startswith("IDMap"):
        idx = lib.IndexBinaryIDMap(lib.IndexBinaryFlat(128))
    else:
        idx = lib.index_binary_factory(128, key)
    idx.train(xb)
    if "IDMap" in key:
        idx.add_with_ids(xb, np.arange(len(xb), dtype="int64") * 3 + 1)
    else:
        idx.add(xb)
    if hasattr(idx, "nprobe"):
        idx.nprobe = 3
    return idx


@pytest.mark.parametrize("key", BKEYS)
def test_binary_both_ways(tmp_path, bdata, key):
    xq = bdata[1]
    fi = _bin_index(faiss, key, bdata)
    path = str(tmp_path / "fb.index")
    faiss.write_index_binary(fi, path)
    ai = annvil.read_index_binary(path)
    D0, I0 = fi.search(xq, 8)
    D1, I1 = ai.search(xq, 8)
    if "HNSW" in key:
        # the same graph; annvil's binary HNSW walk breaks Hamming ties its own
        # way (it is no worse: distances never above Faiss's by more than ties)
        assert np.mean(D1 == D0) > 0.6 and np.abs(D1 - D0).max() <= 4
    else:
        np.testing.assert_array_equal(D1, D0)
        # Hamming ties may come in another order: compare the sets at each distance
        for a, b, d in zip(I0, I1, D0):
            full = d < d[-1]
            assert set(a[full]) == set(b[full])
    b0 = faiss.serialize_index_binary(fi)
    # hash tables: in the order of the map; IndexBinaryIVF's hnsw quantizer is float-side in Faiss
    if "HNSW" not in key and "Hash" not in key:
        assert np.array_equal(annvil.serialize_index_binary(ai, format="faiss"), b0)
    # annvil -> Faiss
    ai = _bin_index(annvil, key, bdata)
    annvil.write_index_binary(ai, path, format="faiss")
    fi = faiss.read_index_binary(path)
    if hasattr(fi, "nprobe"):
        fi.nprobe = ai.nprobe
    D0, I0 = ai.search(xq, 8)
    D1, I1 = fi.search(xq, 8)
    if "HNSW" in key:
        # the same graph; Faiss's binary HNSW walk breaks Hamming ties its own way
        assert np.mean(D1 == D0) > 0.6 and np.abs(D1 - D0).max() <= 4
    else:
        np.testing.assert_array_equal(D1, D0)


# ---- corrupted files ------------------------------------------------------------------------
FUZZ_KEYS = ["Flat", "IDMap2,Flat", "IVF8,SQ4", "IVF8,PQ4x4", "IVF8,PQ5x4fs", "PQ5x4fs", "HNSW8", "HNSW8_PQ4x4",
             "OPQ4,PQ4x4,RFlat"]


def _try_load_and_search(buf, xq, binary=False):
    try:
        idx = annvil.deserialize_index_binary(buf) if binary else annvil.deserialize_index(buf)
    except annvil.IndexFileError:
        return False
    try:
        idx.search(xq, 5)
    except annvil.AnnvilError:
        pass
    return True


@pytest.mark.parametrize("key", FUZZ_KEYS)
def test_truncated_and_mutated_files(data, key):
    xt, xb, xq = data
    fi = faiss.index_factory(D, key)
    fi.train(xt)
    if "IDMap" in key:
        fi.add_with_ids(xb[:300], np.arange(300, dtype="int64"))
    else:
        fi.add(xb[:300])
    buf = faiss.serialize_index(fi)
    n = len(buf)
    # every prefix at a stride (and the first bytes all) must raise
    cuts = sorted(set(list(range(0, 64)) + list(range(0, n, max(1, n // 150))) + [n - 1]))
    for cut in cuts:
        with pytest.raises(annvil.IndexFileError):
            annvil.deserialize_index(buf[:cut])
    with pytest.raises(annvil.IndexFileError, match="trailing"):
        annvil.deserialize_index(np.concatenate([buf, np.zeros(3, np.uint8)]))
    rng = np.random.RandomState(hash(key) % 2 ** 31)
    for _trial in range(150):
        b = buf.copy()
        for _ in range(rng.randint(1, 4)):
            pos = rng.randint(0, n) if rng.rand() < 0.5 else rng.randint(0, min(n, 400))
            b[pos] = rng.randint(0, 256) if rng.rand() < 0.7 else b[pos] ^ 0x80
        _try_load_and_search(b, xq[:3])


def test_binary_truncated_and_mutated(bdata):
    fi = faiss.index_binary_factory(128, "BIVF8")
    fi.train(bdata[0])
    fi.add(bdata[0][:200])
    for key, idx in [("BIVF8", fi), ("BHNSW8", faiss.index_binary_factory(128, "BHNSW8"))]:
        if key == "BHNSW8":
            idx.add(bdata[0][:200])
        buf = faiss.serialize_index_binary(idx)
        n = len(buf)
        for cut in range(0, n, max(1, n // 100)):
            with pytest.raises(annvil.IndexFileError):
                annvil.deserialize_index_binary(buf[:cut])
        rng = np.random.RandomState(11)
        for _ in range(100):
            b = buf.copy()
            pos = rng.randint(0, min(n, 300))
            b[pos] = rng.randint(0, 256)
            _try_load_and_search(b, bdata[1][:3], binary=True)


def test_crafted_sizes_do_not_allocate(data):
    """Huge counts in a small file are refused before any allocation."""
    fi = faiss.IndexFlatL2(D)
    fi.add(data[1][:10])
    buf = faiss.serialize_index(fi).copy()
    # ntotal (bytes 8..16 after the fourcc and d) and the vector count (bytes 37..45)
    for off in (8, 37):
        b = buf.copy()
        b[off:off + 8] = np.frombuffer(np.int64(2 ** 60).tobytes(), np.uint8)
        with pytest.raises(annvil.IndexFileError):
            annvil.deserialize_index(b)
    # nested indexes deeper than Faiss allows
    nested = b"".join([b"IxMp" + buf[4:4 + 33].tobytes()] * 60) + buf.tobytes()
    with pytest.raises(annvil.IndexFileError):
        annvil.deserialize_index(np.frombuffer(nested, np.uint8))
