"""Index files, serialization and pickling; corrupt, truncated and foreign
files raise annvil.IndexFileError."""
import os
import pickle

import numpy as np
import pytest

import annvil


def make_indexes(rng):
    d = 12
    xb = rng.standard_normal((300, d)).astype(np.float32)
    out = []
    for idx in [annvil.IndexFlatL2(d), annvil.IndexFlatIP(d), annvil.IndexFlat(d, annvil.METRIC_INNER_PRODUCT)]:
        idx.add(xb)
        out.append(idx)
    for cls in [annvil.IndexIDMap, annvil.IndexIDMap2]:
        idx = cls(annvil.IndexFlatL2(d))
        idx.add_with_ids(xb, np.arange(300, dtype=np.int64) * 7 + 3)
        out.append(idx)
    out.append(annvil.IndexFlatL2(d))  # empty
    return out, xb


def same_results(a, b, xq):
    assert type(a) is type(b)
    assert a.ntotal == b.ntotal and a.d == b.d and a.metric_type == b.metric_type
    if a.ntotal:
        Da, Ia = a.search(xq, 5)
        Db, Ib = b.search(xq, 5)
        np.testing.assert_array_equal(Ia, Ib)
        np.testing.assert_array_equal(Da, Db)


def test_round_trips(rng, tmp_path):
    indexes, xb = make_indexes(rng)
    xq = xb[:20] + 0.01
    for i, idx in enumerate(indexes):
        same_results(idx, annvil.deserialize_index(annvil.serialize_index(idx)), xq)
        same_results(idx, pickle.loads(pickle.dumps(idx)), xq)
        path = tmp_path / f"i{i}.annvil"
        annvil.write_index(idx, path)
        same_results(idx, annvil.read_index(str(path)), xq)
        same_results(idx, annvil.read_index(path, mmap=True), xq)
        same_results(idx, annvil.read_index(path, annvil.IO_FLAG_MMAP), xq)
    assert sorted(os.listdir(tmp_path)) == sorted(f"i{i}.annvil" for i in range(len(indexes)))  # no temp files


def test_pickle_protocols_and_out_of_band_buffers(rng):
    indexes, xb = make_indexes(rng)
    xq = xb[:20] + 0.01
    for idx in indexes + [annvil.index_factory(12, "HNSW8"), annvil.index_factory(12, "PQ4x4fs")]:
        if not idx.is_trained:
            idx.train(xb)
        if idx.ntotal == 0 and not isinstance(idx, annvil.IndexFlatL2):
            idx.add(xb)
        for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
            same_results(idx, pickle.loads(pickle.dumps(idx, protocol=proto)), xq)
        # protocol 5 out of band: the index image is handed to the callback, the pickle is tiny
        bufs = []
        data = pickle.dumps(idx, protocol=5, buffer_callback=bufs.append)
        assert len(bufs) == 1 and len(data) < 200
        assert memoryview(bufs[0]).nbytes == annvil.serialize_index(idx).nbytes
        same_results(idx, pickle.loads(data, buffers=bufs), xq)
        with pytest.raises(pickle.UnpicklingError):
            pickle.loads(data)  # the out-of-band buffer is required


def test_idmap2_round_trip_keeps_reverse_map(rng):
    indexes, xb = make_indexes(rng)
    idmap2 = indexes[4]
    back = annvil.deserialize_index(annvil.serialize_index(idmap2))
    np.testing.assert_array_equal(back.reconstruct(7 * 5 + 3), xb[5])


def test_mmap_index_is_usable_and_copy_on_write(rng, tmp_path):
    d = 16
    xb = rng.standard_normal((1000, d)).astype(np.float32)
    idx = annvil.IndexFlatL2(d)
    idx.add(xb)
    path = tmp_path / "flat.annvil"
    annvil.write_index(idx, path)
    m = annvil.read_index(path, mmap=True)
    np.testing.assert_array_equal(m.reconstruct_n(0, 1000), xb)
    m.add(xb[:10])  # copies out of the mapping first
    assert m.ntotal == 1010
    # the file is untouched
    again = annvil.read_index(path)
    assert again.ntotal == 1000
    os.remove(path)  # the mapping (if any) stays valid
    np.testing.assert_array_equal(m.reconstruct(5), xb[5])


def test_overwrite_is_atomic(rng, tmp_path):
    d = 4
    a = annvil.IndexFlatL2(d)
    a.add(rng.standard_normal((10, d)))
    path = tmp_path / "x.annvil"
    annvil.write_index(a, path)
    a.add(rng.standard_normal((10, d)))
    annvil.write_index(a, path)
    assert annvil.read_index(path).ntotal == 20


def test_truncated_files(rng, tmp_path):
    idx = make_indexes(rng)[0][3]  # IDMap: nested record
    data = annvil.serialize_index(idx).tobytes()
    cuts = sorted(set([0, 1, 7, 8, 20, 63, 64, 65, 100, len(data) // 2, len(data) - 9, len(data) - 8,
                       len(data) - 1]))
    for cut in cuts:
        with pytest.raises(annvil.IndexFileError):
            annvil.deserialize_index(np.frombuffer(data[:cut], dtype=np.uint8))
        p = tmp_path / "t.annvil"
        p.write_bytes(data[:cut])
        with pytest.raises(annvil.IndexFileError):
            annvil.read_index(p)
        with pytest.raises(annvil.IndexFileError):
            annvil.read_index(p, mmap=True)


def test_flipped_bytes(rng):
    idx = make_indexes(rng)[0][3]
    data = bytearray(annvil.serialize_index(idx).tobytes())
    positions = list(range(0, 64, 3)) + list(rng.integers(64, len(data), 200)) + [len(data) - 1]
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        with pytest.raises(annvil.IndexFileError):
            annvil.deserialize_index(np.frombuffer(bytes(bad), dtype=np.uint8))


def test_corruption_detected_in_mmap_structure(rng, tmp_path):
    """mmap skips the checksum but still validates structure: no crash."""
    idx = make_indexes(rng)[0][3]
    data = bytearray(annvil.serialize_index(idx).tobytes())
    p = tmp_path / "m.annvil"
    for pos in list(range(64, 140)):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        p.write_bytes(bytes(bad))
        try:
            m = annvil.read_index(p, mmap=True)
        except annvil.IndexFileError:
            continue
        m.search(np.zeros((1, m.d), np.float32), 3)  # must not crash
        with pytest.raises(annvil.IndexFileError):
            annvil.read_index(p, mmap=True, verify=True)


def test_foreign_files(rng, tmp_path):
    faiss = pytest.importorskip("faiss")
    fidx = faiss.IndexFlatL2(4)
    fidx.add(rng.standard_normal((5, 4)).astype(np.float32))
    p = tmp_path / "faiss.index"
    faiss.write_index(fidx, str(p))
    # Faiss's own format is read (tests/test_faiss_format.py covers it)
    assert annvil.read_index(p).ntotal == 5
    p2 = tmp_path / "random.bin"
    p2.write_bytes(rng.bytes(1000))
    with pytest.raises(annvil.IndexFileError):
        annvil.read_index(p2)
    p3 = tmp_path / "empty.bin"
    p3.write_bytes(b"")
    with pytest.raises(annvil.IndexFileError):
        annvil.read_index(p3)
    with pytest.raises(annvil.IndexFileError):
        annvil.read_index(p3, mmap=True)
    with pytest.raises(OSError):
        annvil.read_index(tmp_path / "missing.annvil")
    with pytest.raises(OSError):
        annvil.write_index(annvil.IndexFlatL2(3), tmp_path / "no" / "such" / "dir.annvil")
    with pytest.raises(TypeError):
        annvil.serialize_index(fidx)


def test_future_version_rejected(rng):
    idx = annvil.IndexFlatL2(4)
    data = bytearray(annvil.serialize_index(idx).tobytes())
    data[8] = 99
    with pytest.raises(annvil.IndexFileError, match="version"):
        annvil.deserialize_index(np.frombuffer(bytes(data), dtype=np.uint8))
