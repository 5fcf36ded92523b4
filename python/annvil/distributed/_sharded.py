"""ShardedIndex: the driver side of a sharded, replicated annvil index on Ray.

    idx = ShardedIndex(384, "IVF4096,PQ48x4fs", n_shards=8, replicas=2, mode="ivf")
    idx.train(xt); idx.add(xb)
    D, I = idx.search(xq, 10, params=annvil.SearchParametersIVF(nprobe=32))

Layout of the work:
  - each shard is `replicas` Ray actors (ShardReplica, _shard.py), the
    replicas of one shard in one placement group with the SPREAD strategy, so
    Ray puts them on different nodes when it can and restarts a dead one in
    the same bundle (hence on the same node, next to its log);
  - mode "id": a vector lives on shard splitmix64(id) % n_shards; a search
    goes to every shard;
  - mode "ivf": the IVF index is trained once here, each shard owns a set of
    inverted lists (balanced by the training set's list sizes) and a query is
    sent only to the shards owning one of its nprobe probed lists, with the
    lists (and their coarse distances) given: the shard runs
    search_preassigned over its own lists only;
  - writes get a per-shard write number; a write is acknowledged when every
    replica of the shard has it in its log on disk (fsync);
  - reads go round-robin over a shard's replicas; a replica that dies
    mid-call (RayActorError) is skipped and the call retried on another one.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from urllib.parse import urlparse

import numpy as np

import annvil
from .. import _core
from .._checks import as_ids, as_matrix, check_int, check_k, check_out
from ._shard import ShardReplica, params_spec
from ._wal import OP_ADD, OP_REMOVE, fsync_dir

__all__ = ["ShardedIndex", "shard_of_ids"]

_FLT_MAX = float(np.finfo(np.float32).max)
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def _ray():
    import ray
    return ray


def _actor_errors():
    import ray.exceptions as rex
    return (rex.RayActorError, rex.ActorUnavailableError) if hasattr(rex, "ActorUnavailableError") \
        else (rex.RayActorError,)


def shard_of_ids(ids, n_shards):
    """Shard of each id in mode "id": splitmix64(id) % n_shards (ids: int64 (n,))."""
    z = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_shards)).astype(np.int64)


def _check_reachable(address, timeout=3.0):
    """Fail fast (ConnectionError) when a Ray cluster address cannot be reached:
    ray.init would otherwise wait for a long time."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else "tcp://" + address)
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise _core.InvalidArgumentError(
            f"Ray address {address!r} is not host:port (or ray://host:port, or 'auto'); "
            "pass address=None for a local Ray instance")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address!r} ({e}); start one with `ray start --head` "
            "or pass address=None for a local Ray instance") from None


def _connect(address, cpus_needed):
    ray = _ray()
    if address is not None:
        if not isinstance(address, str):
            raise _core.InvalidTypeError(f"address must be a string or None, got {type(address).__name__}")
        _check_reachable(address)
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as e:
                raise ConnectionError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    elif not ray.is_initialized():
        ray.init(num_cpus=max(os.cpu_count() or 1, int(np.ceil(cpus_needed))),
                 include_dashboard=False, log_to_driver=False)
    return ray


def _wrap_for_ids(index):
    """An index that stores user ids: IVF and IDMap do; others get an IndexIDMap2
    (which also gives reconstruct by id)."""
    if isinstance(index, (annvil.IndexIDMap, annvil.IndexIDMap2, annvil.IndexIVF)):
        return index
    return annvil.IndexIDMap2(index)


class ShardedIndex:
    """A sharded, replicated annvil index served by Ray actors (see the module doc).

    d, factory: the dimension and an index_factory string, or an annvil index
    (trained or not) used as the template of every shard.  n_shards, replicas:
    the layout.  mode: "id" (by hash of the id, any index type) or "ivf"
    (by inverted list; factory must give an IndexIVF).  metric: METRIC_L2 or
    METRIC_INNER_PRODUCT (any annvil metric works in mode "id").  address: a
    Ray cluster ("host:port", "ray://host:port", "auto") or None for the
    current / a new local Ray instance.  storage: the directory of the shards'
    snapshots and write-ahead logs (a new temporary directory when None; on a
    multi-node cluster each node's replicas write under the same path on that
    node).  Keyword-only tuning: num_cpus_per_replica (Ray CPUs per actor;
    default: 1, or less so the whole layout fits the cluster), threads (OpenMP
    threads per actor), max_restarts (Ray restarts per actor, -1 unlimited),
    write_timeout_s / read_timeout_s (how long a call keeps retrying a dead
    replica), wal_sync (fsync every write; only turn off for benchmarks).
    """

    def __init__(self, d, factory, n_shards, *, replicas=1, mode="id", metric=_core.METRIC_L2, address=None,
                 storage=None, num_cpus_per_replica=None, threads=None, max_restarts=-1,
                 write_timeout_s=120.0, read_timeout_s=120.0, wal_sync=True):
        self._closed = True
        d = check_int(d, "d", minimum=1)
        n_shards = check_int(n_shards, "n_shards", minimum=1)
        replicas = check_int(replicas, "replicas", minimum=1)
        if mode not in ("id", "ivf"):
            raise _core.InvalidArgumentError(f"mode must be 'id' or 'ivf', got {mode!r}")
        metric = int(metric)
        if isinstance(factory, str):
            template = annvil.index_factory(d, factory, metric)
            factory_desc = factory
        elif isinstance(factory, _core.Index):
            template = annvil.clone_index(factory)
            factory_desc = None
            if template.d != d:
                raise _core.InvalidArgumentError(f"the template index has d={template.d}, but d={d} was given")
            metric = int(template.metric_type)
        else:
            raise _core.InvalidTypeError(
                f"factory must be an index_factory string or an annvil index, got {type(factory).__name__}")
        if template.ntotal:
            raise _core.InvalidArgumentError(
                f"the template index must be empty (it holds {template.ntotal} vectors); add through the "
                "ShardedIndex so the vectors are sharded")
        if mode == "ivf":
            if not isinstance(template, annvil.IndexIVF):
                raise _core.InvalidArgumentError(
                    f"mode='ivf' needs an IVF index (e.g. 'IVF1024,Flat', 'IVF4096,PQ32x4fs'), got "
                    f"{type(template).__name__}; use mode='id' for other index types")
            if metric not in (_core.METRIC_L2, _core.METRIC_INNER_PRODUCT):
                raise _core.InvalidArgumentError("mode='ivf' supports METRIC_L2 and METRIC_INNER_PRODUCT")
        template = _wrap_for_ids(template)
        ivf = annvil.try_extract_index_ivf(template)
        if ivf is not None:
            ivf.set_direct_map_type(annvil.DirectMap.Hashtable)  # reconstruct / remove by id
        list_owner = None
        if mode == "ivf" and template.is_trained:
            list_owner = np.arange(ivf.nlist, dtype=np.int64) % n_shards
        self._setup(d=d, factory=factory_desc, n_shards=n_shards, replicas=replicas, mode=mode, metric=metric,
                    address=address, storage=storage, template=template, shard_sources=None,
                    list_owner=list_owner, next_id=0, nprobe=int(ivf.nprobe) if ivf is not None else 1,
                    num_cpus_per_replica=num_cpus_per_replica, threads=threads, max_restarts=max_restarts,
                    write_timeout_s=write_timeout_s, read_timeout_s=read_timeout_s, wal_sync=wal_sync)

    # ---- construction --------------------------------------------------------------
    def _setup(self, *, d, factory, n_shards, replicas, mode, metric, address, storage, template, shard_sources,
               list_owner, next_id, nprobe, num_cpus_per_replica, threads, max_restarts, write_timeout_s,
               read_timeout_s, wal_sync):
        self.d, self.n_shards, self.replicas, self.mode = d, n_shards, replicas, mode
        self.metric_type = metric
        self.factory = factory
        self._template = template
        self._list_owner = list_owner
        self._next_id = int(next_id)
        self._nprobe = int(nprobe)
        self.write_timeout_s, self.read_timeout_s = float(write_timeout_s), float(read_timeout_s)
        self._lock = threading.RLock()
        self._seq = [0] * n_shards     # last write number sent, per shard
        self._acked = [0] * n_shards   # last write number every replica acknowledged
        self._ntotal = [0] * n_shards
        self._rr = [0] * n_shards
        self._down = [dict() for _ in range(n_shards)]
        self._similarity = bool(_core.is_similarity_metric(metric))
        # calls re-sent because a replica died or lagged (reads) / died (writes)
        self.read_retries = 0
        self.write_retries = 0

        n_actors = n_shards * replicas
        want = 1.0 if num_cpus_per_replica is None else float(num_cpus_per_replica)
        if want <= 0:
            raise _core.InvalidArgumentError(f"num_cpus_per_replica must be > 0, got {want}")
        ray = _connect(address, want * n_actors if num_cpus_per_replica is not None else n_actors)
        cluster = float(ray.cluster_resources().get("CPU", 0.0))
        if num_cpus_per_replica is None:
            want = min(1.0, np.floor(100 * cluster / n_actors) / 100)
        # CPUs of just-closed indexes come back asynchronously: wait a little for them
        wait_until = time.monotonic() + 10.0
        while True:
            total = float(ray.available_resources().get("CPU", 0.0))
            if want * n_actors <= total + 1e-9 or want * n_actors > cluster + 1e-9 \
                    or time.monotonic() > wait_until:
                break
            time.sleep(0.1)
        if num_cpus_per_replica is None and want * n_actors > total + 1e-9:
            want = min(1.0, np.floor(100 * total / n_actors) / 100)
            if want <= 0:
                raise _core.InvalidArgumentError(
                    f"the Ray cluster has {total:g} free CPUs, too few for {n_actors} shard actors "
                    "(close other ShardedIndex objects or add nodes)")
        if want * n_actors > total + 1e-9:
            raise _core.InvalidArgumentError(
                f"{n_shards} shards x {replicas} replicas x {want:g} CPUs need {want * n_actors:g} CPUs, but the Ray "
                f"cluster has {total:g} free; lower num_cpus_per_replica (fractions are fine)")
        self._cpus = want
        threads = max(1, int(want)) if threads is None else check_int(threads, "threads", minimum=1)

        self._own_storage = storage is None
        self.storage = tempfile.mkdtemp(prefix="annvil-sharded-") if storage is None else os.fspath(storage)
        os.makedirs(self.storage, exist_ok=True)
        if os.path.exists(os.path.join(self.storage, MANIFEST)) or any(
                n.startswith("shard-") for n in os.listdir(self.storage)):
            raise _core.InvalidArgumentError(
                f"storage {self.storage!r} already holds a sharded index; use ShardedIndex.load(dir) to open a "
                "saved one, or give an empty directory")

        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        Actor = ray.remote(ShardReplica)

        self._pgs, self._actors = [], []
        try:
            for s in range(n_shards):
                pg = placement_group([{"CPU": want}] * replicas, strategy="SPREAD", name="")
                self._pgs.append(pg)
            for s, pg in enumerate(self._pgs):
                if not _wait_ready(ray, pg, 30.0):
                    raise RuntimeError(f"placement group of shard {s} could not be scheduled within 30 s "
                                       f"({replicas} bundles of {want:g} CPUs)")
                row = []
                for r in range(replicas):
                    opts = dict(num_cpus=want, max_restarts=int(max_restarts), max_task_retries=0,
                                scheduling_strategy=PlacementGroupSchedulingStrategy(
                                    placement_group=pg, placement_group_bundle_index=r))
                    src = None if shard_sources is None else shard_sources[s]
                    row.append(Actor.options(**opts).remote(
                        s, r, os.path.join(self.storage, f"shard-{s:04d}", f"replica-{r}"), src,
                        threads=threads, wal_sync=wal_sync))
                self._actors.append(row)
            if shard_sources is None:
                # the template is installed as write number 0 (a method argument, not a
                # constructor argument: restarts read the replica's own snapshot instead)
                ref = ray.put(annvil.serialize_index(template).tobytes())
                refs = [a.install.remote(0, ref) for row in self._actors for a in row]
                ray.get(refs, timeout=300)
            # wait until every replica has written its first snapshot
            for s in range(n_shards):
                for r in range(replicas):
                    st = ray.get(self._actors[s][r].stats.remote(), timeout=300)
                    self._ntotal[s] = st["ntotal"]
        except BaseException:
            for row in self._actors:
                for a in row:
                    ray.kill(a, no_restart=True)
            for pg in self._pgs:
                remove_placement_group(pg)
            raise
        self._closed = False

    @classmethod
    def load(cls, directory, address=None, *, storage=None, replicas=None, **options):
        """Open an index written by save(directory): new actors, each loading its
        shard's snapshot (the directory must be readable from every node)."""
        directory = os.fspath(directory)
        path = os.path.join(directory, MANIFEST)
        try:
            with open(path) as f:
                m = json.load(f)
        except FileNotFoundError:
            raise _core.IndexFileError(f"{directory!r} holds no {MANIFEST}: not a saved ShardedIndex") from None
        except ValueError as e:
            raise _core.IndexFileError(f"{path}: not valid JSON ({e})") from None
        try:
            version = int(m["format_version"])
            d, n_shards, mode = int(m["d"]), int(m["n_shards"]), m["mode"]
            metric, next_id, nprobe = int(m["metric"]), int(m["next_id"]), int(m["nprobe"])
            saved_replicas = int(m["replicas"])
            files = [os.path.join(directory, str(name)) for name in m["shards"]]
        except (KeyError, TypeError, ValueError) as e:
            raise _core.IndexFileError(f"{path}: missing or bad field ({e})") from None
        if version != FORMAT_VERSION:
            raise _core.IndexFileError(f"{path}: format version {version}, this annvil reads {FORMAT_VERSION}")
        if not (1 <= d <= 1 << 20) or not (1 <= n_shards <= 1 << 16) or mode not in ("id", "ivf") \
                or len(files) != n_shards or next_id < 0 or nprobe < 1:
            raise _core.IndexFileError(f"{path}: inconsistent manifest (d={d}, n_shards={n_shards}, mode={mode!r})")
        for fp in files:
            if os.path.dirname(os.path.abspath(fp)) != os.path.abspath(directory) or not os.path.isfile(fp):
                raise _core.IndexFileError(f"{path}: shard file {fp!r} is missing or outside the directory")
        template = annvil.read_index(os.path.join(directory, "template.annvil"))
        if template.d != d or template.ntotal:
            raise _core.IndexFileError(f"{directory}: template.annvil does not match the manifest")
        list_owner = None
        if mode == "ivf":
            ivf = annvil.try_extract_index_ivf(template)
            try:
                list_owner = np.asarray(m["list_owner"], dtype=np.int64)
            except (KeyError, TypeError, ValueError) as e:
                raise _core.IndexFileError(f"{path}: bad list_owner ({e})") from None
            if ivf is None or list_owner.shape != (ivf.nlist,) or (list_owner.size and (
                    list_owner.min() < 0 or list_owner.max() >= n_shards)):
                raise _core.IndexFileError(f"{path}: list_owner does not match the IVF template / shard count")
        self = cls.__new__(cls)
        self._closed = True
        self._setup(d=d, factory=m.get("factory"), n_shards=n_shards,
                    replicas=saved_replicas if replicas is None else check_int(replicas, "replicas", minimum=1),
                    mode=mode, metric=metric, address=address, storage=storage, template=template,
                    shard_sources=files, list_owner=list_owner, next_id=next_id, nprobe=nprobe,
                    num_cpus_per_replica=options.pop("num_cpus_per_replica", None),
                    threads=options.pop("threads", None), max_restarts=options.pop("max_restarts", -1),
                    write_timeout_s=options.pop("write_timeout_s", 120.0),
                    read_timeout_s=options.pop("read_timeout_s", 120.0), wal_sync=options.pop("wal_sync", True))
        if options:
            self.close()
            raise _core.InvalidArgumentError(f"unknown options for ShardedIndex.load: {sorted(options)}")
        return self

    def save(self, directory):
        """Snapshot every shard (annvil's atomic write_index) plus the template and
        a manifest (written last: a save is complete once it exists)."""
        self._check_open()
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        with self._lock:
            names = []
            for s in range(self.n_shards):
                name = f"shard-{s:04d}.annvil"
                self._read_one(s, "save_to", os.path.join(directory, name))
                names.append(name)
            annvil.write_index(self._template, os.path.join(directory, "template.annvil"))
            m = {"format_version": FORMAT_VERSION, "d": self.d, "n_shards": self.n_shards,
                 "replicas": self.replicas, "mode": self.mode, "metric": self.metric_type,
                 "factory": self.factory, "next_id": self._next_id, "nprobe": self._nprobe,
                 "ntotal": list(self._ntotal), "shards": names,
                 "list_owner": None if self._list_owner is None else [int(v) for v in self._list_owner]}
            tmp = os.path.join(directory, MANIFEST + ".tmp")
            with open(tmp, "w") as f:
                json.dump(m, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, os.path.join(directory, MANIFEST))
            fsync_dir(directory)

    def close(self):
        """Stop the actors and release their placement groups (and the temporary storage)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        ray = _ray()
        from ray.util.placement_group import remove_placement_group
        for row in self._actors:
            for a in row:
                try:
                    ray.kill(a, no_restart=True)
                except Exception:
                    pass
        for pg in self._pgs:
            try:
                remove_placement_group(pg)
            except Exception:
                pass
        if self._own_storage:
            shutil.rmtree(self.storage, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_open(self):
        if self._closed:
            raise _core.InvalidArgumentError("this ShardedIndex is closed")

    # ---- properties ----------------------------------------------------------------
    @property
    def ntotal(self):
        return int(sum(self._ntotal))

    @property
    def is_trained(self):
        return bool(self._template.is_trained)

    @property
    def nprobe(self):
        """Default number of probed lists in mode "ivf" (SearchParametersIVF overrides it per call)."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, v):
        self._nprobe = check_int(v, "nprobe", minimum=1)

    @property
    def list_owner(self):
        """Mode "ivf": the shard owning each inverted list (a copy), else None."""
        return None if self._list_owner is None else self._list_owner.copy()

    def _shard_index(self, shard):
        if isinstance(shard, bool) or not isinstance(shard, (int, np.integer)) \
                or not 0 <= int(shard) < self.n_shards:
            raise _core.InvalidArgumentError(
                f"unknown shard {shard!r}: this index has {self.n_shards} shards (0..{self.n_shards - 1})")
        return int(shard)

    def actors(self, shard=None):
        """The Ray actor handles: for each shard the list of its replicas (or that
        list for one shard)."""
        self._check_open()
        if shard is not None:
            return list(self._actors[self._shard_index(shard)])
        return [list(row) for row in self._actors]

    def stats(self):
        """Per shard: ntotal, index bytes (code bytes), queries served and the
        replicas' own reports (a dead replica reports {"error": ...})."""
        self._check_open()
        ray = _ray()
        refs = [[a.stats.remote() for a in row] for row in self._actors]
        out = []
        for s, row in enumerate(refs):
            reps = []
            for ref in row:
                try:
                    reps.append(ray.get(ref, timeout=self.read_timeout_s))
                except _actor_errors() as e:
                    reps.append({"error": f"{type(e).__name__}: {e}"})
            live = [r for r in reps if "error" not in r]
            out.append({"shard": s, "ntotal": self._ntotal[s], "seq": self._acked[s],
                        "index_bytes": max((r["index_bytes"] for r in live), default=0),
                        "rss_kb": sum(r["rss_kb"] for r in live),
                        "queries_served": sum(r["queries_served"] for r in live),
                        "search_calls": sum(r["search_calls"] for r in live),
                        "replicas": reps})
        return out

    def checkpoint(self):
        """Snapshot every replica now and start empty logs (bounds restart time)."""
        self._check_open()
        with self._lock:
            for s in range(self.n_shards):
                for r in range(self.replicas):
                    self._call_replica(s, r, "checkpoint", deadline=time.monotonic() + self.write_timeout_s)

    # ---- training and writes ----------------------------------------------------------
    def train(self, x):
        """Train the template once, here, then install it on every shard.  In mode
        "ivf" the inverted lists are then assigned to shards so that each shard's
        share of the training vectors is about equal."""
        self._check_open()
        x = as_matrix(x, self.d, "training vectors")
        with self._lock:
            if self.ntotal:
                raise _core.InvalidArgumentError("train the ShardedIndex before adding vectors")
            t = annvil.clone_index(self._template)
            t.train(x)
            list_owner = self._list_owner
            if self.mode == "ivf":
                ivf = annvil.extract_index_ivf(t)
                _, a = ivf.quantizer.search(x, 1)
                counts = np.bincount(a[:, 0][a[:, 0] >= 0], minlength=ivf.nlist)
                list_owner = np.empty(ivf.nlist, np.int64)
                loads = np.zeros(self.n_shards, np.int64)
                # largest lists first, each to the least loaded shard (LPT scheduling)
                for li in np.argsort(-counts, kind="stable"):
                    s = int(np.argmin(loads))
                    list_owner[li] = s
                    loads[s] += counts[li] + 1
            blob = annvil.serialize_index(t).tobytes()
            self._install_all(blob)
            self._template, self._list_owner = t, list_owner

    def _install_all(self, blob):
        ray = _ray()
        ref = ray.put(blob)
        ops = {s: ("install", ref) for s in range(self.n_shards)}
        self._write(ops)

    def add(self, x):
        """Add vectors with sequential ids (ntotal-style numbering, as Faiss)."""
        self._check_open()
        x = as_matrix(x, self.d, "vectors")
        with self._lock:
            ids = np.arange(self._next_id, self._next_id + x.shape[0], dtype=np.int64)
            self._add(x, ids)

    def add_with_ids(self, x, ids):
        self._check_open()
        x = as_matrix(x, self.d, "vectors")
        ids = as_ids(ids, x.shape[0])
        with self._lock:
            self._add(x, ids)

    def _add(self, x, ids):
        if not self.is_trained:
            raise _core.NotTrainedError("the ShardedIndex is not trained: call train(x) first")
        if x.shape[0] == 0:
            return
        owner = self._route_vectors(x, ids)
        ops = {}
        for s in range(self.n_shards):
            rows = np.flatnonzero(owner == s)
            if rows.size:
                ops[s] = (OP_ADD, ids[rows], x[rows])
        self._write(ops)
        if ids.size:
            self._next_id = max(self._next_id, int(ids.max()) + 1)

    def _route_vectors(self, x, ids):
        if self.mode == "id":
            return shard_of_ids(ids, self.n_shards)
        ivf = annvil.extract_index_ivf(self._template)
        _, a = ivf.quantizer.search(x, 1)
        return self._list_owner[a[:, 0]]

    def remove_ids(self, ids):
        """Remove the vectors with these ids (an array of ids); returns how many were removed."""
        self._check_open()
        if isinstance(ids, annvil.IDSelector):
            raise _core.InvalidTypeError(
                "ShardedIndex.remove_ids takes an array of ids (IDSelector objects cannot be sent to shards)")
        ids = as_ids(ids)
        with self._lock:
            if ids.size == 0:
                return 0
            if self.mode == "id":
                owner = shard_of_ids(ids, self.n_shards)
                ops = {s: (OP_REMOVE, ids[owner == s], None) for s in range(self.n_shards) if (owner == s).any()}
            else:  # a vector's list depends on the vector, not the id: every shard is asked
                ops = {s: (OP_REMOVE, ids, None) for s in range(self.n_shards)}
            return int(sum(self._write(ops).values()))

    def _write(self, ops):
        """Send write ops {shard: (op, ids, x) or ("install", blob_ref)} to every
        replica of each shard; return {shard: count} once all have logged them."""
        ray = _ray()
        errors = _actor_errors()
        deadline = time.monotonic() + self.write_timeout_s
        jobs = []
        for s, op in ops.items():
            self._seq[s] += 1
            seq = self._seq[s]
            if op[0] == "install":
                method, args = "install", (seq, op[1])
            else:
                code, ids, x = op
                args = (seq, code, ray.put(ids), None if x is None else ray.put(x))
                method = "apply"
            for r in range(self.replicas):
                jobs.append([s, r, method, args, getattr(self._actors[s][r], method).remote(*args)])
        results = {}
        failures = []
        for job in jobs:
            s, r, method, args, ref = job
            while True:
                try:
                    res = ray.get(ref, timeout=max(1.0, min(20.0, deadline - time.monotonic())))
                    break
                except (errors + (ray.exceptions.GetTimeoutError,)):
                    # the replica died (or hangs in a restart): Ray restarts it from its snapshot
                    # + log; send the same write number again (a replica that had logged it
                    # answers "dup", so a write is never applied twice)
                    if time.monotonic() > deadline:
                        failures.append((s, r, "replica did not come back before write_timeout_s"))
                        res = None
                        break
                    time.sleep(0.05)
                    self.write_retries += 1
                    ref = getattr(self._actors[s][r], method).remote(*args)
                except ray.exceptions.RayTaskError as e:
                    failures.append((s, r, e))
                    res = None
                    break
            results[(s, r)] = res
        # replicas that missed earlier writes get a copy of a healthy replica
        for s in ops:
            good = [r for r in range(self.replicas) if results.get((s, r)) and results[(s, r)][0] in ("ok", "dup")]
            gaps = [r for r in range(self.replicas) if results.get((s, r)) and results[(s, r)][0] == "gap"]
            if not good:
                if not any(f[0] == s for f in failures) and gaps:
                    failures.append((s, gaps[0], "every replica reports missing writes"))
                if all(isinstance(f[2], ray.exceptions.RayTaskError) for f in failures if f[0] == s) \
                        and sum(f[0] == s for f in failures) == self.replicas:
                    # every replica refused it (and rolled its log back): the number is free again.
                    # Never after a timeout: a replica might still apply that write later.
                    self._seq[s] -= 1
                continue
            self._ntotal[s] = results[(s, good[0])][2]
            for r in gaps:
                self._resync(s, r, good[0], deadline)
            if not any(f[0] == s for f in failures):
                self._acked[s] = self._seq[s]
        if failures:
            s, r, why = failures[0]
            if isinstance(why, ray.exceptions.RayTaskError):
                cause = why.as_instanceof_cause() if hasattr(why, "as_instanceof_cause") else why
                raise cause
            raise RuntimeError(f"write to shard {s} replica {r} failed: {why}")
        return {s: results[(s, 0)][1] if results.get((s, 0)) and results[(s, 0)][0] == "ok"
                else max((results[(s, r)][1] for r in range(self.replicas) if results.get((s, r))), default=0)
                for s in ops}

    def _resync(self, s, r, src, deadline):
        seq, blob = self._call_replica(s, src, "export", deadline=deadline)
        self._call_replica(s, r, "install", seq, blob, deadline=deadline)

    def _call_replica(self, s, r, method, *args, deadline):
        """One call to one replica, retried while Ray restarts it."""
        ray = _ray()
        errors = _actor_errors()
        while True:
            try:
                return _get(ray, getattr(self._actors[s][r], method).remote(*args), deadline)
            except errors:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"shard {s} replica {r} is unavailable") from None
                time.sleep(0.05)

    # ---- reads ------------------------------------------------------------------------
    def _pick(self, s, avoid=()):
        """Round-robin over the shard's replicas, skipping ones seen dead in the last 2 s."""
        now = time.monotonic()
        for i in range(self.replicas):
            r = (self._rr[s] + i) % self.replicas
            if r in avoid or now - self._down[s].get(r, -1e9) < 2.0:
                continue
            self._rr[s] = r + 1
            return r
        r = self._rr[s] % self.replicas  # all suspect: try them anyway, in turn
        self._rr[s] = r + 1
        return r

    def _fanout(self, method, per_shard):
        """Run method(*args) on one replica of each shard in per_shard {s: args};
        a replica that dies or lags behind is replaced by another one."""
        ray = _ray()
        errors = _actor_errors()
        deadline = time.monotonic() + self.read_timeout_s
        pending = {}
        for s, args in per_shard.items():
            r = self._pick(s)
            pending[s] = (r, getattr(self._actors[s][r], method).remote(*args), set())
        out = {}
        for s, args in per_shard.items():
            r, ref, tried = pending[s]
            while True:
                try:
                    res = _get(ray, ref, deadline)
                    if res[-1] < self._acked[s]:  # a restarted replica that lost writes: repair it
                        self._resync(s, r, self._healthy(s, exclude=r, deadline=deadline), deadline)
                        raise _Stale()
                    self._down[s].pop(r, None)
                    out[s] = res[:-1]
                    break
                except (errors + (_Stale,)):
                    self._down[s][r] = time.monotonic()
                    self.read_retries += 1
                    tried.add(r)
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"shard {s}: no replica answered within read_timeout_s") from None
                    if len(tried) >= self.replicas:
                        tried.clear()
                        time.sleep(0.05)  # every replica failed once: wait for Ray to restart them
                    r = self._pick(s, avoid=tried)
                    ref = getattr(self._actors[s][r], method).remote(*args)
        return out

    def _healthy(self, s, exclude, deadline):
        for r in range(self.replicas):
            if r != exclude and self._call_replica(s, r, "ping", deadline=deadline) >= self._acked[s]:
                return r
        raise RuntimeError(f"shard {s}: no replica holds every acknowledged write")

    def _read_one(self, s, method, *args):
        return self._call_any(s, method, *args)

    def _call_any(self, s, method, *args):
        errors = _actor_errors()
        deadline = time.monotonic() + self.read_timeout_s
        tried = set()
        while True:
            r = self._pick(s, avoid=tried)
            try:
                return self._call_replica_once(s, r, method, *args, deadline=deadline)
            except errors:
                self._down[s][r] = time.monotonic()
                self.read_retries += 1
                tried.add(r)
                if len(tried) >= self.replicas:
                    tried.clear()
                    time.sleep(0.05)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"shard {s}: no replica answered within read_timeout_s") from None

    def _call_replica_once(self, s, r, method, *args, deadline):
        ray = _ray()
        return _get(ray, getattr(self._actors[s][r], method).remote(*args), deadline)

    def _ivf_plan(self, xq, params):
        """Coarse lists and distances (n, nprobe) of each query, here on the driver."""
        ivf = annvil.extract_index_ivf(self._template)
        nprobe = self._nprobe
        if params is not None and getattr(params, "nprobe", 0):
            nprobe = int(params.nprobe)
        nprobe = max(1, min(nprobe, ivf.nlist))
        cdis, lists = ivf.quantizer.search(xq, nprobe)
        owner = np.where(lists >= 0, self._list_owner[np.maximum(lists, 0)], -1)
        return cdis, lists, owner

    def route(self, x, params=None):
        """Mode "ivf": for each query, the sorted shards it would be sent to (a list of arrays)."""
        self._check_open()
        x = as_matrix(x, self.d, "queries")
        if self.mode != "ivf":
            return [np.arange(self.n_shards) for _ in range(x.shape[0])]
        _, _, owner = self._ivf_plan(x, params)
        return [np.unique(o[o >= 0]) for o in owner]

    def _requests(self, xq, params, tail):
        """{shard: args} of a search-like call: the query batch travels once through
        the object store; in mode "ivf" each shard gets only the rows (and lists) it owns."""
        ray = _ray()
        ref = ray.put(xq)
        spec = params_spec(params)
        if self.mode == "id":
            return {s: (ref, None, tail, spec) for s in range(self.n_shards)}
        cdis, lists, owner = self._ivf_plan(xq, params)
        req = {}
        for s in range(self.n_shards):
            mask = owner == s
            rows = np.flatnonzero(mask.any(axis=1))
            if rows.size:
                assign = np.where(mask[rows], lists[rows], -1)
                req[s] = (ref, rows, tail, spec, assign, np.ascontiguousarray(cdis[rows]))
        return req

    def search(self, x, k, *, params=None, D=None, I=None):
        """(D, I) as Faiss: float32 (n, k) distances and int64 (n, k) ids, best
        first (smallest L2, largest inner product), -1 / ±FLT_MAX where fewer
        than k results exist."""
        self._check_open()
        xq = as_matrix(x, self.d, "queries")
        k = check_k(k)
        if not self.is_trained:
            raise _core.NotTrainedError("the ShardedIndex is not trained: call train(x) first")
        n = xq.shape[0]
        req = self._requests(xq, params, k) if n else {}
        res = self._fanout("search", req) if n else {}
        Dm, Im = self._merge(n, k, req, res)
        if D is not None:
            check_out(D, (n, k), np.float32, "D")
        if I is not None:
            check_out(I, (n, k), np.int64, "I")
        if D is not None:
            D[...] = Dm
            Dm = D
        if I is not None:
            I[...] = Im
            Im = I
        return Dm, Im

    def _merge(self, n, k, req, res):
        pad = -_FLT_MAX if self._similarity else _FLT_MAX
        shards = sorted(res)
        if not shards:
            return np.full((n, k), pad, np.float32), np.full((n, k), -1, np.int64)
        Dall = np.full((n, len(shards) * k), pad, np.float32)
        Iall = np.full((n, len(shards) * k), -1, np.int64)
        for j, s in enumerate(shards):
            Ds, Is = res[s]
            rows = req[s][1]
            sl = slice(j * k, (j + 1) * k)
            if rows is None:
                Dall[:, sl], Iall[:, sl] = Ds, Is
            else:
                Dall[rows, sl], Iall[rows, sl] = Ds, Is
        if len(shards) == 1:
            return Dall, Iall
        key = -Dall if self._similarity else Dall
        order = np.argsort(key, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(Dall, order, 1), np.take_along_axis(Iall, order, 1)

    def range_search(self, x, radius, *, params=None):
        """(lims, D, I) as Faiss; each query's results sorted best first."""
        self._check_open()
        xq = as_matrix(x, self.d, "queries")
        radius = float(radius)
        if not np.isfinite(radius):
            raise _core.InvalidArgumentError(f"radius must be finite, got {radius}")
        if not self.is_trained:
            raise _core.NotTrainedError("the ShardedIndex is not trained: call train(x) first")
        n = xq.shape[0]
        req = self._requests(xq, params, radius) if n else {}
        res = self._fanout("range_search", req) if n else {}
        Dq = [[] for _ in range(n)]
        Iq = [[] for _ in range(n)]
        for s, (lims, Ds, Is) in res.items():
            rows = req[s][1]
            rows = np.arange(n) if rows is None else rows
            for j, q in enumerate(rows):
                Dq[q].append(Ds[lims[j]:lims[j + 1]])
                Iq[q].append(Is[lims[j]:lims[j + 1]])
        lims = np.zeros(n + 1, np.uint64)
        Dout, Iout = [], []
        for q in range(n):
            dq = np.concatenate(Dq[q]) if Dq[q] else np.zeros(0, np.float32)
            iq = np.concatenate(Iq[q]) if Iq[q] else np.zeros(0, np.int64)
            order = np.argsort(-dq if self._similarity else dq, kind="stable")
            Dout.append(dq[order])
            Iout.append(iq[order])
            lims[q + 1] = lims[q] + dq.shape[0]
        return (lims, np.concatenate(Dout).astype(np.float32) if n else np.zeros(0, np.float32),
                np.concatenate(Iout).astype(np.int64) if n else np.zeros(0, np.int64))

    def reconstruct(self, key):
        """The stored vector of id key."""
        self._check_open()
        key = check_int(key, "key")
        found, vecs = self.reconstruct_batch(np.array([key], np.int64), _missing_ok=True)
        if not found[0]:
            raise _core.InvalidArgumentError(f"id {key} is not in the index")
        return vecs[0]

    def reconstruct_batch(self, keys, *, _missing_ok=False):
        """Stored vectors (n, d) of the ids in keys (an error if one is missing)."""
        self._check_open()
        keys = as_ids(keys)
        shards = shard_of_ids(keys, self.n_shards) if self.mode == "id" else None
        out = np.zeros((keys.shape[0], self.d), np.float32)
        found = np.zeros(keys.shape[0], bool)
        for s in range(self.n_shards):
            sel = np.flatnonzero(shards == s) if shards is not None else np.arange(keys.shape[0])
            if sel.size == 0:
                continue
            f, v = self._call_any(s, "reconstruct", keys[sel])
            out[sel[f]] = v[f]
            found[sel[f]] = True
        if _missing_ok:
            return found, out
        if not found.all():
            raise _core.InvalidArgumentError(f"id {int(keys[~found][0])} is not in the index")
        return out

    def ids(self, shard=None):
        """The ids stored on a shard (or on all shards, concatenated), sorted."""
        self._check_open()
        shards = range(self.n_shards) if shard is None else [self._shard_index(shard)]
        parts = [self._call_any(s, "ids") for s in shards]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def __repr__(self):
        return (f"ShardedIndex(d={self.d}, factory={self.factory!r}, n_shards={self.n_shards}, "
                f"replicas={self.replicas}, mode={self.mode!r}, ntotal={self.ntotal})")


def _get(ray, ref, deadline):
    """ray.get until the deadline; an exception raised inside the actor is re-raised
    as itself (an annvil error stays an annvil error), actor deaths pass through."""
    try:
        return ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
    except ray.exceptions.RayTaskError as e:
        if isinstance(e, _actor_errors()):
            raise
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise


class _Stale(Exception):
    """A replica answered with an older write number than the shard's."""


def _wait_ready(ray, pg, timeout):
    try:
        ray.get(pg.ready(), timeout=timeout)
        return True
    except ray.exceptions.GetTimeoutError:
        return False
