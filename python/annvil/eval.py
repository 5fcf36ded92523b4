"""Measuring search results: recall against ground truth, the Pareto front of
measured points, and timers.  One copy of each, used by the tuner
(annvil.tuner), Faiss's AutoTune criteria (autotune.py), the benchmark
harness (annvil.bench) and the scripts in bench/.

Recall comes in three variants, which differ on purpose (each caller keeps
the one it had):
  recall_at_k          mean |I[q] ∩ gt[q]| / k over queries, every result
                       position counted (Faiss's IntersectionCriterion); a -1
                       (missing result) never matches.  Vectorised.
  intersection_recall  the same over the first k columns of both, as sets
                       of ids (a repeated id counts once), as bench/*.py
                       have always measured it.
  one_recall_at_r      fraction of queries whose true nearest neighbour is
                       among the first R results (OneRecallAtRCriterion).
For ground truth from an exact search (distinct ids, no -1) and results
without repeated ids, recall_at_k and intersection_recall agree.

Timers: median_time (median of repeated runs after a warm-up), best_of
(fastest of a fixed number of runs, on any clock), fastest_of (fastest of a
few runs, as many as min_time asks for), Timer (a stopwatch context
manager) and interleaved_qps (several configurations timed in alternation,
so that a slow spell of a shared machine slows them all alike).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from ._core import InvalidArgumentError

__all__ = ["recall_at_k", "recall_per_query", "intersection_recall", "one_recall_at_r", "pareto_front",
           "median_time", "best_of", "fastest_of", "Timer", "interleaved_qps"]


# ---------------------------------------------------------------------------------
# recall
# ---------------------------------------------------------------------------------
def _hits(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(rows, cols of a) booleans: a[i, j] is a valid id found in g[i]."""
    return ((a[:, :, None] == g[:, None, :]) & (a[:, :, None] >= 0)).any(axis=2)


def recall_at_k(I: Any, gt: Any) -> float:
    """Mean over queries of |I[q] ∩ gt[q]| / gt.shape[1] (ids -1 never match).
    I: (nq, any) result ids; gt: (nq, k) true neighbour ids."""
    I = np.asarray(I)
    gt = np.asarray(gt)
    k = gt.shape[1]
    if I.shape[0] != gt.shape[0]:
        raise InvalidArgumentError(f"{I.shape[0]} result rows for {gt.shape[0]} ground-truth rows")
    hits = 0
    step = max(1, (1 << 22) // max(1, I.shape[1] * k))  # bounds the (step, cols, k) temporary
    for i in range(0, I.shape[0], step):
        hits += int(_hits(I[i:i + step], gt[i:i + step]).sum())
    return hits / float(gt.shape[0] * k)


def recall_per_query(I: Any, gt: Any) -> np.ndarray:
    """recall_at_k of each query: (nq,) float64, |I[q] ∩ gt[q]| / gt.shape[1]."""
    I = np.asarray(I)
    gt = np.asarray(gt)
    if I.shape[0] != gt.shape[0]:
        raise InvalidArgumentError(f"{I.shape[0]} result rows for {gt.shape[0]} ground-truth rows")
    return _hits(I, gt).sum(axis=1) / float(gt.shape[1])


def intersection_recall(I: Any, gt: Any, k: int = 10) -> float:
    """Mean over queries of |set(I[q, :k]) ∩ set(gt[q, :k])| / k: the first k
    results against the true k nearest, as sets of ids."""
    k = int(k)
    if k < 1:
        raise InvalidArgumentError(f"k must be at least 1, got {k}")
    if len(I) != len(gt):
        raise InvalidArgumentError(f"{len(I)} result rows for {len(gt)} ground-truth rows")
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(I, gt)]))


def one_recall_at_r(I: Any, gt: Any, R: int) -> float:
    """Fraction of queries whose true nearest neighbour gt[q, 0] is among the
    first R results I[q, :R]."""
    I = np.asarray(I)
    gt = np.asarray(gt)
    if I.shape[0] != gt.shape[0]:
        raise InvalidArgumentError(f"{I.shape[0]} result rows for {gt.shape[0]} ground-truth rows")
    return float(np.mean(np.any(I[:, :int(R)] == gt[:, :1], axis=1)))


# ---------------------------------------------------------------------------------
# Pareto front
# ---------------------------------------------------------------------------------
def pareto_front(points: Any, maximize: Sequence[bool]) -> list[int]:
    """Indices of the Pareto-optimal rows of `points` (n, m): a row is dropped
    when another is at least as good in every column and better in one.
    maximize: m booleans (False = smaller is better).  Duplicates all stay."""
    p = np.asarray(points, dtype=np.float64)
    if p.size == 0:
        return []
    if p.ndim != 2 or p.shape[1] != len(maximize):
        raise InvalidArgumentError(f"points must be (n, {len(maximize)}), got shape {p.shape}")
    sign = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    q = p * sign  # now larger is better everywhere
    keep = []
    for i in range(len(q)):
        ge = np.all(q >= q[i], axis=1)
        gt = np.any(q > q[i], axis=1)
        if not np.any(ge & gt):
            keep.append(i)
    return keep


# ---------------------------------------------------------------------------------
# timers
# ---------------------------------------------------------------------------------
class Timer:
    """Stopwatch: `with Timer() as t: ...` then t.s (seconds, perf_counter).
    Reading t.s inside the block gives the time so far."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.t0 = 0.0
        self._end: float | None = None

    def __enter__(self) -> Timer:
        self.t0 = self.clock()
        self._end = None
        return self

    def __exit__(self, *exc: object) -> None:
        self._end = self.clock()

    @property
    def s(self) -> float:
        return (self.clock() if self._end is None else self._end) - self.t0


def median_time(fn: Callable[[], object], repeats: int = 3, min_time: float = 0.0) -> float:
    """Median wall time of fn() over `repeats` runs (more until min_time
    seconds have passed) after one warm-up."""
    fn()
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def best_of(fn: Callable[[], Any], repeats: int, *, warmup: bool = True,
            clock: Callable[[], float] = time.perf_counter) -> tuple[float, Any]:
    """(seconds of the fastest of `repeats` timed runs of fn(), the last run's
    result), after one untimed warm-up run when `warmup` (thread pool,
    per-thread buffers, caches).  clock: e.g. time.thread_time for CPU time,
    steadier than wall time on a shared machine with one thread."""
    out = fn() if warmup else None
    best = math.inf
    for _ in range(int(repeats)):
        t0 = clock()
        out = fn()
        best = min(best, clock() - t0)
    return best, out


def fastest_of(fn: Callable[[], Any], min_time: float = 0.2, max_runs: int = 5) -> tuple[Any, float]:
    """(fn()'s last result, seconds of the fastest run): the minimum filters
    out the noise of other work on the machine; 3 runs at least when one is
    short (under min_time / 4), 1 when one run takes min_time already, never
    more than max_runs."""
    best, total, runs, out = math.inf, 0.0, 0, None
    while runs < max_runs and (total < min_time or runs < (3 if best < min_time / 4 else 1)):
        t0 = time.perf_counter()
        out = fn()
        t = time.perf_counter() - t0
        best, total, runs = min(best, t), total + t, runs + 1
    return out, best


def interleaved_qps(cands: Sequence[tuple[Any, str]], xq: np.ndarray, k: int, rounds: int = 5,
                    min_run_s: float = 0.03) -> list[float]:
    """cands: [(index, params string for ParameterSpace)].  Times searches of
    xq on each, alternating between them (forward then backward order each
    round, so a slow spell hits all alike) and returns the QPS of each from
    the median run.  A run is the whole of xq, or several passes when one is
    shorter than min_run_s."""
    from .autotune import ParameterSpace

    ps = ParameterSpace()
    times: list[list[float]] = [[] for _ in cands]
    reps = []
    for index, params in cands:  # one warm-up pass each, also sizing the runs
        ps.set_index_parameters(index, params)
        t0 = time.perf_counter()
        index.search(xq, k)
        t = max(time.perf_counter() - t0, 1e-6)
        reps.append(max(1, int(math.ceil(min_run_s / t))))
    for r in range(rounds):
        order = range(len(cands)) if r % 2 == 0 else reversed(range(len(cands)))
        for i in order:
            index, params = cands[i]
            ps.set_index_parameters(index, params)
            t0 = time.perf_counter()
            for _ in range(reps[i]):
                index.search(xq, k)
            times[i].append((time.perf_counter() - t0) / reps[i])
    return [len(xq) / max(float(np.median(t)), 1e-9) for t in times]
