"""The write side of ShardedIndex (a mixin): training, adds and removals
routed to their shards, each write numbered per shard and acknowledged once
every replica has it in its log on disk; a replica that dies mid-write is
resynchronised from a live one and the write resent."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

import annvil
from .. import _core
from .._checks import as_ids, as_matrix
from ._wal import OP_ADD, OP_REMOVE
from ._cluster import _actor_errors, _get, _ray, shard_of_ids


class _Writes:
    """Methods of ShardedIndex that change the shards (state: see ShardedIndex)."""

    # ---- training and writes ----------------------------------------------------------
    def train(self, x: Any) -> None:
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

    def add(self, x: Any) -> None:
        """Add vectors with sequential ids (ntotal-style numbering, as Faiss)."""
        self._check_open()
        x = as_matrix(x, self.d, "vectors")
        with self._lock:
            ids = np.arange(self._next_id, self._next_id + x.shape[0], dtype=np.int64)
            self._add(x, ids)

    def add_with_ids(self, x: Any, ids: Any) -> None:
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

    def remove_ids(self, ids: Any) -> int:
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
