"""What annvil.tune returns: TuneTrial (one measured configuration) and
TuneResult (every trial and build, the confirmed best, the Pareto front;
saving, loading and explaining).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .._core import InvalidArgumentError
from ..autotune import ParameterSpace
from ..eval import pareto_front

__all__ = ["TuneResult", "TuneTrial"]


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

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> TuneTrial:
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

    def recall_qps_front(self) -> list[TuneTrial]:
        """Full-size trials on the recall/QPS Pareto front, by increasing recall."""
        full = [t for t in self.trials if t.stage == "full"]
        pts = [(t.recall, t.qps) for t in full]
        fr = [full[i] for i in pareto_front(pts, [True, True])] if pts else []
        return sorted(fr, key=lambda t: (t.recall, t.qps))

    def build(self, xb: Any, *, trial: TuneTrial | None = None) -> Any:
        """Build the best (or the given) trial's index on xb with its search
        parameters applied."""
        t = trial or self.best
        if t is None:
            raise InvalidArgumentError("the tuning result has no trial to build")
        from .._checks import as_matrix
        from .build import annvil_ns, build_index, normalize_rows

        xb = as_matrix(xb, self.d, "xb", allow_1d=False)
        if self.normalize:
            xb = xb.copy()
            normalize_rows(xb)
        index, _ = build_index(annvil_ns(), xb, t.factory, t.build_params, self.metric)
        ParameterSpace().set_index_parameters(index, t.params)
        return index

    # ---- explaining ----
    def importances(self, objective: str = "qps") -> dict[str, float]:
        """{parameter: importance}, summing to 1.  objective 'qps': what the
        score of a build (log10 QPS at the target; unreachable builds below
        every reachable one) depends on, over the build parameters;
        'recall': what recall depends on, over build and search parameters
        of every full-size trial.  Optuna's fANOVA when scikit-learn is
        installed, else a variance decomposition of the main effects."""
        from .report import importances

        cache = self.__dict__.setdefault("_importances", {})
        key = (objective, len(self.builds), len(self.trials))
        if key not in cache:
            cache[key] = importances(self, objective)
        return dict(cache[key])

    def plot(self, path: str | os.PathLike, title: str | None = None) -> Any:
        """Recall vs QPS of every full-size trial (log QPS), by family, with the
        Pareto front, the target and the best; writes a PNG."""
        from .report import plot_front

        return plot_front(self, path, title=title)

    def report(self, path: str | os.PathLike) -> str | os.PathLike:
        """path ending in .html: one page with the front, the importances and
        a recall/QPS slice per parameter (figures embedded); else a directory
        of PNGs (front.png, importances.png, slices.png).  Returns the path."""
        from .report import write_report

        return write_report(self, path)

    # ---- persistence ----
    def to_dict(self) -> dict:
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

    def save(self, path: str | os.PathLike) -> str | os.PathLike:
        import json

        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TuneResult:
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

    def summary(self) -> str:
        lines = [self.message, f"{len(self.trials)} trials, {len(self.builds)} builds in {self.elapsed_s:.1f} s; "
                 "Pareto front:"]
        lines += [f"  {t}" for t in self.front[:20]]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<TuneResult trials={len(self.trials)} target_reached={self.target_reached} "
                f"best={self.best.factory + ' ' + self.best.params if self.best else None}>")
