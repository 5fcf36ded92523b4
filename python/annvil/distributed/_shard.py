"""One replica of one shard: the body of a Ray actor holding an annvil index.

The class is plain Python (the driver wraps it with ray.remote), so it can be
tested without Ray.  Its state on disk, in its own directory:

    CURRENT               json {"gen": g, "seq": s}: the live generation and the
                          last write number contained in its snapshot (atomic:
                          temporary file, fsync, rename, fsync of the directory)
    snapshot-<g>.annvil   the index as of write s (annvil's atomic write_index)
    wal-<g>.log           writes s+1, s+2, ... (see _wal.py), fsync'd before ack

Recovery (__init__, which Ray re-runs on every restart): load snapshot-<g>,
replay wal-<g>, drop a torn tail.  A checkpoint writes snapshot-<g+1> and an
empty wal-<g+1> first and switches CURRENT last, so a crash at any point
leaves either the old or the new generation whole.

Every write carries the shard's write number `seq`, assigned by the driver.
A replica applies seq == last+1, ignores seq <= last (a retry of a write it
already logged before it died) and reports a gap for seq > last+1 (it lost
state, e.g. it was restarted on a node without its files): the driver then
copies the shard from a healthy replica (install).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from ._wal import OP_ADD, OP_REMOVE, WriteAheadLog, fsync_dir, read_records

__all__ = ["ShardReplica", "make_params", "params_spec"]

# attributes of SearchParameters subclasses that can travel as plain values
_PARAM_SCALARS = (bool, int, float)


def params_spec(params):
    """A picklable description (class name, {attr: value}) of a SearchParameters
    object (annvil's parameter structs are not picklable), or None."""
    if params is None:
        return None
    from .. import _core
    if not isinstance(params, _core.SearchParameters):
        raise _core.InvalidTypeError(f"params must be an annvil SearchParameters, got {type(params).__name__}")
    if getattr(params, "sel", None) is not None:
        raise _core.InvalidArgumentError(
            "params.sel (an IDSelector) cannot be sent to shards; remove the ids with remove_ids or filter "
            "the results instead")
    attrs = {}
    for name in dir(params):
        if name.startswith("_") or name in ("this", "thisown", "sel"):
            continue
        try:
            v = getattr(params, name)
        except Exception:
            continue
        if isinstance(v, _PARAM_SCALARS):
            attrs[name] = v
        elif v is not None and isinstance(v, _core.SearchParameters):
            attrs[name] = params_spec(v)
    return (type(params).__name__, attrs)


def make_params(spec):
    """Inverse of params_spec: the SearchParameters object (or None)."""
    if spec is None:
        return None
    import annvil
    name, attrs = spec
    cls = getattr(annvil, name, None)
    if cls is None:
        raise annvil.InvalidArgumentError(f"unknown SearchParameters class {name}")
    p = cls()
    for k, v in attrs.items():
        if isinstance(v, tuple):
            v = make_params(v)
        setattr(p, k, v)
    return p


def _code_size(index):
    """Bytes per stored vector of index or of the index it wraps (0 when unknown)."""
    for _ in range(16):
        cs = getattr(index, "code_size", None)
        if isinstance(cs, int) and cs > 0:
            return cs
        index = getattr(index, "index", None) or getattr(index, "base_index", None)
        if index is None:
            break
    return 0


def _write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


class ShardReplica:
    """Holds one annvil index (a shard's copy), its snapshots and write-ahead log."""

    def __init__(self, shard, replica, directory, template=None, *, threads=1, wal_sync=True):
        import annvil
        self.shard = int(shard)
        self.replica = int(replica)
        self.dir = os.fspath(directory)
        self.wal_sync = bool(wal_sync)
        if threads:
            annvil.omp_set_num_threads(int(threads))
        self.queries_served = 0
        self.search_calls = 0
        self.search_seconds = 0.0  # time inside the index's search (the rest of a call is the Ray path)
        self.writes_applied = 0
        self.replayed = 0
        self.started = time.time()
        os.makedirs(self.dir, exist_ok=True)
        self._recover(template)

    # ---- state on disk -----------------------------------------------------------
    def _path(self, kind, gen):
        return os.path.join(self.dir, f"{kind}-{gen}." + ("annvil" if kind == "snapshot" else "log"))

    def _recover(self, template):
        import annvil
        current = os.path.join(self.dir, "CURRENT")
        if os.path.exists(current):
            try:
                with open(current) as f:
                    cur = json.load(f)
                gen, seq = int(cur["gen"]), int(cur["seq"])
            except (ValueError, KeyError, TypeError) as e:
                raise annvil.IndexFileError(f"{current}: unreadable shard state ({e})") from None
            if gen < 1 or seq < 0:
                raise annvil.IndexFileError(f"{current}: bad generation {gen} / seq {seq}")
            self.index = annvil.read_index(self._path("snapshot", gen))
            self.gen, self.seq = gen, seq
            wal_path = self._path("wal", gen)
            if os.path.exists(wal_path):
                records, good = read_records(wal_path)
                for rseq, op, ids, x in records:
                    if rseq <= self.seq:
                        continue
                    if rseq != self.seq + 1:
                        raise annvil.IndexFileError(
                            f"{wal_path}: record seq {rseq} follows {self.seq} (a write is missing)")
                    self._last = (rseq, self._apply_to_index(op, ids, x))
                    self.seq = rseq
                    self.replayed += 1
                self.wal = WriteAheadLog(wal_path, sync=self.wal_sync)
                if good < self.wal.size:
                    self.wal.truncate(good)  # torn tail: never acknowledged
            else:
                self.wal = WriteAheadLog(wal_path, sync=self.wal_sync)
            self._remove_other_generations()
        elif isinstance(template, str):  # a saved shard (ShardedIndex.load)
            self.index, self.gen, self.seq, self.wal = annvil.read_index(template), 0, 0, None
            self._snapshot()
        else:
            # no state yet: the driver installs the template (write number 0) right after
            # creation, or copies a healthy replica if this one lost its files
            self.index, self.gen, self.seq, self.wal = None, 0, -1, None

    def _snapshot(self):
        """Write generation gen+1 (snapshot of the index at seq, empty log), then switch to it."""
        import annvil
        gen = self.gen + 1
        annvil.write_index(self.index, self._path("snapshot", gen))
        new_wal = WriteAheadLog(self._path("wal", gen), sync=self.wal_sync)
        if new_wal.size:
            new_wal.truncate(0)  # leftover of an earlier crashed checkpoint
        _write_json_atomic(os.path.join(self.dir, "CURRENT"), {"gen": gen, "seq": self.seq})
        if self.wal is not None:
            self.wal.close()
        self.wal, self.gen = new_wal, gen
        self._remove_other_generations()

    def _remove_other_generations(self):
        for name in os.listdir(self.dir):
            for kind, ext in (("snapshot-", ".annvil"), ("wal-", ".log")):
                if name.startswith(kind) and name.endswith(ext):
                    try:
                        g = int(name[len(kind):-len(ext)])
                    except ValueError:
                        continue
                    if g != self.gen:
                        try:
                            os.remove(os.path.join(self.dir, name))
                        except OSError:
                            pass

    def _apply_to_index(self, op, ids, x):
        if op == OP_ADD:
            self.index.add_with_ids(x, ids)
            return ids.shape[0]
        return int(self.index.remove_ids(ids))

    # ---- writes ------------------------------------------------------------------
    def apply(self, seq, op, ids, x=None):
        """Log, fsync, then apply write number seq.  Returns (status, value, ntotal):
        ("ok", added-or-removed count), ("dup", 0) for a write already applied,
        ("gap", last seq) when earlier writes are missing here."""
        seq = int(seq)
        if seq <= self.seq:
            # a resent write (the driver retries after a replica died): answer with the
            # count the first application gave, when it is the last one applied here
            last = getattr(self, "_last", None)
            return ("dup", last[1] if last and last[0] == seq else 0, self.index.ntotal)
        if seq != self.seq + 1 or self.index is None:
            return ("gap", self.seq, 0 if self.index is None else self.index.ntotal)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if op == OP_ADD:
            x = np.ascontiguousarray(x, dtype=np.float32)
            if x.ndim != 2 or x.shape != (ids.shape[0], self.index.d):
                import annvil
                raise annvil.InvalidArgumentError(
                    f"shard {self.shard}: add of shape {x.shape} with {ids.shape[0]} ids, index d={self.index.d}")
        elif op != OP_REMOVE:
            raise ValueError(f"unknown op {op}")
        before = self.wal.append(seq, op, ids, x)
        try:
            value = self._apply_to_index(op, ids, x)
        except BaseException:
            self.wal.truncate(before)  # the index is unchanged (annvil's failed calls leave it so)
            raise
        self.seq = seq
        self._last = (seq, value)
        self.writes_applied += 1
        return ("ok", value, self.index.ntotal)

    def install(self, seq, blob):
        """Replace the index by a serialized one as of write seq and snapshot it
        (training on the driver, or a copy from a healthy replica)."""
        import annvil
        seq = int(seq)
        if seq <= self.seq:
            return ("dup", 0, self.index.ntotal)
        self.index = annvil.deserialize_index(np.frombuffer(blob, dtype=np.uint8))
        self.seq = seq
        self._snapshot()
        return ("ok", 0, self.index.ntotal)

    def checkpoint(self):
        """Snapshot now and start an empty log (bounds recovery time)."""
        self._need_index()
        self._snapshot()
        return self.seq

    def export(self):
        """(seq, serialized index) for copying this shard to another replica."""
        import annvil
        self._need_index()
        return self.seq, annvil.serialize_index(self.index).tobytes()

    def save_to(self, path):
        """write_index (atomic) to path; returns the seq it contains."""
        import annvil
        self._need_index()
        annvil.write_index(self.index, path)
        return self.seq

    # ---- reads -------------------------------------------------------------------
    def search(self, xq, rows, k, spec, assign=None, centroid_dis=None):
        """Top-k of queries xq[rows] (all when rows is None) in this shard.
        With assign (the coarse lists per query, -1 for lists owned elsewhere)
        the IVF lists are given, not searched for.  Returns (D, I, seq)."""
        if self.index is None:
            return None, None, self.seq  # the driver sees the old write number and repairs it
        x = xq if rows is None else xq[rows]
        params = make_params(spec)
        self.search_calls += 1
        self.queries_served += x.shape[0]
        t = time.perf_counter()
        if assign is None:
            D, I = self.index.search(x, k, params=params)
        else:
            import annvil
            ivf = annvil.extract_index_ivf(self.index)
            D, I = ivf.search_preassigned(x, k, assign, centroid_dis, params)
        self.search_seconds += time.perf_counter() - t
        return D, I, self.seq

    def range_search(self, xq, rows, radius, spec, assign=None, centroid_dis=None):
        if self.index is None:
            return None, None, None, self.seq
        x = xq if rows is None else xq[rows]
        params = make_params(spec)
        self.search_calls += 1
        self.queries_served += x.shape[0]
        if assign is None:
            lims, D, I = self.index.range_search(x, radius, params=params)
        else:
            import annvil
            ivf = annvil.extract_index_ivf(self.index)
            lims, D, I = ivf.range_search_preassigned(x, radius, assign, centroid_dis, params)
        return lims, D, I, self.seq

    def reconstruct(self, keys):
        """(found (n,) bool, vectors (n, d)) for the ids in keys."""
        self._need_index()
        keys = np.asarray(keys, dtype=np.int64)
        out = np.zeros((keys.shape[0], self.index.d), np.float32)
        found = np.zeros(keys.shape[0], bool)
        for i, key in enumerate(keys):
            try:
                out[i] = self.index.reconstruct(int(key))
                found[i] = True
            except (RuntimeError, ValueError, KeyError, IndexError):
                pass
        return found, out

    def ids(self):
        """All ids stored here (for checks and operators), sorted."""
        import annvil
        self._need_index()
        index = self.index
        idmap = getattr(index, "id_map", None)
        if idmap is not None:
            return np.sort(np.asarray(annvil.vector_to_array(idmap) if not isinstance(idmap, np.ndarray)
                                      else idmap, dtype=np.int64))
        ivf = annvil.try_extract_index_ivf(index)
        if ivf is not None:
            parts = [np.asarray(ivf.invlists.get_ids(i), dtype=np.int64).copy()
                     for i in range(ivf.nlist) if ivf.invlists.list_size(i)]
            return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        return np.arange(index.ntotal, dtype=np.int64)

    def stats(self):
        import annvil
        try:
            import ray
            ctx = ray.get_runtime_context()
            node = ctx.get_node_id()
            restarted = bool(ctx.was_current_actor_reconstructed)
        except Exception:
            node, restarted = None, False
        index = self.index
        code_size = _code_size(index) if index is not None else 0
        ntotal = int(index.ntotal) if index is not None else 0
        return {
            "shard": self.shard, "replica": self.replica, "ntotal": ntotal, "seq": self.seq,
            "queries_served": self.queries_served, "search_calls": self.search_calls,
            "search_seconds": self.search_seconds,
            "writes_applied": self.writes_applied, "replayed_on_start": self.replayed,
            "index_bytes": int(code_size) * ntotal,
            "rss_kb": annvil.get_mem_usage_kb(), "wal_bytes": self.wal.size if self.wal else 0,
            "generation": self.gen, "pid": os.getpid(), "node_id": node, "restarted": restarted,
        }

    def _need_index(self):
        if self.index is None:
            raise RuntimeError(f"shard {self.shard} replica {self.replica} holds no index yet (being repaired)")

    def ping(self):
        return self.seq
