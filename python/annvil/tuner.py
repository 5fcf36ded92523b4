"""annvil.tune(): the fastest index configuration that meets a recall target.

How the budget is spent (each step is what a person tuning by hand does, made
systematic):
  1. Data statistics (n, d, metric, intrinsic dimension on a sample) choose
     the starting set of each family (tuner_families.py): IVF with small and
     large nlist + PQ fast-scan + RFlat, IVF-SQ8, HNSW(+SQ8), Flat.  Earlier
     results (warm_start=) go first, their nlist rescaled to this n.
  2. Build parameters (family, nlist, encoding, M, efConstruction, storage)
     are chosen by an Optuna study (TPE, or NSGA-II for "evolutionary"),
     constrained to builds that reach the target.
  3. Successive halving: on large sets a candidate is first built on a
     sample of the base (scored there, reported to Optuna's
     SuccessiveHalvingPruner); only the better half is built in full.
     Build time counts against the budget.
  4. On each built index the monotone search parameters are not sampled:
     nprobe / efSearch is bisected (galloping, then binary) to the smallest
     value that meets the target on the tuning queries, for each k_factor_rf
     of a short ladder.  Recall is deterministic, so this step does not
     depend on machine noise; no point past the target is measured.
  5. Only the few candidates at the target are timed, as the median of short
     runs alternated between them (a busy machine slows all alike).
  6. Held-out confirmation: the best builds are re-checked on queries they
     were not tuned on; a miss moves the knob up to the smallest value that
     meets the target there too.  The winner is timed again, interleaved
     with the runners-up, on the held-out queries.

The Faiss AutoTune API it builds on (ParameterSpace...) is in tune.py;
plots, the HTML report and parameter importances in tuner_report.py.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ._core import InvalidArgumentError
from .tune import ParameterSpace, _down, _kind, pareto_front, recall_at_k
from .tuner_families import FAMILIES

__all__ = ["tune", "TuneResult", "TuneTrial", "bisect_min"]

_STRATEGIES = ("grid", "random", "bayes", "evolutionary")


# ---------------------------------------------------------------------------------
# trials and results
# ---------------------------------------------------------------------------------
@dataclass
class TuneTrial:
    """One measured configuration.  `factory` + `build_params` make the index
    (build_params, e.g. 'efConstruction=80', are set before adding); `params`
    is the search setting, a string for ParameterSpace().set_index_parameters.
    recall: on the tuning queries; recall_heldout: on the held-out ones (set
    for the confirmed configurations); stage: 'full' or 'sample' (built on a
    sample of the base); timed: QPS is the median of interleaved runs (else
    one run, as measured during bisection)."""

    number: int
    family: str
    factory: str
    build_params: str
    params: str
    recall: float
    qps: float
    build_s: float
    bytes: int
    bytes_per_vector: float
    choice: dict  # the build's parameters as the sampler saw them (warm start / resume)
    recall_heldout: float | None = None
    stage: str = "full"
    timed: bool = False

    def to_dict(self):
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d):
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def __str__(self):
        p = f" [{self.params}]" if self.params else ""
        b = f" ({self.build_params})" if self.build_params else ""
        h = f" (held-out {self.recall_heldout:.4f})" if self.recall_heldout is not None else ""
        return (f"{self.factory}{b}{p}: recall {self.recall:.4f}{h}, {self.qps:,.0f} QPS, "
                f"{self.bytes_per_vector:.1f} B/vector, build {self.build_s:.2f} s")


class TuneResult:
    """What annvil.tune found.

    best: the confirmed fastest configuration meeting the target on the
    tuning and the held-out queries (best.recall, best.recall_heldout; when
    none does, the highest recall found, target_reached False and `message`
    says so).  front: Pareto-optimal full-size trials over recall (up), QPS
    (up), memory (down) and build time (down); trials: every measured point;
    builds: one record per build tried (its parameters, its score = log10 QPS
    at the target, pruned or not), which importances() explains."""

    def __init__(self, trials, *, k, target_recall, metric, normalize, strategy, seed, d, n,
                 nq, fingerprint, elapsed_s, families, exhausted=False, best=None, builds=None, stats=None,
                 nq_heldout=0):
        self.trials = list(trials)
        self.k, self.target_recall, self.metric = k, target_recall, int(metric)
        self.normalize, self.strategy, self.seed = normalize, strategy, seed
        self.d, self.n, self.nq, self.fingerprint = d, n, nq, fingerprint
        self.elapsed_s, self.families, self.exhausted = elapsed_s, list(families), exhausted
        self.builds = list(builds or [])
        self.stats = dict(stats or {})
        self.nq_heldout = nq_heldout
        self._best = best
        self._summarize()

    def _summarize(self):
        full = [t for t in self.trials if t.stage == "full"]
        t_ = self.target_recall

        def meets(t):
            return t.recall >= t_ and (t.recall_heldout is None or t.recall_heldout >= t_)

        if self._best is not None:
            self.best = self._best
        else:
            ok = [t for t in full if meets(t)]
            if ok:
                self.best = max(ok, key=lambda t: (t.timed, t.qps, -t.bytes))
            elif full:
                self.best = max(full, key=lambda t: (t.recall, t.qps))
            else:
                self.best = None
        self.target_reached = self.best is not None and meets(self.best)
        pts = [(t.recall, t.qps, t.bytes, t.build_s) for t in full]
        self.front = [full[i] for i in pareto_front(pts, [True, True, False, False])] if pts else []
        self.front.sort(key=lambda t: (t.recall, t.qps))
        if self.best is None:
            self.message = "no trial finished within the budget"
        elif self.target_reached:
            self.message = f"target recall@{self.k} >= {self.target_recall} reached: {self.best}"
        else:
            self.message = (f"TARGET NOT REACHED: no configuration tried reached recall@{self.k} >= "
                            f"{self.target_recall} on the tuning and held-out queries (families tried: "
                            f"{', '.join(self.families)}); best found: {self.best}")

    def recall_qps_front(self):
        """Full-size trials on the recall/QPS Pareto front, by increasing recall."""
        full = [t for t in self.trials if t.stage == "full"]
        pts = [(t.recall, t.qps) for t in full]
        fr = [full[i] for i in pareto_front(pts, [True, True])] if pts else []
        return sorted(fr, key=lambda t: (t.recall, t.qps))

    def build(self, xb, *, trial=None):
        """Build the best (or the given) trial's index on xb with its search
        parameters applied."""
        t = trial or self.best
        if t is None:
            raise InvalidArgumentError("the tuning result has no trial to build")
        from ._checks import as_matrix

        xb = as_matrix(xb, self.d, "xb", allow_1d=False)
        if self.normalize:
            xb = xb.copy()
            _normalize_rows(xb)
        ns = sys.modules[__package__]
        index, _ = build_index(ns, xb, t.factory, t.build_params, self.metric)
        ParameterSpace().set_index_parameters(index, t.params)
        return index

    # ---- explaining ----
    def importances(self, objective="qps"):
        """{parameter: importance}, summing to 1.  objective 'qps': what the
        score of a build (log10 QPS at the target; unreachable builds below
        every reachable one) depends on, over the build parameters;
        'recall': what recall depends on, over build and search parameters
        of every full-size trial.  Optuna's fANOVA when scikit-learn is
        installed, else a variance decomposition of the main effects."""
        from .tuner_report import importances

        cache = self.__dict__.setdefault("_importances", {})
        key = (objective, len(self.builds), len(self.trials))
        if key not in cache:
            cache[key] = importances(self, objective)
        return dict(cache[key])

    def plot(self, path, title=None):
        """Recall vs QPS of every full-size trial (log QPS), by family, with the
        Pareto front, the target and the best; writes a PNG."""
        from .tuner_report import plot_front

        return plot_front(self, path, title=title)

    def report(self, path):
        """path ending in .html: one page with the front, the importances and
        a recall/QPS slice per parameter (figures embedded); else a directory
        of PNGs (front.png, importances.png, slices.png).  Returns the path."""
        from .tuner_report import write_report

        return write_report(self, path)

    # ---- persistence ----
    def to_dict(self):
        return {
            "format": "annvil-tune/2",
            "k": self.k, "target_recall": self.target_recall, "metric": self.metric,
            "normalize": self.normalize, "strategy": self.strategy, "seed": self.seed,
            "d": self.d, "n": self.n, "nq": self.nq, "nq_heldout": self.nq_heldout,
            "fingerprint": self.fingerprint, "elapsed_s": self.elapsed_s, "families": self.families,
            "exhausted": self.exhausted, "stats": self.stats,
            "target_reached": self.target_reached, "message": self.message,
            "best": self.best.to_dict() if self.best else None,
            "front": [t.number for t in self.front],
            "builds": self.builds,
            "trials": [t.to_dict() for t in self.trials],
        }

    def save(self, path):
        import json

        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path):
        import json

        try:
            with open(path) as f:
                d = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"no tuning result at '{path}'") from None
        except json.JSONDecodeError as e:
            raise InvalidArgumentError(f"'{path}' is not a tuning result (bad JSON: {e})") from None
        if not isinstance(d, dict) or d.get("format") not in ("annvil-tune/1", "annvil-tune/2"):
            raise InvalidArgumentError(f"'{path}' is not an annvil tuning result")
        try:
            trials = [TuneTrial.from_dict(t) for t in d["trials"]]
            best = TuneTrial.from_dict(d["best"]) if d.get("best") else None
            return cls(trials, k=d["k"], target_recall=d["target_recall"], metric=d["metric"],
                       normalize=d["normalize"], strategy=d["strategy"], seed=d["seed"], d=d["d"], n=d["n"],
                       nq=d["nq"], fingerprint=d["fingerprint"], elapsed_s=d["elapsed_s"],
                       families=d["families"], exhausted=d.get("exhausted", False), best=best,
                       builds=d.get("builds"), stats=d.get("stats"), nq_heldout=d.get("nq_heldout", 0))
        except (KeyError, TypeError) as e:
            raise InvalidArgumentError(f"'{path}' is not a complete annvil tuning result ({e})") from None

    def summary(self):
        lines = [self.message, f"{len(self.trials)} trials, {len(self.builds)} builds in {self.elapsed_s:.1f} s; "
                 "Pareto front:"]
        lines += [f"  {t}" for t in self.front[:20]]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<TuneResult trials={len(self.trials)} target_reached={self.target_reached} "
                f"best={self.best.factory + ' ' + self.best.params if self.best else None}>")


# ---------------------------------------------------------------------------------
# building and measuring
# ---------------------------------------------------------------------------------
def build_index(ns, xb, factory, build_params, metric, *, train_max=None, timing=False):
    """index_factory + build parameters + train + add: (index, seconds), or
    with timing=True (index, seconds, seconds of the add alone)."""
    from .factory import _build

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


def _index_bytes(index):
    """Serialized size: annvil.serialize_index, or faiss's for Faiss indexes."""
    if type(index).__module__.startswith("faiss"):
        import faiss

        return int(len(faiss.serialize_index(index)))
    from . import serialize_index

    return int(len(serialize_index(index)))


def bisect_min(f, lo, hi, target, *, hint=None):
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


def _search(index, xq, k):
    return index.search(xq, k)[1]


def _interleaved_qps(cands, xq, k, rounds=5, min_run_s=0.03):
    """cands: [(index, params string)].  Times searches of xq on each,
    alternating between them (forward then backward order each round, so a
    slow spell hits all alike) and returns the QPS of each from the median
    run.  A run is the whole of xq, or several passes when one is shorter
    than min_run_s."""
    ps = ParameterSpace()
    times = [[] for _ in cands]
    reps = []
    for index, params in cands:  # one warm-up pass each, also sizing the runs
        ps.set_index_parameters(index, params)
        t0 = time.perf_counter()
        _search(index, xq, k)
        t = max(time.perf_counter() - t0, 1e-6)
        reps.append(max(1, int(math.ceil(min_run_s / t))))
    for r in range(rounds):
        order = range(len(cands)) if r % 2 == 0 else reversed(range(len(cands)))
        for i in order:
            index, params = cands[i]
            ps.set_index_parameters(index, params)
            t0 = time.perf_counter()
            for _ in range(reps[i]):
                _search(index, xq, k)
            times[i].append((time.perf_counter() - t0) / reps[i])
    return [len(xq) / max(float(np.median(t)), 1e-9) for t in times]


def _params_str(d):
    return ",".join(f"{k}={int(v) if float(v).is_integer() else v}" for k, v in d.items())


def _lid_mle(x, metric_l2=True, n_sample=1000, n_ref=8000, k=10, seed=0):
    """Intrinsic dimension (Levina-Bickel maximum likelihood, k neighbours)
    estimated on a sample: mean over points of (k-1) / sum_j log(r_k / r_j)."""
    from . import METRIC_L2, knn

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


def _data_fingerprint(xb, xq, k, metric):
    h = np.float64(0)
    for a in (xb, xq):
        idx = np.linspace(0, a.size - 1, num=min(a.size, 4096)).astype(np.int64)
        h += float(np.sum(a.reshape(-1)[idx].astype(np.float64) * (1 + np.arange(idx.size) % 7)))
    return f"{xb.shape[0]}x{xb.shape[1]}/{xq.shape[0]}/k{k}/m{int(metric)}/{h:.6g}"


def _normalize_rows(x):
    from . import _core

    _core._normalize_rows(x)


def _metric_arg(metric):
    """(metric constant, normalise) for METRIC_* or 'l2' / 'ip' / 'cosine': annvil's own parser."""
    from . import _metric

    return _metric(metric)


@dataclass
class _Level:
    """One base size the tuner builds on: the full base, or a sample of it for
    successive halving, with the tuning queries' ground truth there."""

    xb: np.ndarray
    gt: np.ndarray
    stage: str
    cache: dict = field(default_factory=dict)  # build key -> (index, build_s, nbytes)


class _Tuner:
    def __init__(self, xb, xq_t, gt_t, xq_h, gt_h, k, target, metric, ns, fams, deadline, verbose, seed,
                 sample_frac, max_cached=6):
        self.k, self.target, self.metric, self.ns = k, target, metric, ns
        self.fams, self.deadline, self.verbose = fams, deadline, verbose
        self.xq_t, self.xq_h, self.gt_h = xq_t, xq_h, gt_h
        self.full = _Level(xb, gt_t, "full")
        self.sample = None
        self.sample_frac = sample_frac
        if sample_frac:
            from . import knn

            ns_ = max(k + 1, int(round(xb.shape[0] * sample_frac)))
            sel = np.sort(np.random.default_rng(seed + 17).choice(xb.shape[0], ns_, replace=False))
            xs = np.ascontiguousarray(xb[sel])
            self.sample = _Level(xs, knn(xq_t, xs, k, metric)[1], "sample")
        self.max_cached = max_cached
        self.trials: list[TuneTrial] = []
        self.builds: list[dict] = []
        self.results = {}  # (family, build key, stage) -> evaluation dict

    # ---- one build ----
    def _index(self, level, fam, b):
        factory, bp = fam.factory(b)
        key = (factory, bp)
        if key in level.cache:
            level.cache[key] = level.cache.pop(key)  # most recently used last
            return level.cache[key]
        index, build_s = build_index(self.ns, level.xb, factory, bp, self.metric)
        entry = (index, build_s, _index_bytes(index))
        level.cache[key] = entry
        while len(level.cache) > self.max_cached:
            level.cache.pop(next(iter(level.cache)))
        return entry

    def _record(self, level, fam, b, params, recall, qps, build_s, nbytes, timed=False, heldout=None):
        factory, bp = fam.factory(b)
        t = TuneTrial(len(self.trials), fam.name, factory, bp, params, float(recall), float(qps), float(build_s),
                      int(nbytes), nbytes / float(level.xb.shape[0]), {"family": fam.name, **b}, heldout,
                      level.stage, timed)
        self.trials.append(t)
        if self.verbose:
            print(f"  {level.stage} trial {t.number}: {t}")
        return t

    def evaluate(self, fam, b, level, hints=None):
        """Build b on level, bisect its knobs to the target on the tuning
        queries, time the candidates; returns a dict with 'score' (log10 QPS
        at the target; unreachable builds score below -10 + their recall),
        'best' (the winning candidate params) and 'cands'."""
        rkey = (fam.name, tuple(sorted(b.items())), level.stage)
        if rkey in self.results:
            return self.results[rkey]
        index, build_s, nbytes = self._index(level, fam, b)
        ps = ParameterSpace()
        outer, inner = fam.knobs(b)
        seen = {}

        def measure(params):
            if params in seen:
                return seen[params]
            ps.set_index_parameters(index, params)
            t0 = time.perf_counter()
            I = _search(index, self.xq_t, self.k)
            dt = max(time.perf_counter() - t0, 1e-9)
            r = recall_at_k(I, level.gt)
            seen[params] = r
            self._record(level, fam, b, params, r, len(self.xq_t) / dt, build_s, nbytes)
            return r

        cands = []  # (params string, outer dict, inner value)
        best_miss = [-1.0]
        prev = None
        flat = 0
        if inner is None:
            r = measure("")
            if r >= self.target:
                cands.append(("", {}, None))
            best_miss[0] = max(best_miss[0], r)
        else:
            name, lo, hi = inner
            for o in outer:
                if time.monotonic() > self.deadline:
                    break
                top = hi if prev is None else prev  # a larger k_factor needs no larger nprobe
                hint = (hints or {}).get(_params_str(o)) if hints else None

                def f(v, o=o):
                    return measure(_params_str({**o, name: v}))

                v = bisect_min(f, lo, top, self.target, hint=hint)
                if v is None:
                    p = _params_str({**o, name: top})
                    best_miss[0] = max(best_miss[0], seen[p] if p in seen else f(top))
                    continue
                cands.append((_params_str({**o, name: v}), o, v))
                if prev is not None and v >= prev:
                    flat += 1
                else:
                    flat = 0
                prev = v
                if v <= lo or flat >= 1:
                    break  # larger ladder values only cost more
        ev = {"fam": fam, "b": b, "level": level, "build_s": build_s, "nbytes": nbytes, "cands": [],
              "best": None, "score": None, "recall_max": best_miss[0], "inner": inner}
        if cands:
            qps = _interleaved_qps([(index, c[0]) for c in cands], self.xq_t, self.k, rounds=3)
            for (p, o, v), q in zip(cands, qps):
                self._record(level, fam, b, p, seen[p], q, build_s, nbytes, timed=True)
                ev["cands"].append({"params": p, "outer": o, "inner": v, "qps": q, "recall": seen[p]})
            ev["cands"].sort(key=lambda c: -c["qps"])
            ev["best"] = ev["cands"][0]
            ev["score"] = math.log10(ev["best"]["qps"])
            ev["recall_max"] = max(c["recall"] for c in ev["cands"])
        else:
            ev["score"] = -10.0 + max(0.0, best_miss[0])  # below every reachable build, ordered by recall
        self.results[rkey] = ev
        return ev

    # ---- held-out confirmation ----
    def confirm(self, evs, top=4):
        """Re-check the best candidates of the best full builds on the
        held-out queries (raising the knob where they miss), then time them
        interleaved on the held-out queries; returns the winning trial."""
        cands = []
        for ev in sorted([e for e in evs if e["best"] is not None], key=lambda e: -e["score"])[:top]:
            fam, b = ev["fam"], ev["b"]
            index = self._index(self.full, fam, b)[0]
            for c in ev["cands"][:2]:
                params = c["params"]
                rh, low = self._heldout_lower(index, params)
                if low < self.target and ev["inner"] is not None:
                    name, lo, hi = ev["inner"]

                    def f(v, c=c):
                        return self._heldout_lower(index, _params_str({**c["outer"], name: v}))[1]

                    v = bisect_min(f, c["inner"], hi, self.target)
                    if v is None:  # the bound is out of reach: settle for the mean
                        v = bisect_min(lambda v, c=c: self._heldout_recall(
                            index, _params_str({**c["outer"], name: v})), c["inner"], hi, self.target)
                    if v is None:
                        continue
                    params = _params_str({**c["outer"], name: v})
                    rh = self._heldout_recall(index, params)
                if rh >= self.target:
                    cands.append((ev, index, params, rh))
        if not cands:
            return None
        qps = _interleaved_qps([(c[1], c[2]) for c in cands], self.xq_h, self.k, rounds=7)
        out = []
        ps = ParameterSpace()
        for (ev, index, params, rh), q in zip(cands, qps):
            ps.set_index_parameters(index, params)
            rt = recall_at_k(_search(index, self.xq_t, self.k), self.full.gt)
            out.append(self._record(self.full, ev["fam"], ev["b"], params, rt, q, ev["build_s"], ev["nbytes"],
                                    timed=True, heldout=rh))
        # QPS within 5% of the fastest are a tie for the timer: break it by
        # memory then by the order of the tuning-stage scores (deterministic),
        # so that machine noise does not flip the answer between close calls
        top = max(t.qps for t in out)
        close = [t for t in out if t.qps >= 0.95 * top]
        return min(close, key=lambda t: (t.bytes, out.index(t)))

    def _heldout_recall(self, index, params):
        ParameterSpace().set_index_parameters(index, params)
        return recall_at_k(_search(index, self.xq_h, self.k), self.gt_h)

    def _heldout_lower(self, index, params):
        """(held-out recall, its lower bound: recall minus one standard error
        of the per-query recalls).  Confirming on the bound rather than the
        mean keeps the answer at the target on yet other queries, where the
        smallest knob meeting the mean on one sample misses by about one
        standard error half the time."""
        ParameterSpace().set_index_parameters(index, params)
        I = _search(index, self.xq_h, self.k)
        g = self.gt_h
        per = (((I[:, :, None] == g[:, None, :]) & (I[:, :, None] >= 0)).any(axis=2).sum(axis=1) / float(g.shape[1]))
        r = float(per.mean())
        se = float(per.std(ddof=1) / math.sqrt(len(per))) if len(per) > 1 else 0.0
        return r, r - se

    def heldout_of_best_miss(self, evs):
        """When no build reaches the target: the highest-recall full trial,
        with its held-out recall."""
        full = [t for t in self.trials if t.stage == "full"]
        if not full:
            return None
        t = max(full, key=lambda t: (t.recall, t.qps))
        fam = self.fams[t.family]
        b = {k: v for k, v in t.choice.items() if k != "family"}
        index = self._index(self.full, fam, b)[0]
        t.recall_heldout = self._heldout_recall(index, t.params)
        return t


def _flat_choice(t):
    return {k: v for k, v in t.items() if k != "family"}


def _rescale_build(b, n_old, n_new, fam):
    """A warm-start build moved to this data: nlist scales with sqrt(n)."""
    b = dict(b)
    if "ivf_nlist" in b and n_old:
        want = b["ivf_nlist"] * math.sqrt(n_new / float(n_old))
        nl = fam.space().get("ivf_nlist") or [b["ivf_nlist"]]
        b["ivf_nlist"] = min(nl, key=lambda v: abs(math.log2(v) - math.log2(max(want, 1))))
    return b


def tune(xb, xq=None, *, k=10, target_recall=0.95, budget_s=300, metric=None, strategy="bayes",
         seed=0, warm_start=None, resume=None, families=("flat", "ivf", "hnsw", "qg"), n_trials=None,
         nq=1000, gt=None, search_space=None, holdout=0.5, sample_frac="auto", verbose=False, progress=False,
         _ns=None):
    """Find the fastest index configuration that reaches `target_recall` (recall@k).

    xb: (n, d) base vectors; xq: queries (default: `nq` rows of xb held out
    of the base); gt: optional (nq, >=k) true neighbour ids of xq in xb.
    holdout: the fraction of the queries kept out of tuning to confirm the
    answer on (0: confirm on the tuning queries themselves).
    metric: METRIC_L2 (default), METRIC_INNER_PRODUCT, or 'l2' / 'ip' / 'cosine'.
    strategy: how build parameters are chosen: 'bayes' (Optuna TPE,
    constrained to builds that reach the target), 'evolutionary' (Optuna
    NSGA-II, same constraint), 'random' or 'grid' (every build, starting set
    first).  Whatever the strategy, search parameters (nprobe, efSearch,
    k_factor_rf) are not sampled but bisected to the smallest value meeting
    the target (see the module docstring for the whole procedure).
    families: any of annvil.tuner_families.FAMILIES present in this build.
    search_space: overrides of the candidate lists: ivf_nlist, ivf_encodings,
    k_factors, hnsw_M, hnsw_efConstruction, hnsw_storage, efSearch_max.
    sample_frac: fraction of the base used for the first round of
    successive halving ('auto': 1/4 when the sample has >= 5000 vectors,
    else off; None or 0: off).  budget_s bounds the wall time, builds
    included (one build may overrun it); n_trials caps the builds tried.
    warm_start: a TuneResult or JSON path whose best builds are tried first
    (nlist rescaled to this n; its knob values start the bisections).
    resume: a JSON path; builds found there (same data, k and metric) are
    not re-scored, and the result is saved there after every build.
    seed fixes the query split, the samples and the samplers.

    Returns a TuneResult (.best with .recall and .recall_heldout, .front,
    .target_reached, .message, .importances(), .build(xb), .save(path),
    .plot(path), .report(path))."""
    from . import METRIC_L2, knn
    from ._checks import as_ids, as_matrix

    if strategy not in _STRATEGIES:
        raise InvalidArgumentError(f"unknown strategy '{strategy}'; choose from {_STRATEGIES}")
    k = int(k)
    if k < 1:
        raise InvalidArgumentError(f"k must be at least 1, got {k}")
    if not 0.0 < float(target_recall) <= 1.0:
        raise InvalidArgumentError(f"target_recall must be in (0, 1], got {target_recall}")
    if budget_s is not None and float(budget_s) <= 0:
        raise InvalidArgumentError(f"budget_s must be positive, got {budget_s}")
    if not 0.0 <= float(holdout) < 1.0:
        raise InvalidArgumentError(f"holdout must be in [0, 1), got {holdout}")
    target = float(target_recall)
    metric, normalize = _metric_arg(METRIC_L2 if metric is None else metric)
    ns = _ns or sys.modules[__package__]
    t_start = time.monotonic()
    deadline = math.inf if budget_s is None else t_start + float(budget_s)

    xb = as_matrix(xb, None, "xb", allow_1d=False)
    if xq is None:
        n_all = xb.shape[0]
        if n_all < 2:
            raise InvalidArgumentError("xb needs at least 2 vectors to hold out queries")
        nq = int(min(nq, max(1, n_all // 10)))
        perm = np.random.default_rng(seed).permutation(n_all)
        qsel, bsel = np.sort(perm[:nq]), np.sort(perm[nq:])
        xq, xb = xb[qsel], np.ascontiguousarray(xb[bsel])
        gt = None
    else:
        xq = as_matrix(xq, xb.shape[1], "xq", allow_1d=False)
    if normalize:
        xb, xq = xb.copy(), xq.copy()
        _normalize_rows(xb)
        _normalize_rows(xq)
    n, d = xb.shape
    if k > n:
        raise InvalidArgumentError(f"k={k} is larger than the number of base vectors ({n})")
    if gt is None:
        _, gt = knn(xq, xb, k, metric)
    else:
        gt = np.asarray(gt)
        if gt.ndim != 2 or gt.shape[0] != xq.shape[0] or gt.shape[1] < k:
            raise InvalidArgumentError(f"gt must have shape ({xq.shape[0]}, >= {k}), got {gt.shape}")
        gt = as_ids(gt.reshape(-1), what="gt").reshape(gt.shape)
    gt = gt[:, :k]
    fingerprint = _data_fingerprint(xb, xq, k, metric)
    # tuning / held-out split of the queries
    nh = int(len(xq) * float(holdout)) if len(xq) >= 4 else 0
    perm = np.random.default_rng(seed + 1).permutation(len(xq))
    hsel, tsel = np.sort(perm[:nh]), np.sort(perm[nh:])
    xq_t, gt_t = np.ascontiguousarray(xq[tsel]), gt[tsel]
    xq_h, gt_h = (np.ascontiguousarray(xq[hsel]), gt[hsel]) if nh else (xq_t, gt_t)

    # data statistics and the families
    stats = {"n": int(n), "d": int(d), "k": k, "metric": int(metric), "normalize": bool(normalize),
             "lid": round(_lid_mle(xb), 2), "overrides": dict(search_space or {})}
    known_keys = {kk for c in FAMILIES.values() for kk in c.overrides}
    bad = set(stats["overrides"]) - known_keys
    if bad:
        raise InvalidArgumentError(f"unknown search_space key(s) {sorted(bad)}; use {sorted(known_keys)}")
    fams = {}
    for f in families:
        if f not in FAMILIES:
            raise InvalidArgumentError(f"unknown index family '{f}'; choose from {tuple(FAMILIES)}")
        if FAMILIES[f].available(ns):
            fams[f] = FAMILIES[f](stats, ns)
    if not fams:
        raise InvalidArgumentError(
            f"none of the families {tuple(families)} is available in this build (flat always is)")
    if sample_frac == "auto":
        sample_frac = 0.25 if n * 0.25 >= 5000 else None
    elif sample_frac:
        sample_frac = float(sample_frac)
        if not 0.0 < sample_frac < 1.0:
            raise InvalidArgumentError(f"sample_frac must be in (0, 1), 'auto' or None, got {sample_frac}")
    tuner = _Tuner(xb, xq_t, gt_t, xq_h, gt_h, k, target, metric, ns, fams, deadline, verbose, seed,
                   sample_frac or None)
    stats.pop("overrides")
    stats["sample_frac"] = sample_frac or 0.0
    stats["nq_tune"], stats["nq_heldout"] = int(len(xq_t)), int(nh)

    def result(best=None, exhausted=False):
        return TuneResult(tuner.trials, k=k, target_recall=target, metric=metric, normalize=normalize,
                          strategy=strategy, seed=seed, d=d, n=n, nq=len(xq_t), fingerprint=fingerprint,
                          elapsed_s=time.monotonic() - t_start, families=list(fams), exhausted=exhausted,
                          best=best, builds=tuner.builds, stats=stats, nq_heldout=nh)

    # earlier results: resume (same data) and warm start (any data)
    reused = {}
    first = []  # builds tried first: warm start, then the family-aware starting set
    hints = {}
    if resume is not None and os.path.exists(resume):
        old = TuneResult.load(resume)
        if old.fingerprint == fingerprint:
            for rec in old.builds:
                if rec.get("family") in fams and rec.get("stage") == "full":
                    reused[(rec["family"], tuple(sorted(rec["build"].items())))] = rec
        elif verbose:
            print(f"tune: {resume} was measured on other data/k/metric; not reusing its builds")
    if warm_start is not None:
        ws = TuneResult.load(warm_start) if isinstance(warm_start, (str, os.PathLike)) else warm_start
        if not isinstance(ws, TuneResult):
            raise InvalidArgumentError("warm_start must be a TuneResult or the path of a saved one")
        recs = sorted([r for r in ws.builds if r.get("stage") == "full" and r.get("score") is not None],
                      key=lambda r: -r["score"])
        seeds = ([ws.best] if ws.best else [])
        for t in seeds:
            if t.family in fams:
                first.append((t.family, _rescale_build(_flat_choice(t.choice), ws.n, n, fams[t.family])))
        for r in recs[:3]:
            if r["family"] in fams:
                first.append((r["family"], _rescale_build(r["build"], ws.n, n, fams[r["family"]])))
        for t in ws.trials:  # knob values that met the target there start the bisections here
            if t.timed and t.family in fams:
                hints.setdefault(t.family, {}).update(_knob_hint(t.params))
    order = list(fams)
    for i in range(max(len(fams[f].start()) for f in order)):  # families interleaved
        for f in order:
            s = fams[f].start()
            if i < len(s):
                first.append((f, s[i]))
    seen_first = set()
    first = [x for x in first if not ((x[0], tuple(sorted(x[1].items()))) in seen_first
                                      or seen_first.add((x[0], tuple(sorted(x[1].items())))))]

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_trials, desc=f"tune ({strategy})", unit="build", leave=False)
        except ImportError:
            bar = None

    # the confirmation at the end needs some time: keep ~10% of the budget for it
    reserve = 0.0 if budget_s is None else min(0.1 * float(budget_s), 30.0)
    full_evs = []
    state = {"builds": 0, "stale": 0}
    n_space = sum(math.prod(len(v) for v in fams[f].space().values()) for f in fams)
    done = set()

    def out_of_budget():
        return (time.monotonic() >= deadline - reserve
                or (n_trials is not None and state["builds"] >= n_trials)
                or len(done) >= n_space or state["stale"] >= 20)

    def record_build(fam_name, b, ev, stage, pruned=False, why=""):
        rec = {"family": fam_name, "build": dict(b), "stage": stage, "pruned": pruned, "why": why,
               "score": None if ev is None else ev["score"],
               "recall_max": None if ev is None else ev["recall_max"],
               "qps": None if ev is None or ev["best"] is None else ev["best"]["qps"],
               "params": None if ev is None or ev["best"] is None else ev["best"]["params"],
               "build_s": None if ev is None else ev["build_s"],
               "elapsed_s": time.monotonic() - t_start}
        tuner.builds.append(rec)
        if resume is not None:
            result().save(resume)
        return rec

    def full_fits(fam, b, ev_sample):
        """Whether the full build fits in what is left of the budget, from
        the sample build's time (HNSW grows a little faster than n)."""
        if ev_sample is None or not math.isfinite(deadline):
            return True
        est = ev_sample["build_s"] / max(sample_frac, 1e-3) * 1.3
        return time.monotonic() + est <= deadline - reserve

    def run_full(fam_name, b):
        key = (fam_name, tuple(sorted(b.items())))
        if key in reused:
            return reused[key]["score"], None
        ev = tuner.evaluate(fams[fam_name], b, tuner.full, hints.get(fam_name))
        full_evs.append(ev)
        record_build(fam_name, b, ev, "full")
        return ev["score"], ev

    def step(fam_name, b, trial=None):
        """step_() with a build that fails (e.g. too few training points for
        its codebooks) recorded as such instead of ending the search."""
        try:
            return step_(fam_name, b, trial)
        except RuntimeError as e:  # annvil's InvalidArgumentError is one, and so are Faiss's errors
            record_build(fam_name, b, None, "full", pruned=True, why=f"build failed: {str(e).splitlines()[0]}")
            if verbose:
                print(f"tune: {fam_name} {b}: {e}")
            return None

    def step_(fam_name, b, trial=None):
        """Score one build (successive halving when a sample level exists);
        returns the score, or None when pruned / out of budget."""
        key = (fam_name, tuple(sorted(b.items())))
        if key in done:  # the sampler asked again for a build already scored
            state["stale"] += 1
            ev = tuner.results.get((fam_name, tuple(sorted(b.items())), "full"))
            return None if ev is None else ev["score"]
        done.add(key)
        state["stale"] = 0
        state["builds"] += 1
        if bar is not None:
            bar.update(1)
        if tuner.sample is not None and key not in reused and fam_name != "flat":
            ev_s = tuner.evaluate(fams[fam_name], b, tuner.sample, hints.get(fam_name))
            if trial is not None:
                import optuna

                trial.report(ev_s["score"], 1)
                if trial.should_prune():
                    record_build(fam_name, b, ev_s, "sample", pruned=True, why="successive halving")
                    raise optuna.TrialPruned()
            if not full_fits(fams[fam_name], b, ev_s):
                record_build(fam_name, b, ev_s, "sample", pruned=True, why="full build would not fit the budget")
                return None
            record_build(fam_name, b, ev_s, "sample")
        score, ev = run_full(fam_name, b)
        if trial is not None and ev is not None:
            trial.set_user_attr("constraint", [float(target - ev["recall_max"])])
        return score

    exhausted = False
    if strategy in ("grid", "random"):
        builds = list(first)
        allb = []
        for f in order:
            sp = fams[f].space()
            names = list(sp)
            import itertools

            for combo in itertools.product(*(sp[nm] for nm in names)):
                allb.append((f, dict(zip(names, combo))))
        if strategy == "random":
            rng = np.random.default_rng(seed)
            allb = [allb[i] for i in rng.permutation(len(allb))]
        keys = {(f, tuple(sorted(b.items()))) for f, b in builds}
        builds += [x for x in allb if (x[0], tuple(sorted(x[1].items()))) not in keys]
        for f, b in builds:
            if out_of_budget():
                break
            step(f, b)
        else:
            exhausted = True
    else:
        try:
            import optuna
        except ImportError:
            raise ImportError(f"strategy '{strategy}' needs optuna (pip install optuna); "
                              "strategy='grid' or 'random' work without it") from None
        import warnings

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", FutureWarning)  # constraints_func: deprecated in Optuna 5, still works

            def constraints(tr):
                return tr.user_attrs.get("constraint", [1.0])

            if strategy == "bayes":
                sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(4, len(first)),
                                                     multivariate=True, group=True, constraints_func=constraints)
            else:
                sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=8, constraints_func=constraints)
            pruner = _HalvingPruner(optuna, warmup=len(fams))
            study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
            for f, b in first:
                study.enqueue_trial({"family": f, **b}, skip_if_exists=True)

            def objective(trial):
                f = trial.suggest_categorical("family", list(fams))
                b = {nm: trial.suggest_categorical(nm, vals) for nm, vals in fams[f].space().items()}
                score = step(f, b, trial)
                if score is None:
                    raise optuna.TrialPruned()
                return score

            def after(study_, _trial):
                if out_of_budget():
                    study_.stop()

            if not out_of_budget():
                study.optimize(objective, n_trials=None, callbacks=[after], catch=())
    if bar is not None:
        bar.close()
    best = tuner.confirm(full_evs) if full_evs else None
    if best is None:
        best = tuner.heldout_of_best_miss(full_evs)
    res = result(best=best, exhausted=exhausted)
    if resume is not None:
        res.save(resume)
    return res


def _knob_hint(params):
    """'k_factor_rf=8,nprobe=12' -> {'k_factor_rf=8': 12}: the inner knob's
    value keyed by the outer ladder's setting (as evaluate() looks it up)."""
    from .tune import parse_params

    p = parse_params(params) if params else {}
    inner = {k: v for k, v in p.items() if k in ("nprobe", "efSearch")}
    if not inner:
        return {}
    outer = {k: v for k, v in p.items() if k not in inner}
    return {_params_str(outer): int(next(iter(inner.values())))}


class _HalvingPruner:
    """Optuna's SuccessiveHalvingPruner (reduction factor 2: the better half
    of the sample-stage scores go on to a full build), except during the
    first `warmup` trials, so that every family's first build is seen in
    full."""

    def __new__(cls, optuna, warmup):
        base = optuna.pruners.BasePruner

        class _P(base):
            def __init__(self):
                self.sh = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2,
                                                                 min_early_stopping_rate=0)

            def prune(self, study, trial):
                done = [t for t in study.get_trials(deepcopy=False)
                        if t.number != trial.number and t.intermediate_values]
                if len(done) < warmup:
                    return False
                return self.sh.prune(study, trial)

        return _P()
