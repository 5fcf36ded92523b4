"""The read side of ShardedIndex (a mixin): replica choice (round-robin,
skipping dead or stale ones), fan-out of a call to the shards and failover to
another replica, IVF query routing (mode "ivf"), and the merge of per-shard
results for search, range_search and reconstruct."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

import annvil
from .. import _core
from .._checks import as_ids, as_matrix, check_int, check_k, check_out
from ._shard import params_spec
from ._cluster import _FLT_MAX, _actor_errors, _get, _ray, _Stale, shard_of_ids


class _Reads:
    """Methods of ShardedIndex that read the shards (state: see ShardedIndex)."""

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

    def route(self, x: Any, params: Any = None) -> np.ndarray:
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

    def search(self, x: Any, k: int, *, params: Any = None, D: np.ndarray | None = None,
               I: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
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

    def range_search(self, x: Any, radius: float, *, params: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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

    def reconstruct(self, key: int) -> np.ndarray:
        """The stored vector of id key."""
        self._check_open()
        key = check_int(key, "key")
        found, vecs = self.reconstruct_batch(np.array([key], np.int64), _missing_ok=True)
        if not found[0]:
            raise _core.InvalidArgumentError(f"id {key} is not in the index")
        return vecs[0]

    def reconstruct_batch(self, keys: Any, *, _missing_ok: bool = False) -> np.ndarray:
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

    def ids(self, shard: int | None = None) -> np.ndarray:
        """The ids stored on a shard (or on all shards, concatenated), sorted."""
        self._check_open()
        shards = range(self.n_shards) if shard is None else [self._shard_index(shard)]
        parts = [self._call_any(s, "ids") for s in shards]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
