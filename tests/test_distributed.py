"""annvil.distributed.ShardedIndex on a local Ray instance: results equal to one
index (and to Faiss), IVF routing, dead replicas, restarts from snapshot + log,
save/load, bad input.  The write-ahead log and the replica's recovery are also
tested without Ray.

One local Ray instance for the module (about 10-20 s to start); every index is
small and closed at the end of its test, so the CPUs it reserved are free for
the next one.
"""
import os
import random
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import annvil

ray = pytest.importorskip("ray", reason="annvil.distributed needs Ray: pip install annvil[distributed]")
faiss = pytest.importorskip("faiss")

from annvil.distributed import ShardedIndex, shard_of_ids  # noqa: E402
from annvil.distributed._shard import ShardReplica  # noqa: E402
from annvil.distributed._wal import OP_ADD, OP_REMOVE, WriteAheadLog, read_records  # noqa: E402

D = 16
METRICS = [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT]


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def data(n, seed, d=D):
    return np.random.default_rng(seed).standard_normal((n, d)).astype("float32")


def faiss_flat(xb, metric):
    ref = faiss.IndexFlatL2(xb.shape[1]) if metric == annvil.METRIC_L2 else faiss.IndexFlatIP(xb.shape[1])
    ref.add(xb)
    return ref


# ---- results ------------------------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_id_mode_equals_single_index(local_ray, metric):
    xb, xq = data(1500, 1), data(37, 2)
    with ShardedIndex(D, "Flat", 3, metric=metric) as idx:
        idx.add(xb[:700])
        idx.add_with_ids(xb[700:], np.arange(700, 1500))
        assert idx.ntotal == 1500
        # every vector is on the shard of its id hash
        for s in range(3):
            ids = idx.ids(s)
            assert (shard_of_ids(ids, 3) == s).all()
        Dd, Id = idx.search(xq, 10)
        single = annvil.index_factory(D, "Flat", metric)
        single.add(xb)
        Ds, Is = single.search(xq, 10)
        Df, If = faiss_flat(xb, metric).search(xq, 10)
        np.testing.assert_array_equal(Id, Is)
        np.testing.assert_array_equal(Id, If)
        np.testing.assert_allclose(Dd, Df, rtol=1e-5, atol=1e-4)
        assert Dd.dtype == np.float32 and Id.dtype == np.int64
        # k beyond ntotal: Faiss's -1 padding
        small = xq[:2]
        Dk, Ik = idx.search(small, 1600)
        Dfk, Ifk = faiss_flat(xb, metric).search(small, 1600)
        assert (Ik[:, 1500:] == -1).all() and (Ifk[:, 1500:] == -1).all()
        np.testing.assert_array_equal(np.sort(Ik[:, :1500], 1), np.sort(Ifk[:, :1500], 1))
        # range search: the same (id, distance) sets as Faiss
        radius = float(np.median((Df[:, 5] + Df[:, 6]) / 2))  # between stored distances, not on one
        lims, Dr, Ir = idx.range_search(xq, radius)
        flims, fD, fI = faiss_flat(xb, metric).range_search(xq, radius)
        assert lims.shape == (38,)
        for q in range(37):
            got = set(Ir[lims[q]:lims[q + 1]].tolist())
            want = set(fI[flims[q]:flims[q + 1]].tolist())
            assert got == want
        # reconstruct and remove_ids by id
        np.testing.assert_array_equal(idx.reconstruct(1234), xb[1234])
        np.testing.assert_array_equal(idx.reconstruct_batch([3, 900]), xb[[3, 900]])
        assert idx.remove_ids(np.array([Is[0, 0], 99999])) == 1
        assert idx.ntotal == 1499
        D2, I2 = idx.search(xq[:1], 10)
        assert I2[0, 0] == Is[0, 1]
        with pytest.raises(annvil.InvalidArgumentError):
            idx.reconstruct(int(Is[0, 0]))


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_ivf_mode_equals_single_index_and_routes(local_ray, metric, tmp_path):
    xt, xq = data(3000, 3), data(60, 4)
    # half a CPU each: the loaded copy (save / load below) runs beside this one
    with ShardedIndex(D, "IVF32,Flat", 4, mode="ivf", metric=metric, num_cpus_per_replica=0.5) as idx:
        with pytest.raises(annvil.NotTrainedError):
            idx.add(xt)
        idx.train(xt)
        idx.add(xt)
        owner = idx.list_owner
        assert owner.shape == (32,) and set(owner.tolist()) == {0, 1, 2, 3}
        # the single index: the same trained IVF (the template), every vector in it
        single = annvil.clone_index(idx._template)
        single.add(xt)
        ivf_lists = single.quantizer.search(xt, 1)[1][:, 0]
        for s in range(4):  # each shard holds exactly the vectors of its lists
            np.testing.assert_array_equal(idx.ids(s), np.flatnonzero(owner[ivf_lists] == s))
        Df, If = faiss_flat(xt, metric).search(xq, 10)
        for nprobe in (1, 3):
            before = [st["queries_served"] for st in idx.stats()]
            Dd, Id = idx.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=nprobe))
            after = [st["queries_served"] for st in idx.stats()]
            single.nprobe = nprobe
            Ds, Is = single.search(xq, 10)
            np.testing.assert_array_equal(Id, Is)
            np.testing.assert_allclose(Dd, Ds, rtol=1e-5, atol=1e-4)
            r_dist = np.mean([len(set(a) & set(b)) for a, b in zip(Id, If)]) / 10
            r_single = np.mean([len(set(a) & set(b)) for a, b in zip(Is, If)]) / 10
            assert abs(r_dist - r_single) <= 0.005
            # each query went only to the shards owning one of its probed lists
            routes = idx.route(xq, params=annvil.SearchParametersIVF(nprobe=nprobe))
            probed = single.quantizer.search(xq, nprobe)[1]
            for q in range(len(xq)):
                np.testing.assert_array_equal(routes[q], np.unique(owner[probed[q]]))
            expected = np.bincount(np.concatenate(routes), minlength=4)
            np.testing.assert_array_equal(np.subtract(after, before), expected)
            if nprobe == 1:
                assert expected.sum() == len(xq)  # one list: one shard per query
        # an empty batch
        De, Ie = idx.search(np.zeros((0, D), np.float32), 4)
        assert De.shape == (0, 4) and Ie.shape == (0, 4)
        le, _, _ = idx.range_search(np.zeros((0, D), np.float32), 1.0)
        assert le.shape == (1,)
        # the default nprobe of the index drives the routing too
        idx.nprobe = 2
        single.nprobe = 2
        np.testing.assert_array_equal(idx.search(xq, 5)[1], single.search(xq, 5)[1])
        # range search over the owning shards only equals the single index's
        radius = float(np.median((Ds[:, 3] + Ds[:, 4]) / 2))
        single.nprobe = 3
        lims, Dr, Ir = idx.range_search(xq, radius, params=annvil.SearchParametersIVF(nprobe=3))
        slims, sD, sI = single.range_search(xq, radius)
        for q in range(len(xq)):
            assert set(Ir[lims[q]:lims[q + 1]].tolist()) == set(sI[slims[q]:slims[q + 1]].tolist())
        # remove and reconstruct reach the owning shard
        assert idx.remove_ids(np.array([5, 6, 7])) == 3
        assert idx.ntotal == 2997
        np.testing.assert_array_equal(idx.reconstruct(8), xt[8])
        if metric == annvil.METRIC_L2:
            # save / load round trip: same layout, same results, writes keep working
            idx.save(tmp_path / "saved")
            D1, I1 = idx.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=3))
            with ShardedIndex.load(tmp_path / "saved", num_cpus_per_replica=0.5) as back:
                assert (back.n_shards, back.mode, back.ntotal, back.nprobe) == (4, "ivf", 2997, 2)
                np.testing.assert_array_equal(back.list_owner, owner)
                D2, I2 = back.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=3))
                np.testing.assert_array_equal(I1, I2)
                np.testing.assert_array_equal(D1, D2)
                back.add(xq)
                assert back.ntotal == 3057
                np.testing.assert_array_equal(back.reconstruct(3000), xq[0])  # ids continue


# ---- faults -------------------------------------------------------------------------
def test_dead_replica_mid_search_gives_the_right_answer(local_ray):
    xb, xq = data(20000, 5, d=32), data(1500, 6, d=32)
    with ShardedIndex(32, "Flat", 2, replicas=2) as idx:
        idx.add(xb)
        Df, If = faiss_flat(xb, annvil.METRIC_L2).search(xq, 5)
        victims = idx.actors()
        for trial in range(2):
            pids = [[st["pid"] for st in s["replicas"]] for s in idx.stats()]
            victim = victims[trial % 2][idx._rr[trial % 2] % 2]  # the replica the next search picks
            killer = threading.Timer(0.1, lambda v=victim: ray.kill(v, no_restart=False))
            killer.start()
            retries = idx.read_retries
            t = time.monotonic()
            Dd, Id = idx.search(xq, 5)
            killer.join()
            np.testing.assert_array_equal(Id, If)
            np.testing.assert_allclose(Dd, Df, rtol=1e-5, atol=1e-3)
            if time.monotonic() - t > 1.0:  # the kill surely landed while the victim searched
                assert idx.read_retries > retries
            # Ray restarted the dead one (new process), with its shard reloaded
            deadline = time.monotonic() + 60
            while True:
                st = idx.stats()
                new = [[r.get("pid") for r in s["replicas"]] for s in st]
                if all("error" not in r for s in st for r in s["replicas"]) and new != pids:
                    break
                assert time.monotonic() < deadline, "the killed replica did not come back"
                time.sleep(0.2)
            assert all(r["ntotal"] == s["ntotal"] for s in st for r in s["replicas"])
        # the restarted replicas serve correct results themselves
        for _ in range(4):
            np.testing.assert_array_equal(idx.search(xq[:50], 5)[1], If[:50])


def kill_trial(idx, rng, n_batches=6, batch=200, d=D):
    """Add batches while a thread kills random shard actors at random moments;
    then kill one more after the last acknowledged add.  Returns (acked ids, vectors)."""
    acked_ids, acked_x, kills = [], [], []
    stop = threading.Event()
    actors = [a for row in idx.actors() for a in row]

    def killer():  # one failure at a time: kill, wait until Ray has restarted it, repeat
        while not stop.is_set():
            time.sleep(rng.uniform(0.0, 0.3))
            if stop.is_set():
                break
            victim = actors[rng.randrange(len(actors))]
            ray.kill(victim, no_restart=False)
            kills.append(victim)
            wait_alive(victim)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    try:
        for _ in range(n_batches):
            x = np.random.default_rng(rng.randrange(1 << 30)).standard_normal((batch, d)).astype("float32")
            ids = np.array(rng.sample(range(1 << 40), batch), dtype=np.int64)
            idx.add_with_ids(x, ids)  # returns only once every shard logged it
            acked_ids.append(ids)
            acked_x.append(x)
            if rng.random() < 0.3:
                gone = ids[:rng.randrange(1, 20)]
                assert idx.remove_ids(gone) == gone.size
                acked_ids[-1], acked_x[-1] = ids[gone.size:], x[gone.size:]
    finally:
        stop.set()
        th.join()
    ray.kill(actors[rng.randrange(len(actors))], no_restart=False)
    return np.concatenate(acked_ids), np.concatenate(acked_x), len(kills) + 1


def wait_alive(actor, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ray.get(actor.ping.remote(), timeout=5)
            return
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            time.sleep(0.1)
    raise AssertionError("a killed shard actor was not restarted")


def check_no_lost_write(idx, ids, x):
    order = np.argsort(ids)
    stored = idx.ids()  # exactly the acknowledged ids: none lost, none applied twice
    np.testing.assert_array_equal(stored, ids[order])
    assert idx.ntotal == ids.size
    pick = np.random.default_rng(0).choice(ids.size, 64, replace=False)
    np.testing.assert_array_equal(idx.reconstruct_batch(ids[pick]), x[pick])
    _, I = idx.search(x[pick], 1)
    np.testing.assert_array_equal(I[:, 0], ids[pick])


def test_killed_shard_actor_restarts_without_losing_acknowledged_writes(local_ray):
    rng = random.Random(1234)
    with ShardedIndex(D, "Flat", 2) as idx:
        restarts = 0
        for _trial in range(3):
            ids, x, _ = kill_trial(idx, rng)
            check_no_lost_write(idx, ids, x)
            restarts += sum(r["restarted"] for s in idx.stats() for r in s["replicas"])
            idx.remove_ids(ids)
            assert idx.ntotal == 0
        assert restarts >= 1
        replayed = [r["replayed_on_start"] for s in idx.stats() for r in s["replicas"]]
        assert max(replayed) > 0  # a restart replayed the log after its snapshot


def test_replicas_keep_acknowledged_writes_through_kills(local_ray):
    rng = random.Random(99)
    with ShardedIndex(D, "Flat", 2, replicas=2) as idx:
        ids, x, _ = kill_trial(idx, rng, n_batches=4)
        check_no_lost_write(idx, ids, x)
        # every replica of a shard holds the same ids
        for s in range(2):
            a, b = idx.actors(s)
            wait_alive(a)  # a direct call to a restarting actor fails at once (ActorUnavailableError)
            wait_alive(b)
            np.testing.assert_array_equal(ray.get(a.ids.remote()), ray.get(b.ids.remote()))
        idx.checkpoint()  # snapshot + empty log, then a restart loads the snapshot alone
        st = idx.stats()
        assert all(r["wal_bytes"] == 0 for s in st for r in s["replicas"])
        ray.kill(idx.actors(0)[0], no_restart=False)
        check_no_lost_write(idx, ids, x)


# ---- bad input ------------------------------------------------------------------------
def test_bad_input_gives_clear_errors(local_ray):
    with pytest.raises(ConnectionError, match="cannot reach the Ray cluster"):
        ShardedIndex(D, "Flat", 2, address="127.0.0.1:1")
    with pytest.raises(annvil.InvalidArgumentError, match="host:port"):
        ShardedIndex(D, "Flat", 2, address="nonsense")
    with pytest.raises(annvil.InvalidArgumentError, match="mode"):
        ShardedIndex(D, "Flat", 2, mode="range")
    with pytest.raises(annvil.InvalidArgumentError, match="IVF"):
        ShardedIndex(D, "HNSW16", 2, mode="ivf")
    with pytest.raises(annvil.InvalidArgumentError, match="n_shards"):
        ShardedIndex(D, "Flat", 0)
    with pytest.raises(annvil.InvalidArgumentError, match="CPUs"):
        ShardedIndex(D, "Flat", 2, num_cpus_per_replica=1000)
    with pytest.raises(annvil.InvalidArgumentError):
        ShardedIndex(D, "NoSuchIndex", 2)
    xb = data(300, 7)
    with ShardedIndex(D, "Flat", 2) as idx:
        idx.add(xb)
        with pytest.raises(annvil.InvalidArgumentError, match="dimension"):
            idx.add(data(5, 8, d=D + 1))
        with pytest.raises(annvil.InvalidArgumentError, match="dimension"):
            idx.search(data(5, 8, d=D - 1), 3)
        with pytest.raises(annvil.InvalidArgumentError):
            idx.add_with_ids(xb[:4], np.arange(3))
        with pytest.raises(annvil.InvalidArgumentError):
            idx.add(np.full((2, D), np.nan, np.float32))
        with pytest.raises(annvil.InvalidArgumentError):
            idx.search(xb[:2], 0)
        assert idx.ntotal == 300  # failed calls changed nothing
        with pytest.raises(annvil.InvalidArgumentError, match="unknown shard 7"):
            idx.actors(7)
        with pytest.raises(annvil.InvalidArgumentError, match="unknown shard"):
            idx.ids(-1)
        assert len(idx.actors()) == 2 and len(idx.actors(1)) == 1
        with pytest.raises(annvil.InvalidTypeError):
            idx.remove_ids(annvil.IDSelectorRange(0, 10))
        with pytest.raises(annvil.InvalidArgumentError, match="already holds"):
            ShardedIndex(D, "Flat", 1, storage=idx.storage)
        st = idx.stats()
        assert [s["ntotal"] for s in st] == [int((shard_of_ids(np.arange(300), 2) == s).sum()) for s in range(2)]
        assert all(s["index_bytes"] == s["ntotal"] * D * 4 for s in st)
    with pytest.raises(annvil.IndexFileError):
        ShardedIndex.load(os.path.dirname(__file__))  # no manifest
    with pytest.raises(annvil.InvalidArgumentError, match="d=16"):
        ShardedIndex(D + 1, annvil.IndexFlatL2(D), 2)
    full = annvil.IndexFlatL2(D)
    full.add(xb[:3])
    with pytest.raises(annvil.InvalidArgumentError, match="empty"):
        ShardedIndex(D, full, 2)


def test_trained_template_index_is_shipped_to_every_shard(local_ray):
    xt, xq = data(2000, 11), data(20, 12)
    template = annvil.index_factory(D, "IVF16,Flat", annvil.METRIC_INNER_PRODUCT)
    template.train(xt)
    with ShardedIndex(D, template, 2, mode="ivf") as idx:
        assert idx.is_trained and idx.metric_type == annvil.METRIC_INNER_PRODUCT
        idx.add(xt)
        template.add(xt)
        template.nprobe = idx.nprobe = 4
        np.testing.assert_array_equal(idx.search(xq, 5)[1], template.search(xq, 5)[1])


# ---- the log and the replica without Ray ------------------------------------------------
def test_wal_torn_tail_is_dropped_and_damage_is_reported(tmp_path):
    path = tmp_path / "w.log"
    wal = WriteAheadLog(path)
    x = data(3, 9)
    wal.append(1, OP_ADD, np.array([1, 2, 3]), x)
    wal.append(2, OP_REMOVE, np.array([2]))
    good = wal.size
    wal.append(3, OP_ADD, np.array([4]), x[:1])
    wal.close()
    recs, n = read_records(path)
    assert [r[0] for r in recs] == [1, 2, 3] and n == os.path.getsize(path)
    np.testing.assert_array_equal(recs[0][3], x)
    raw = path.read_bytes()
    for cut in (good + 1, good + 11, len(raw) - 1):  # the process died inside record 3
        path.write_bytes(raw[:cut])
        recs, n = read_records(path)
        assert [r[0] for r in recs] == [1, 2] and n == good
    bad = bytearray(raw)
    bad[40] ^= 0xFF  # inside record 1, with records after it: not a torn write
    path.write_bytes(bytes(bad))
    with pytest.raises(annvil.IndexFileError, match="CRC"):
        read_records(path)
    rng = np.random.default_rng(0)
    for _ in range(200):  # random damage: records or IndexFileError, never another exception
        junk = bytearray(raw)
        for p in rng.integers(0, len(junk), 3):
            junk[p] = rng.integers(0, 256)
        path.write_bytes(bytes(junk[:rng.integers(0, len(junk) + 1)]))
        try:
            read_records(path)
        except annvil.IndexFileError:
            pass


def test_replica_recovers_snapshot_plus_log(tmp_path):
    template = annvil.serialize_index(annvil.IndexIDMap2(annvil.IndexFlatL2(D))).tobytes()
    rep = ShardReplica(0, 0, tmp_path, None)
    assert rep.seq == -1 and rep.install(0, template)[0] == "ok"
    x = data(50, 10)
    assert rep.apply(1, OP_ADD, np.arange(50), x)[0] == "ok"
    assert rep.apply(1, OP_ADD, np.arange(50), x)[0] == "dup"  # a retry after a restart
    assert rep.apply(3, OP_REMOVE, np.array([1]))[0] == "gap"
    rep.checkpoint()
    assert rep.apply(2, OP_REMOVE, np.array([0, 1]))[:2] == ("ok", 2)
    # a resent write answers with the count of its first application (remove_ids' result)
    assert rep.apply(2, OP_REMOVE, np.array([0, 1]))[:2] == ("dup", 2)
    assert rep.apply(3, OP_ADD, np.array([100]), x[:1])[0] == "ok"
    with pytest.raises(annvil.InvalidArgumentError):
        rep.apply(4, OP_ADD, np.array([7]), data(1, 1, d=D + 1))
    assert rep.seq == 3
    del rep  # "crash": nothing is flushed on the way out
    back = ShardReplica(0, 0, tmp_path, None)
    assert back.seq == 3 and back.replayed == 2
    assert back.apply(3, OP_ADD, np.array([100]), x[:1])[:2] == ("dup", 1)  # recomputed by the replay
    np.testing.assert_array_equal(back.ids(), np.r_[np.arange(2, 50), 100])
    np.testing.assert_array_equal(back.index.reconstruct(100), x[0])
    files = sorted(os.listdir(tmp_path))
    assert files == ["CURRENT", "snapshot-2.annvil", "wal-2.log"]  # install: gen 1, checkpoint: gen 2


def test_import_annvil_does_not_import_ray_and_missing_ray_is_explained():
    env = dict(os.environ)
    code = "import sys, annvil; assert 'ray' not in sys.modules, 'import annvil imported ray'"
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    code = ("import sys; sys.modules['ray'] = None\n"
            "try:\n    import annvil.distributed\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True).stdout
    assert "pip install annvil[distributed]" in out
