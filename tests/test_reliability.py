"""Reliability guarantees (README "Threads" and "Index files"): concurrent
reads and writes, exceptions raised inside parallel loops, no silent data
loss, crash-safe writes, HNSW connectivity, and bad input that always ends in
an annvil exception."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import deque

import numpy as np
import pytest

import annvil

D = 24
RNG = np.random.default_rng(3)
XT = RNG.random((2000, D), dtype="float32")

# (name, factory string, uses add_with_ids, supports remove_ids)
FAMILIES = [
    ("Flat", "Flat", False, False),
    ("IDMap2", "IDMap2,Flat", True, True),
    ("IVFFlat", "IVF16,Flat", True, True),
    ("IVFPQ", "IVF16,PQ8", True, True),
    ("IVFSQ8", "IVF16,SQ8", True, True),
    ("FastScan", "IVF16,PQ8x4fs", True, True),
    ("HNSW", "HNSW16", False, False),
    ("IDMapHNSW", "IDMap,HNSW16", True, False),
    ("HNSWSQ", "HNSW16_SQ8", False, False),
    ("SQ8", "SQ8", False, False),
    ("PQ", "PQ8", False, False),
]


def _make(fac):
    idx = annvil.index_factory(D, fac)
    if not idx.is_trained:
        idx.train(XT)
    return idx


# ---- concurrency -------------------------------------------------------------------
@pytest.mark.parametrize("name,fac,with_ids,remove", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_concurrent_add_remove_search(name, fac, with_ids, remove):
    """One writer adds (and removes) while two threads search and reconstruct:
    nothing crashes, and every result id was added at some point, with no
    duplicates in a row."""
    idx = _make(fac)
    rng = np.random.default_rng(0)
    added = set()
    state = {"n": 0}
    lock = threading.Lock()

    def add_batch(m):
        x = rng.random((m, D), dtype="float32")
        if with_ids:
            ids = (np.arange(state["n"], state["n"] + m) * 7 + 3).astype("int64")
            with lock:
                added.update(ids.tolist())
            idx.add_with_ids(x, ids)
        else:
            idx.add(x)
        state["n"] += m

    add_batch(500)
    stop = time.time() + 1.2
    errors = []

    def writer():
        try:
            while time.time() < stop:
                add_batch(50)
                if remove:
                    with lock:
                        some = list(added)[:10]
                    idx.remove_ids(np.array(some, dtype="int64"))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader(seed):
        r = np.random.default_rng(seed)
        try:
            while time.time() < stop:
                _, I = idx.search(r.random((8, D), dtype="float32"), 10)
                for row in I:
                    got = row[row >= 0].tolist()
                    assert len(set(got)) == len(got), f"duplicate ids in {row}"
                    if with_ids:
                        with lock:
                            assert all(v in added for v in got), f"ids never added in {row}"
                    else:
                        assert max(got, default=0) < state["n"] + 50
                if not with_ids and idx.ntotal:
                    idx.reconstruct(int(r.integers(idx.ntotal)))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert idx.ntotal > 500


def test_writer_is_not_starved_by_readers():
    idx = annvil.IndexFlatL2(D)
    idx.add(RNG.random((20000, D), dtype="float32"))
    stop = threading.Event()

    def reader():
        q = RNG.random((4, D), dtype="float32")
        while not stop.is_set():
            idx.search(q, 5)

    ts = [threading.Thread(target=reader) for _ in range(3)]
    for t in ts:
        t.start()
    t0 = time.time()
    for _ in range(20):
        idx.add(RNG.random((10, D), dtype="float32"))
    elapsed = time.time() - t0
    stop.set()
    for t in ts:
        t.join()
    assert idx.ntotal == 20200
    assert elapsed < 30


# ---- exceptions inside parallel loops ------------------------------------------------
PARALLEL_ADD = ["IVFFlat", "IVFPQ", "IVFSQ8", "FastScan", "HNSW", "IDMapHNSW", "HNSWSQ", "SQ8", "PQ"]


@pytest.mark.parametrize("name,fac,with_ids,remove", FAMILIES, ids=[f[0] for f in FAMILIES])
@pytest.mark.parametrize("op", ["add", "search"])
def test_exception_in_parallel_loop_is_raised_and_index_unchanged(name, fac, with_ids, remove, op):
    if op == "add" and name not in PARALLEL_ADD:
        pytest.skip("this family's add has no parallel loop")
    idx = _make(fac)
    x = RNG.random((3000, D), dtype="float32")
    if with_ids:
        idx.add_with_ids(x, np.arange(len(x), dtype="int64"))
    else:
        idx.add(x)
    q = x[:64]
    D0, I0 = idx.search(q, 5)
    n0 = idx.ntotal
    for countdown in (1, 2):
        annvil._core._inject_parallel_fault(countdown)
        try:
            with pytest.raises(RuntimeError, match="injected fault"):
                if op == "add":
                    # the raw method: the input checks in Python have loops of their own
                    idx._add(x[:2500]) if not with_ids else idx._add_with_ids(x[:2500], np.arange(5000, 7500))
                else:
                    idx._search(q, 5, None)
        finally:
            annvil._core._inject_parallel_fault(0)
        assert idx.ntotal == n0
        D1, I1 = idx.search(q, 5)
        if "HNSW" in name:
            # a rolled-back insertion may have pruned a few old links
            assert (I1 == I0).mean() > 0.95
            assert I1.max() < n0
        else:
            np.testing.assert_array_equal(I1, I0)
            np.testing.assert_allclose(D1, D0)


def test_untrained_scalar_quantizer_raises_instead_of_aborting():
    idx = annvil.IndexScalarQuantizer(D, annvil.ScalarQuantizer.QT_8bit)
    idx.is_trained = True  # a client forcing the flag
    with pytest.raises(annvil.NotTrainedError):
        idx.add(RNG.random((5000, D), dtype="float32"))
    assert idx.ntotal == 0


# ---- no silent data loss -------------------------------------------------------------------
@pytest.mark.parametrize("fac", ["Flat", "IVF4,Flat", "IVF4,PQ8", "IVF4,PQ8x4fs", "IVF4,SQ8", "HNSW8"])
def test_norm_overflow_is_rejected_naming_the_row(fac):
    idx = annvil.index_factory(D, fac)
    if not idx.is_trained:
        idx.train(XT)
    x = RNG.standard_normal((5, D)).astype("float32")
    x[3] *= 1e30
    with pytest.raises(annvil.InvalidArgumentError, match="row 3"):
        idx.add(x)
    assert idx.ntotal == 0
    idx.add(x[:3])
    assert idx.ntotal == 3


# ---- bad input ends in annvil exceptions -----------------------------------------------------
def test_bad_k_output_arrays_and_keys_raise_annvil_errors():
    idx = annvil.IndexFlatL2(8)
    idx.add(RNG.random((10, 8), dtype="float32"))
    q = RNG.random((2, 8), dtype="float32")
    with pytest.raises(annvil.InvalidArgumentError):
        idx.search(q, 2**62)
    with pytest.raises(annvil.InvalidArgumentError):
        idx.search(q, 3, D=np.zeros((2, 2), "float32"))
    with pytest.raises(annvil.InvalidArgumentError):
        idx.search(q, 3, I=np.zeros((5,), "int64"))
    with pytest.raises(annvil.InvalidTypeError):
        idx.search(q, 3, I=np.zeros((2, 3), "float32"))
    with pytest.raises(annvil.InvalidArgumentError):
        idx.reconstruct(2**64)
    with pytest.raises(annvil.InvalidArgumentError):
        idx.reconstruct(-1)
    D_, I_ = np.empty((2, 3), "float32"), np.empty((2, 3), "int64")
    out = idx.search(q, 3, D=D_, I=I_)
    assert out[0] is D_ and out[1] is I_
    np.testing.assert_array_equal(I_, idx.search(q, 3)[1])


# ---- crash-safe writes ----------------------------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys, numpy as np, annvil
    path = sys.argv[1]
    x = np.random.default_rng(0).random((60000, 64), dtype="float32")
    idx = annvil.IndexFlatL2(64)
    idx.add(x)
    print("ready", flush=True)
    while True:
        annvil.write_index(idx, path)
""")


def test_killed_writer_leaves_old_file_intact_and_no_leftovers(tmp_path):
    path = str(tmp_path / "index.bin")
    old = annvil.IndexFlatL2(64)
    old.add(np.ones((7, 64), "float32"))
    annvil.write_index(old, path)
    rng = np.random.default_rng(1)
    deadline = time.time() + 12
    kills = 0
    while kills < 8 and time.time() < deadline:
        p = subprocess.Popen([sys.executable, "-c", _WRITER, path], stdout=subprocess.PIPE,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.0, 0.15)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        got = annvil.read_index(path)  # the old file or a complete new one
        assert got.ntotal in (7, 60000)
    assert kills >= 3
    # the next write removes whatever a killed writer left
    annvil.write_index(old, path)
    assert sorted(os.listdir(tmp_path)) == ["index.bin"]
    assert annvil.read_index(path).ntotal == 7


def test_stale_temporary_file_of_dead_writer_is_removed(tmp_path):
    path = str(tmp_path / "x.idx")
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # a pid that no longer runs
    stale = tmp_path / f"x.idx.tmp-{p.pid}-deadbeef"
    stale.write_bytes(b"partial")
    other = tmp_path / "y.idx.tmp-1-deadbeef"  # another target: left alone
    other.write_bytes(b"keep")
    idx = annvil.IndexFlatL2(4)
    annvil.write_index(idx, path)
    assert not stale.exists() and other.exists()


# ---- HNSW connectivity ----------------------------------------------------------------------
def _unreachable(idx):
    """Vertices no path of level-0 links leads to from the entry point (a search
    finds a vertex only through level 0: the upper levels pick where it starts)."""
    g = idx.hnsw
    seen = np.zeros(idx.ntotal, bool)
    q = deque([g.entry_point])
    seen[g.entry_point] = True
    while q:
        v = q.popleft()
        for u in g.get_neighbors(int(v), 0):
            if u >= 0 and not seen[u]:
                seen[u] = True
                q.append(u)
    return int((~seen).sum())


@pytest.mark.parametrize("M", [4, 8, 16])
def test_hnsw_every_vertex_reachable(M):
    for seed in range(3):
        x = np.random.default_rng(seed).random((2000, 32), dtype="float32")
        idx = annvil.IndexHNSWFlat(32, M)
        idx.add(x)
        assert _unreachable(idx) == 0
        # incremental adds, then removal and compaction
        for j in range(4):
            idx.add(np.random.default_rng(100 * seed + 10 + j).random((250, 32), dtype="float32"))
        assert _unreachable(idx) == 0
        idx.remove_ids(np.arange(0, 3000, 3, dtype="int64"))
        if hasattr(idx, "compact") and not idx.remove_ids_shifts():
            idx.compact()
        assert _unreachable(idx) == 0
        # every vector finds itself
        idx.hnsw.efSearch = 64
        D_, I_ = idx.search(idx.reconstruct_n(0, idx.ntotal), 1)
        assert (I_[:, 0] == np.arange(idx.ntotal)).mean() > (0.9 if M == 4 else 0.99)
