"""The tuner's building blocks: building an index from a factory string and
build parameters, its size, the bisection of monotone knobs, data statistics
(intrinsic dimension, fingerprint), and moving earlier results to new data.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable

import numpy as np

from .._core import InvalidArgumentError
from ..autotune import ParameterSpace, _down, _kind, parse_params

__all__ = ["build_index", "bisect_min"]


def annvil_ns():
    """The annvil package: the namespace whose classes the tuner builds by default."""
    return sys.modules[__name__.split(".")[0]]


def build_index(ns: Any, xb: np.ndarray, factory: str, build_params: str, metric: int, *,
                train_max: int | None = None, timing: bool = False) -> tuple:
    """index_factory + build parameters + train + add: (index, seconds), or
    with timing=True (index, seconds, seconds of the add alone)."""
    from ..factory import _build

    t0 = time.perf_counter()
    if getattr(ns, "__name__", "") == "faiss":
        index = ns.index_factory(xb.shape[1], factory, metric)  # Faiss's own parser
    else:
        index = _build(xb.shape[1], factory, metric, ns)
    if build_params:
        ParameterSpace().set_index_parameters(index, build_params)
    if not index.is_trained:
        n = xb.shape[0]
        if train_max is None:
            train_max = max(10000, 50 * _nlist_of(index))
        if n > train_max:
            sel = np.random.default_rng(1).choice(n, train_max, replace=False)
            index.train(xb[np.sort(sel)])
        else:
            index.train(xb)
    t_add = time.perf_counter()
    index.add(xb)
    t_end = time.perf_counter()
    return (index, t_end - t0, t_end - t_add) if timing else (index, t_end - t0)


def _nlist_of(index):
    root, index = index, _down(index)  # noqa: F841 (root keeps a Faiss owner alive)
    kind = _kind(index)
    if kind in ("idmap", "pretransform"):
        return _nlist_of(index.index)
    if kind == "refine":
        return _nlist_of(index.base_index)
    return int(getattr(index, "nlist", 1))


def index_bytes(index):
    """Serialized size: annvil.serialize_index, or faiss's for Faiss indexes."""
    if type(index).__module__.startswith("faiss"):
        import faiss

        return int(len(faiss.serialize_index(index)))
    from .. import serialize_index

    return int(len(serialize_index(index)))


def bisect_min(f: Callable[[int], float], lo: int, hi: int, target: float, *,
               hint: int | None = None) -> int | None:
    """Smallest integer v in [lo, hi] with f(v) >= target, for f
    non-decreasing in v; None when even f(hi) misses.  Gallops up from lo (or
    from hint, downwards when the hint already meets the target) by factors
    of two, then bisects the last gap, so the values tried are cheap ones
    and none lies past the first that meets the target by more than 2x.
    f is called at most about 2 log2(hi / lo) + 2 times."""
    lo, hi = int(lo), int(hi)
    if hi < lo:
        raise InvalidArgumentError(f"bisect_min: empty range [{lo}, {hi}]")
    memo = {}

    def ok(v):
        if v not in memo:
            memo[v] = f(v) >= target
        return memo[v]

    v = lo if hint is None else min(hi, max(lo, int(hint)))
    if ok(v):  # gallop down from the hint to a failing value
        good = v
        bad = lo - 1
        step = 1
        while good > lo:
            w = max(lo, good - step)
            if ok(w):
                good = w
                step *= 2
            else:
                bad = w
                break
    else:  # gallop up
        bad = v
        good = None
        while good is None:
            if bad >= hi:
                return None
            w = min(hi, max(bad + 1, bad * 2))
            if ok(w):
                good = w
            else:
                bad = w
    while good - bad > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good


def params_str(d):
    return ",".join(f"{k}={int(v) if float(v).is_integer() else v}" for k, v in d.items())


def lid_mle(x, metric_l2=True, n_sample=1000, n_ref=8000, k=10, seed=0):
    """Intrinsic dimension (Levina-Bickel maximum likelihood, k neighbours)
    estimated on a sample: mean over points of (k-1) / sum_j log(r_k / r_j)."""
    from .. import METRIC_L2, knn

    rng = np.random.default_rng(seed)
    n = x.shape[0]
    if n < k + 2:
        return float(x.shape[1])
    ref = x[np.sort(rng.choice(n, min(n, n_ref), replace=False))]
    q = ref[: min(n_sample, ref.shape[0])]
    D, _ = knn(q, ref, k + 1, METRIC_L2)
    r = np.sqrt(np.maximum(D[:, 1:], 0).astype(np.float64))  # column 0 is the point itself
    r = np.maximum(r, 1e-12)
    logs = np.log(r[:, -1:] / r[:, :-1]).sum(axis=1)
    ok = logs > 1e-9
    if not ok.any():
        return float(x.shape[1])
    return float(np.mean((k - 1) / logs[ok]))


def data_fingerprint(xb, xq, k, metric):
    h = np.float64(0)
    for a in (xb, xq):
        idx = np.linspace(0, a.size - 1, num=min(a.size, 4096)).astype(np.int64)
        h += float(np.sum(a.reshape(-1)[idx].astype(np.float64) * (1 + np.arange(idx.size) % 7)))
    return f"{xb.shape[0]}x{xb.shape[1]}/{xq.shape[0]}/k{k}/m{int(metric)}/{h:.6g}"


def normalize_rows(x):
    from .. import _core

    _core._normalize_rows(x)


def metric_arg(metric):
    """(metric constant, normalise) for METRIC_* or 'l2' / 'ip' / 'cosine': annvil's own parser."""
    from .. import _metric

    return _metric(metric)


def flat_choice(t):
    return {k: v for k, v in t.items() if k != "family"}


def rescale_build(b, n_old, n_new, fam):
    """A warm-start build moved to this data: nlist scales with sqrt(n)."""
    b = dict(b)
    if "ivf_nlist" in b and n_old:
        want = b["ivf_nlist"] * math.sqrt(n_new / float(n_old))
        nl = fam.space().get("ivf_nlist") or [b["ivf_nlist"]]
        b["ivf_nlist"] = min(nl, key=lambda v: abs(math.log2(v) - math.log2(max(want, 1))))
    return b


def knob_hint(params):
    """'k_factor_rf=8,nprobe=12' -> {'k_factor_rf=8': 12}: the inner knob's
    value keyed by the outer ladder's setting (as evaluate() looks it up)."""

    p = parse_params(params) if params else {}
    inner = {k: v for k, v in p.items() if k in ("nprobe", "efSearch")}
    if not inner:
        return {}
    outer = {k: v for k, v in p.items() if k not in inner}
    return {params_str(outer): int(next(iter(inner.values())))}
