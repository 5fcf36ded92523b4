"""annvil.tune() and the Tuner behind it: one run's state, and its phases as
methods (setup, earlier results, family search, refinement and result).  The
procedure is described in the package docstring (annvil/tuner/__init__.py);
the measurements on built indexes are the Evaluator's (evaluate.py).
"""
from __future__ import annotations

import itertools
import math
import os
import time
from typing import Any, Sequence

import numpy as np

from .._core import InvalidArgumentError
from .build import (annvil_ns, data_fingerprint, flat_choice, knob_hint, lid_mle, metric_arg, normalize_rows,
                    rescale_build)
from .evaluate import Evaluator
from .families import FAMILIES
from .result import TuneResult

__all__ = ["tune", "Tuner"]

_STRATEGIES = ("grid", "random", "bayes", "evolutionary")


class Tuner:
    """One run of annvil.tune.  The constructor checks the arguments and sets
    up (query split, ground truth, fingerprint, data statistics, families,
    the Evaluator); run() spends the budget and returns the TuneResult.
    Arguments: as tune()."""

    def __init__(self, xb: Any, xq: Any = None, *, k: int = 10, target_recall: float = 0.95,
                 budget_s: float | None = 300, metric: Any = None, strategy: str = "bayes", seed: int = 0,
                 warm_start: Any = None, resume: str | os.PathLike | None = None,
                 families: Sequence[str] = ("flat", "ivf", "hnsw", "qg"), n_trials: int | None = None,
                 nq: int = 1000, gt: Any = None, search_space: dict | None = None, holdout: float = 0.5,
                 sample_frac: float | str | None = "auto", verbose: bool = False, progress: bool = False,
                 _ns: Any = None):
        self.strategy, self.seed, self.budget_s, self.n_trials = strategy, seed, budget_s, n_trials
        self.warm_start, self.resume, self.verbose, self.progress = warm_start, resume, verbose, progress
        self._check_args(k, target_recall, budget_s, holdout)
        self.metric, self.normalize = metric_arg(_metric_default() if metric is None else metric)
        self.ns = _ns or annvil_ns()
        self.t_start = time.monotonic()
        self.deadline = math.inf if budget_s is None else self.t_start + float(budget_s)
        self._setup_data(xb, xq, gt, nq, holdout)
        self._setup_families(families, search_space, sample_frac)

    # ---- setup ----
    def _check_args(self, k, target_recall, budget_s, holdout):
        if self.strategy not in _STRATEGIES:
            raise InvalidArgumentError(f"unknown strategy '{self.strategy}'; choose from {_STRATEGIES}")
        self.k = k = int(k)
        if k < 1:
            raise InvalidArgumentError(f"k must be at least 1, got {k}")
        if not 0.0 < float(target_recall) <= 1.0:
            raise InvalidArgumentError(f"target_recall must be in (0, 1], got {target_recall}")
        if budget_s is not None and float(budget_s) <= 0:
            raise InvalidArgumentError(f"budget_s must be positive, got {budget_s}")
        if not 0.0 <= float(holdout) < 1.0:
            raise InvalidArgumentError(f"holdout must be in [0, 1), got {holdout}")
        self.target = float(target_recall)

    def _setup_data(self, xb, xq, gt, nq, holdout):
        """Queries (held out of xb when none are given), normalisation, ground
        truth, the data fingerprint and the tuning / held-out query split."""
        from .. import knn
        from .._checks import as_ids, as_matrix

        k, seed = self.k, self.seed
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
        if self.normalize:
            xb, xq = xb.copy(), xq.copy()
            normalize_rows(xb)
            normalize_rows(xq)
        n, d = xb.shape
        self.n, self.d = n, d
        if k > n:
            raise InvalidArgumentError(f"k={k} is larger than the number of base vectors ({n})")
        if gt is None:
            _, gt = knn(xq, xb, k, self.metric)
        else:
            gt = np.asarray(gt)
            if gt.ndim != 2 or gt.shape[0] != xq.shape[0] or gt.shape[1] < k:
                raise InvalidArgumentError(f"gt must have shape ({xq.shape[0]}, >= {k}), got {gt.shape}")
            gt = as_ids(gt.reshape(-1), what="gt").reshape(gt.shape)
        gt = gt[:, :k]
        self.fingerprint = data_fingerprint(xb, xq, k, self.metric)
        # tuning / held-out split of the queries
        nh = int(len(xq) * float(holdout)) if len(xq) >= 4 else 0
        perm = np.random.default_rng(seed + 1).permutation(len(xq))
        hsel, tsel = np.sort(perm[:nh]), np.sort(perm[nh:])
        self.xq_t, self.gt_t = np.ascontiguousarray(xq[tsel]), gt[tsel]
        self.xq_h, self.gt_h = (np.ascontiguousarray(xq[hsel]), gt[hsel]) if nh else (self.xq_t, self.gt_t)
        self.nh = nh
        self.xb = xb

    def _setup_families(self, families, search_space, sample_frac):
        """Data statistics, the families available in the namespace, the
        successive-halving sample and the Evaluator."""
        n, d = self.n, self.d
        self.stats = stats = {"n": int(n), "d": int(d), "k": self.k, "metric": int(self.metric),
                              "normalize": bool(self.normalize), "lid": round(lid_mle(self.xb), 2),
                              "overrides": dict(search_space or {})}
        known_keys = {kk for c in FAMILIES.values() for kk in c.overrides}
        bad = set(stats["overrides"]) - known_keys
        if bad:
            raise InvalidArgumentError(f"unknown search_space key(s) {sorted(bad)}; use {sorted(known_keys)}")
        self.fams = fams = {}
        for f in families:
            if f not in FAMILIES:
                raise InvalidArgumentError(f"unknown index family '{f}'; choose from {tuple(FAMILIES)}")
            if FAMILIES[f].available(self.ns):
                fams[f] = FAMILIES[f](stats, self.ns)
        if not fams:
            raise InvalidArgumentError(
                f"none of the families {tuple(families)} is available in this build (flat always is)")
        if sample_frac == "auto":
            sample_frac = 0.25 if n * 0.25 >= 5000 else None
        elif sample_frac:
            sample_frac = float(sample_frac)
            if not 0.0 < sample_frac < 1.0:
                raise InvalidArgumentError(f"sample_frac must be in (0, 1), 'auto' or None, got {sample_frac}")
        self.sample_frac = sample_frac
        self.ev = Evaluator(self.xb, self.xq_t, self.gt_t, self.xq_h, self.gt_h, self.k, self.target, self.metric,
                            self.ns, fams, self.deadline, self.verbose, self.seed, sample_frac or None)
        stats.pop("overrides")
        stats["sample_frac"] = sample_frac or 0.0
        stats["nq_tune"], stats["nq_heldout"] = int(len(self.xq_t)), int(self.nh)

    # ---- earlier results and the starting set ----
    def _starting_set(self):
        """self.reused (builds of a resumed run on the same data), self.first
        (builds tried first: warm start, then the family-aware starting set,
        families interleaved) and self.hints (knob values that met the target
        in the warm start, keyed by family)."""
        fams, n = self.fams, self.n
        reused = {}
        first = []
        hints = {}
        resume, warm_start = self.resume, self.warm_start
        if resume is not None and os.path.exists(resume):
            old = TuneResult.load(resume)
            if old.fingerprint == self.fingerprint:
                for rec in old.builds:
                    if rec.get("family") in fams and rec.get("stage") == "full":
                        reused[(rec["family"], tuple(sorted(rec["build"].items())))] = rec
            elif self.verbose:
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
                    first.append((t.family, rescale_build(flat_choice(t.choice), ws.n, n, fams[t.family])))
            for r in recs[:3]:
                if r["family"] in fams:
                    first.append((r["family"], rescale_build(r["build"], ws.n, n, fams[r["family"]])))
            for t in ws.trials:  # knob values that met the target there start the bisections here
                if t.timed and t.family in fams:
                    hints.setdefault(t.family, {}).update(knob_hint(t.params))
        self.order = order = list(fams)
        for i in range(max(len(fams[f].start()) for f in order)):  # families interleaved
            for f in order:
                s = fams[f].start()
                if i < len(s):
                    first.append((f, s[i]))
        seen_first = set()
        first = [x for x in first if not ((x[0], tuple(sorted(x[1].items()))) in seen_first
                                          or seen_first.add((x[0], tuple(sorted(x[1].items())))))]
        self.reused, self.first, self.hints = reused, first, hints

    # ---- budget and bookkeeping ----
    def _out_of_budget(self):
        return (time.monotonic() >= self.deadline - self.reserve
                or (self.n_trials is not None and self.n_builds >= self.n_trials)
                or len(self.done) >= self.n_space or self.stale >= 20)

    def _record_build(self, fam_name, b, ev, stage, pruned=False, why=""):
        rec = {"family": fam_name, "build": dict(b), "stage": stage, "pruned": pruned, "why": why,
               "score": None if ev is None else ev["score"],
               "recall_max": None if ev is None else ev["recall_max"],
               "qps": None if ev is None or ev["best"] is None else ev["best"]["qps"],
               "params": None if ev is None or ev["best"] is None else ev["best"]["params"],
               "build_s": None if ev is None else ev["build_s"],
               "elapsed_s": time.monotonic() - self.t_start}
        self.ev.builds.append(rec)
        if self.resume is not None:
            self.result().save(self.resume)
        return rec

    def _full_fits(self, ev_sample):
        """Whether the full build fits in what is left of the budget, from
        the sample build's time (HNSW grows a little faster than n)."""
        if ev_sample is None or not math.isfinite(self.deadline):
            return True
        est = ev_sample["build_s"] / max(self.sample_frac, 1e-3) * 1.3
        return time.monotonic() + est <= self.deadline - self.reserve

    # ---- scoring one build ----
    def _run_full(self, fam_name, b):
        key = (fam_name, tuple(sorted(b.items())))
        if key in self.reused:
            return self.reused[key]["score"], None
        ev = self.ev.evaluate(self.fams[fam_name], b, self.ev.full, self.hints.get(fam_name))
        self.full_evs.append(ev)
        self._record_build(fam_name, b, ev, "full")
        return ev["score"], ev

    def step(self, fam_name, b, trial=None):
        """_step() with a build that fails (e.g. too few training points for
        its codebooks) recorded as such instead of ending the search."""
        try:
            return self._step(fam_name, b, trial)
        except RuntimeError as e:  # annvil's InvalidArgumentError is one, and so are Faiss's errors
            self._record_build(fam_name, b, None, "full", pruned=True,
                               why=f"build failed: {str(e).splitlines()[0]}")
            if self.verbose:
                print(f"tune: {fam_name} {b}: {e}")
            return None

    def _step(self, fam_name, b, trial=None):
        """Score one build (successive halving when a sample level exists);
        returns the score, or None when pruned / out of budget."""
        key = (fam_name, tuple(sorted(b.items())))
        if key in self.done:  # the sampler asked again for a build already scored
            self.stale += 1
            ev = self.ev.results.get((fam_name, tuple(sorted(b.items())), "full"))
            return None if ev is None else ev["score"]
        self.done.add(key)
        self.stale = 0
        self.n_builds += 1
        if self.bar is not None:
            self.bar.update(1)
        if self.ev.sample is not None and key not in self.reused and fam_name != "flat":
            ev_s = self.ev.evaluate(self.fams[fam_name], b, self.ev.sample, self.hints.get(fam_name))
            if trial is not None:
                import optuna

                trial.report(ev_s["score"], 1)
                if trial.should_prune():
                    self._record_build(fam_name, b, ev_s, "sample", pruned=True, why="successive halving")
                    raise optuna.TrialPruned()
            if not self._full_fits(ev_s):
                self._record_build(fam_name, b, ev_s, "sample", pruned=True,
                                   why="full build would not fit the budget")
                return None
            self._record_build(fam_name, b, ev_s, "sample")
        score, ev = self._run_full(fam_name, b)
        if trial is not None and ev is not None:
            trial.set_user_attr("constraint", [float(self.target - ev["recall_max"])])
        return score

    # ---- family search ----
    def _search_enumerated(self):
        """strategy 'grid' / 'random': the starting set, then every build of
        every family (shuffled for 'random'); True when all were scored."""
        builds = list(self.first)
        allb = []
        for f in self.order:
            sp = self.fams[f].space()
            names = list(sp)
            for combo in itertools.product(*(sp[nm] for nm in names)):
                allb.append((f, dict(zip(names, combo))))
        if self.strategy == "random":
            rng = np.random.default_rng(self.seed)
            allb = [allb[i] for i in rng.permutation(len(allb))]
        keys = {(f, tuple(sorted(b.items()))) for f, b in builds}
        builds += [x for x in allb if (x[0], tuple(sorted(x[1].items()))) not in keys]
        for f, b in builds:
            if self._out_of_budget():
                return False
            self.step(f, b)
        return True

    def _search_optuna(self):
        """strategy 'bayes' (TPE) / 'evolutionary' (NSGA-II): an Optuna study
        over the families' build parameters, constrained to builds that reach
        the target, starting with the starting set, with successive halving."""
        try:
            import optuna
        except ImportError:
            raise ImportError(f"strategy '{self.strategy}' needs optuna (pip install optuna); "
                              "strategy='grid' or 'random' work without it") from None
        import warnings

        fams, seed = self.fams, self.seed
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", FutureWarning)  # constraints_func: deprecated in Optuna 5, still works

            def constraints(tr):
                return tr.user_attrs.get("constraint", [1.0])

            if self.strategy == "bayes":
                sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(4, len(self.first)),
                                                     multivariate=True, group=True, constraints_func=constraints)
            else:
                sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=8, constraints_func=constraints)
            pruner = _HalvingPruner(optuna, warmup=len(fams))
            study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
            for f, b in self.first:
                study.enqueue_trial({"family": f, **b}, skip_if_exists=True)

            def objective(trial):
                f = trial.suggest_categorical("family", list(fams))
                b = {nm: trial.suggest_categorical(nm, vals) for nm, vals in fams[f].space().items()}
                score = self.step(f, b, trial)
                if score is None:
                    raise optuna.TrialPruned()
                return score

            def after(study_, _trial):
                if self._out_of_budget():
                    study_.stop()

            if not self._out_of_budget():
                study.optimize(objective, n_trials=None, callbacks=[after], catch=())

    # ---- the run ----
    def run(self) -> TuneResult:
        """Spend the budget: starting set, family search, held-out
        confirmation; returns the TuneResult (also saved to `resume`)."""
        self._starting_set()
        self.bar = None
        if self.progress:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=self.n_trials, desc=f"tune ({self.strategy})", unit="build", leave=False)
            except ImportError:
                self.bar = None
        # the confirmation at the end needs some time: keep ~10% of the budget for it
        self.reserve = 0.0 if self.budget_s is None else min(0.1 * float(self.budget_s), 30.0)
        self.full_evs = []
        self.n_builds, self.stale = 0, 0
        self.n_space = sum(math.prod(len(v) for v in self.fams[f].space().values()) for f in self.fams)
        self.done = set()
        exhausted = False
        if self.strategy in ("grid", "random"):
            exhausted = self._search_enumerated()
        else:
            self._search_optuna()
        if self.bar is not None:
            self.bar.close()
        best = self.refine()
        res = self.result(best=best, exhausted=exhausted)
        if self.resume is not None:
            res.save(self.resume)
        return res

    def refine(self):
        """Held-out confirmation of the best full builds (the winning trial),
        or when none reaches the target, the highest-recall trial with its
        held-out recall."""
        best = self.ev.confirm(self.full_evs) if self.full_evs else None
        if best is None:
            best = self.ev.heldout_of_best_miss(self.full_evs)
        return best

    def result(self, best=None, exhausted=False) -> TuneResult:
        return TuneResult(self.ev.trials, k=self.k, target_recall=self.target, metric=self.metric,
                          normalize=self.normalize, strategy=self.strategy, seed=self.seed, d=self.d, n=self.n,
                          nq=len(self.xq_t), fingerprint=self.fingerprint,
                          elapsed_s=time.monotonic() - self.t_start, families=list(self.fams),
                          exhausted=exhausted, best=best, builds=self.ev.builds, stats=self.stats,
                          nq_heldout=self.nh)


def _metric_default():
    from .. import METRIC_L2

    return METRIC_L2


def tune(xb: Any, xq: Any = None, *, k: int = 10, target_recall: float = 0.95, budget_s: float | None = 300,
         metric: Any = None, strategy: str = "bayes", seed: int = 0, warm_start: Any = None,
         resume: str | os.PathLike | None = None, families: Sequence[str] = ("flat", "ivf", "hnsw", "qg"),
         n_trials: int | None = None, nq: int = 1000, gt: Any = None, search_space: dict | None = None,
         holdout: float = 0.5, sample_frac: float | str | None = "auto", verbose: bool = False,
         progress: bool = False, _ns: Any = None) -> TuneResult:
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
    the target (see the annvil.tuner docstring for the whole procedure).
    families: any of annvil.tuner.FAMILIES present in this build.
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
    return Tuner(xb, xq, k=k, target_recall=target_recall, budget_s=budget_s, metric=metric, strategy=strategy,
                 seed=seed, warm_start=warm_start, resume=resume, families=families, n_trials=n_trials, nq=nq, gt=gt,
                 search_space=search_space, holdout=holdout, sample_frac=sample_frac, verbose=verbose,
                 progress=progress, _ns=_ns).run()


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
