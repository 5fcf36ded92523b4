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

The class is split by topic: construction, persistence and properties here;
writes in _writes.py, reads in _reads.py, Ray plumbing in _cluster.py.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from typing import Any

import numpy as np

import annvil
from .. import _core
from .._checks import check_int
from ._shard import ShardReplica
from ._wal import fsync_dir
from ._cluster import _actor_errors, _connect, _ray, _wait_ready, shard_of_ids
from ._reads import _Reads
from ._writes import _Writes

__all__ = ["ShardedIndex", "shard_of_ids"]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def _wrap_for_ids(index):
    """An index that stores user ids: IVF and IDMap do; others get an IndexIDMap2
    (which also gives reconstruct by id)."""
    if isinstance(index, (annvil.IndexIDMap, annvil.IndexIDMap2, annvil.IndexIVF)):
        return index
    return annvil.IndexIDMap2(index)


class ShardedIndex(_Writes, _Reads):
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

    def __init__(self, d: int, factory: Any, n_shards: int, *, replicas: int = 1, mode: str = "id",
                 metric: int = _core.METRIC_L2, address: str | None = None, storage: str | None = None,
                 num_cpus_per_replica: float | None = None, threads: int | None = None, max_restarts: int = -1,
                 write_timeout_s: float = 120.0, read_timeout_s: float = 120.0, wal_sync: bool = True):
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
            for _s in range(n_shards):
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
    def load(cls, directory: str | os.PathLike, address: str | None = None, *, storage: str | None = None,
             replicas: int | None = None, **options: Any) -> ShardedIndex:
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

    def save(self, directory: str | os.PathLike) -> None:
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

    def close(self) -> None:
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
    def ntotal(self) -> int:
        return int(sum(self._ntotal))

    @property
    def is_trained(self) -> bool:
        return bool(self._template.is_trained)

    @property
    def nprobe(self) -> int:
        """Default number of probed lists in mode "ivf" (SearchParametersIVF overrides it per call)."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, v: int) -> None:
        self._nprobe = check_int(v, "nprobe", minimum=1)

    @property
    def list_owner(self) -> np.ndarray | None:
        """Mode "ivf": the shard owning each inverted list (a copy), else None."""
        return None if self._list_owner is None else self._list_owner.copy()

    def _shard_index(self, shard):
        if isinstance(shard, bool) or not isinstance(shard, (int, np.integer)) \
                or not 0 <= int(shard) < self.n_shards:
            raise _core.InvalidArgumentError(
                f"unknown shard {shard!r}: this index has {self.n_shards} shards (0..{self.n_shards - 1})")
        return int(shard)

    def actors(self, shard: int | None = None) -> list:
        """The Ray actor handles: for each shard the list of its replicas (or that
        list for one shard)."""
        self._check_open()
        if shard is not None:
            return list(self._actors[self._shard_index(shard)])
        return [list(row) for row in self._actors]

    def stats(self) -> dict:
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

    def checkpoint(self) -> None:
        """Snapshot every replica now and start empty logs (bounds restart time)."""
        self._check_open()
        with self._lock:
            for s in range(self.n_shards):
                for r in range(self.replicas):
                    self._call_replica(s, r, "checkpoint", deadline=time.monotonic() + self.write_timeout_s)

    def __repr__(self):
        return (f"ShardedIndex(d={self.d}, factory={self.factory!r}, n_shards={self.n_shards}, "
                f"replicas={self.replicas}, mode={self.mode!r}, ntotal={self.ntotal})")
