"""annvil.eval: the recall variants (against Faiss's own measures), the Pareto
front and the timers."""
import time

import numpy as np
import pytest

import annvil
from annvil.eval import (Timer, best_of, fastest_of, intersection_recall, median_time, one_recall_at_r, pareto_front,
                         recall_at_k, recall_per_query)

faiss = pytest.importorskip("faiss")


def _results(nq=77, k=10, n=500, seed=0):
    rng = np.random.default_rng(seed)
    gt = np.stack([rng.choice(n, k, replace=False) for _ in range(nq)]).astype(np.int64)
    I = gt.copy()
    # perturb: replace some ids by others (some of those still in gt, shuffled)
    for q in range(nq):
        m = rng.integers(0, k + 1)
        I[q, rng.choice(k, m, replace=False)] = rng.choice(np.setdiff1d(np.arange(n), gt[q]), m, replace=False)
        rng.shuffle(I[q])
    return I, gt


@pytest.mark.parametrize("k", [1, 3, 10])
def test_recall_variants_agree_with_faiss_on_distinct_ids(k):
    I, gt = _results(k=k)
    expect = faiss.eval_intersection(I, gt) / float(I.shape[0] * k)
    assert recall_at_k(I, gt) == pytest.approx(expect, abs=1e-12)
    assert intersection_recall(I, gt, k) == pytest.approx(expect, abs=1e-12)
    assert recall_per_query(I, gt).mean() == pytest.approx(expect, abs=1e-12)
    crit = faiss.IntersectionCriterion(I.shape[0], k)
    crit.set_groundtruth(None, gt)
    D = np.zeros(I.shape, np.float32)
    assert recall_at_k(I, gt) == pytest.approx(crit.evaluate(faiss.swig_ptr(D), faiss.swig_ptr(I)), abs=1e-12)


def test_one_recall_matches_faiss_criterion():
    I, gt = _results(k=10)
    for R in (1, 4, 10):
        crit = faiss.OneRecallAtRCriterion(I.shape[0], R)
        crit.set_groundtruth(None, gt)
        IR = np.ascontiguousarray(I[:, :R])  # Faiss reads nq * R ids
        D = np.zeros(IR.shape, np.float32)
        assert one_recall_at_r(I, gt, R) == pytest.approx(crit.evaluate(faiss.swig_ptr(D), faiss.swig_ptr(IR)))


def test_variants_differ_where_documented():
    gt = np.array([[1, 2, 3, 4]], np.int64)
    dup = np.array([[1, 1, 2, -1]], np.int64)
    assert recall_at_k(dup, gt) == 0.75  # every position counted
    assert intersection_recall(dup, gt, 4) == 0.5  # as sets of ids
    assert intersection_recall(np.array([[1, 9, 9, 9, 2]]), gt, 2) == 0.5  # first k of both only
    # -1 never matches in recall_at_k, even against a -1 in the ground truth
    assert recall_at_k(np.array([[-1, -1]]), np.array([[-1, 5]])) == 0.0
    with pytest.raises(annvil.InvalidArgumentError, match="result rows"):
        recall_at_k(np.zeros((2, 3), np.int64), np.zeros((3, 3), np.int64))
    with pytest.raises(annvil.InvalidArgumentError, match="k must be at least 1"):
        intersection_recall(gt, gt, 0)


def test_pareto_front_drops_dominated_points_only():
    pts = [(0.9, 100.0), (0.8, 200.0), (0.85, 90.0), (0.9, 100.0), (0.95, 10.0)]
    assert pareto_front(pts, [True, True]) == [0, 1, 3, 4]
    assert pareto_front([], [True]) == []
    assert pareto_front([(1.0, 5.0), (2.0, 1.0)], [False, False]) == [0, 1]
    with pytest.raises(annvil.InvalidArgumentError, match="points must be"):
        pareto_front([(1.0, 2.0, 3.0)], [True, True])


def test_timers():
    with Timer() as t:
        time.sleep(0.01)
    assert 0.009 <= t.s < 1.0 and t.s == t.s  # stopped: reads the same twice
    calls = []
    out, best = fastest_of(lambda: calls.append(1) or len(calls), min_time=0.0, max_runs=5)
    assert out == len(calls) and 1 <= len(calls) <= 5 and best >= 0
    out, best = fastest_of(lambda: time.sleep(0.002), min_time=0.05, max_runs=4)
    assert best >= 0.0019
    n = []
    assert median_time(lambda: n.append(0), repeats=3) >= 0 and len(n) == 4  # one warm-up + 3
    runs = []
    best, out = best_of(lambda: runs.append(0) or len(runs), 3)
    assert out == 4 and best >= 0  # a warm-up, then 3 timed runs
    ticks = iter(range(100))
    best, out = best_of(lambda: None, 2, warmup=False, clock=lambda: next(ticks) ** 2)
    assert best == 1  # clock readings 0,1 then 4,9: the fastest run took 1 tick
