"""annvil.tune(): searches index families, build settings and search settings
for the fastest index that meets a recall target (Faiss's AutoTune API it
builds on is in tune.py)."""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import numpy as np

from ._core import InvalidArgumentError
from .tune import ParameterSpace, _down, _kind, pareto_front, recall_at_k

__all__ = ["tune", "TuneResult", "TuneTrial"]


# ---------------------------------------------------------------------------------
# annvil.tune
# ---------------------------------------------------------------------------------
@dataclass
class TuneTrial:
    """One measured configuration.  `factory` + `build_params` make the index
    (build_params, e.g. 'efConstruction=80', are set before adding); `params`
    is the search setting, a string for ParameterSpace().set_index_parameters."""

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
    choice: dict  # the sampler's raw choice (used to warm-start / resume)

    def to_dict(self):
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d):
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def __str__(self):
        p = f" [{self.params}]" if self.params else ""
        b = f" ({self.build_params})" if self.build_params else ""
        return (f"{self.factory}{b}{p}: recall {self.recall:.4f}, {self.qps:,.0f} QPS, "
                f"{self.bytes_per_vector:.1f} B/vector, build {self.build_s:.2f} s")


_FAMILIES = ("flat", "ivf", "hnsw")


class _Space:
    """The configurations the tuner may try, given the index classes present."""

    OVERRIDES = ("hnsw_M", "hnsw_efConstruction", "ivf_nlist", "ivf_encodings", "k_factors", "efSearch_max")

    def __init__(self, n, d, k, families, ns, overrides=None):
        self.n, self.d, self.k = n, d, k
        have = lambda *names: all(getattr(ns, c, None) is not None for c in names)  # noqa: E731
        fams = []
        for f in families:
            if f not in _FAMILIES:
                raise InvalidArgumentError(f"unknown index family '{f}'; choose from {_FAMILIES}")
            if f == "flat" or (f == "ivf" and have("IndexIVFFlat")) or (f == "hnsw" and have("IndexHNSWFlat")):
                fams.append(f)
        if not fams:
            raise InvalidArgumentError(
                f"none of the families {tuple(families)} is available in this build (flat always is)")
        self.families = fams
        # HNSW
        self.hnsw_M = [8, 16, 32, 48]
        self.hnsw_efc = [40, 100, 200]
        self.ef_lo, self.ef_hi = max(k, 8), max(k, 8) * 64
        # IVF: nlist around sqrt(n), at least ~39 training points per list
        root = math.sqrt(n)
        lo = max(4, 2 ** int(math.floor(math.log2(max(root / 2, 1)))))
        hi = max(lo, min(2 ** int(math.ceil(math.log2(4 * root))), n // 39))
        self.nlists = [1 << i for i in range(int(math.log2(lo)), int(math.log2(hi)) + 1)] or [lo]
        enc = ["Flat"]
        if have("IndexIVFScalarQuantizer"):
            enc.append("SQ8")
        if have("IndexRefineFlat"):
            if have("IndexIVFPQFastScan") and d % 2 == 0 and (d // 2) % 2 == 0:
                enc.append(f"PQ{d // 2}x4fs,RFlat")
            if have("IndexIVFPQ") and d % 4 == 0 and n >= 39 * 256:  # 8-bit codebooks need data
                enc.append(f"PQ{d // 4},RFlat")
        self.encodings = enc
        self.k_factors = [1, 2, 4, 8, 16]
        for key, v in (overrides or {}).items():
            if key not in self.OVERRIDES:
                raise InvalidArgumentError(f"unknown search_space key '{key}'; use {self.OVERRIDES}")
            if key == "efSearch_max":
                self.ef_hi = max(self.ef_lo, int(v))
                continue
            vals = list(v) if isinstance(v, (list, tuple)) else [v]
            if not vals:
                raise InvalidArgumentError(f"search_space['{key}'] is empty")
            if key == "ivf_encodings":
                bad = [e for e in vals if e not in self.encodings]
                if bad:
                    raise InvalidArgumentError(
                        f"search_space['ivf_encodings']: {bad} not available; this build offers {self.encodings}")
                self.encodings = [str(e) for e in vals]
            else:
                attr = {"hnsw_M": "hnsw_M", "hnsw_efConstruction": "hnsw_efc", "ivf_nlist": "nlists",
                        "k_factors": "k_factors"}[key]
                setattr(self, attr, [int(x) for x in vals])

    # ---- a choice (dict of raw sampled values) -> configuration ----
    def config(self, c):
        """(family, factory, build_params, params) for a raw choice."""
        f = c["family"]
        if f == "flat":
            return f, "Flat", "", ""
        if f == "hnsw":
            M, efc, ef = int(c["hnsw_M"]), int(c["hnsw_efC"]), int(c["hnsw_efSearch"])
            return f, f"HNSW{M}", f"efConstruction={efc}", f"efSearch={ef}"
        nlist, enc = int(c["ivf_nlist"]), c["ivf_enc"]
        nprobe = max(1, min(nlist, int(round(nlist ** float(c["ivf_nprobe_u"])))))
        params = f"nprobe={nprobe}"
        if "RFlat" in enc:
            params += f",k_factor_rf={int(c['ivf_kf'])}"
        return f, f"IVF{nlist},{enc}", "", params

    def suggest(self, trial):
        """Define-by-run Optuna space (conditional on the family)."""
        c = {"family": trial.suggest_categorical("family", self.families)}
        if c["family"] == "hnsw":
            c["hnsw_M"] = trial.suggest_categorical("hnsw_M", self.hnsw_M)
            c["hnsw_efC"] = trial.suggest_categorical("hnsw_efC", self.hnsw_efc)
            c["hnsw_efSearch"] = trial.suggest_int("hnsw_efSearch", self.ef_lo, self.ef_hi, log=True)
        elif c["family"] == "ivf":
            c["ivf_nlist"] = trial.suggest_categorical("ivf_nlist", self.nlists)
            c["ivf_enc"] = trial.suggest_categorical("ivf_enc", self.encodings)
            c["ivf_nprobe_u"] = trial.suggest_float("ivf_nprobe_u", 0.0, 1.0)
            if "RFlat" in c["ivf_enc"]:
                c["ivf_kf"] = trial.suggest_categorical("ivf_kf", self.k_factors)
        return c

    def random(self, rng):
        c = {"family": self.families[rng.integers(len(self.families))]}
        if c["family"] == "hnsw":
            c["hnsw_M"] = self.hnsw_M[rng.integers(len(self.hnsw_M))]
            c["hnsw_efC"] = self.hnsw_efc[rng.integers(len(self.hnsw_efc))]
            c["hnsw_efSearch"] = int(round(math.exp(rng.uniform(math.log(self.ef_lo), math.log(self.ef_hi)))))
        elif c["family"] == "ivf":
            c["ivf_nlist"] = self.nlists[rng.integers(len(self.nlists))]
            c["ivf_enc"] = self.encodings[rng.integers(len(self.encodings))]
            c["ivf_nprobe_u"] = float(rng.uniform())
            if "RFlat" in c["ivf_enc"]:
                c["ivf_kf"] = self.k_factors[rng.integers(len(self.k_factors))]
        return c

    def sweep(self, choice):
        """The search-parameter ladders of choice's build configuration, each
        from cheapest to most expensive (one ladder per k_factor_rf)."""
        f = choice["family"]
        if f == "flat":
            return [[{"family": "flat"}]]
        if f == "hnsw":
            efs, ef = [], self.ef_lo
            while ef <= self.ef_hi:
                efs.append(ef)
                ef *= 2
            return [[{**choice, "hnsw_efSearch": e} for e in efs]]
        nlist = int(choice["ivf_nlist"])
        nps = sorted({1 << i for i in range(int(math.log2(nlist)) + 1)} | {nlist})
        us = [math.log(p) / math.log(nlist) if nlist > 1 else 0.0 for p in nps]
        if "RFlat" in choice["ivf_enc"]:
            return [[{**choice, "ivf_nprobe_u": u, "ivf_kf": kf} for u in us] for kf in self.k_factors]
        return [[{**choice, "ivf_nprobe_u": u} for u in us]]

    def builds(self):
        """One choice per build configuration, cheap builds first, families
        interleaved so that a short budget sees each of them."""
        by_family = {}
        if "flat" in self.families:
            by_family["flat"] = [{"family": "flat"}]
        if "ivf" in self.families:
            by_family["ivf"] = [{"family": "ivf", "ivf_nlist": nl, "ivf_enc": enc, "ivf_nprobe_u": 0.0,
                                 **({"ivf_kf": 1} if "RFlat" in enc else {})}
                                for enc in self.encodings for nl in self.nlists]
        if "hnsw" in self.families:
            by_family["hnsw"] = [{"family": "hnsw", "hnsw_M": M, "hnsw_efC": efc, "hnsw_efSearch": self.ef_lo}
                                 for efc in self.hnsw_efc for M in self.hnsw_M]
        out, lists = [], list(by_family.values())
        for i in range(max(len(v) for v in lists)):
            out += [v[i] for v in lists if i < len(v)]
        return out

    def distributions(self):
        """Optuna distributions of every parameter suggest() may ask for."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        return {
            "family": CategoricalDistribution(self.families),
            "hnsw_M": CategoricalDistribution(self.hnsw_M),
            "hnsw_efC": CategoricalDistribution(self.hnsw_efc),
            "hnsw_efSearch": IntDistribution(self.ef_lo, self.ef_hi, log=True),
            "ivf_nlist": CategoricalDistribution(self.nlists),
            "ivf_enc": CategoricalDistribution(self.encodings),
            "ivf_nprobe_u": FloatDistribution(0.0, 1.0),
            "ivf_kf": CategoricalDistribution(self.k_factors),
        }

    def fits(self, choice):
        """Whether a (warm-start or resumed) choice lies in this space."""
        try:
            dist = self.distributions()
        except ImportError:
            return choice.get("family") in self.families
        for k, v in choice.items():
            try:
                if k not in dist or not dist[k]._contains(dist[k].to_internal_repr(v)):
                    return False
            except (ValueError, TypeError):
                return False
        return True


def _data_fingerprint(xb, xq, k, metric):
    h = np.float64(0)
    for a in (xb, xq):
        idx = np.linspace(0, a.size - 1, num=min(a.size, 4096)).astype(np.int64)
        h += float(np.sum(a.reshape(-1)[idx].astype(np.float64) * (1 + np.arange(idx.size) % 7)))
    return f"{xb.shape[0]}x{xb.shape[1]}/{xq.shape[0]}/k{k}/m{int(metric)}/{h:.6g}"


def _index_bytes(index):
    """Serialized size: annvil.serialize_index, or faiss's for Faiss indexes."""
    if type(index).__module__.startswith("faiss"):
        import faiss

        return int(len(faiss.serialize_index(index)))
    from . import serialize_index

    return int(len(serialize_index(index)))


def _time_search(index, xq, k, min_time=0.1, min_runs=3, max_runs=20):
    """(D, I, seconds per run): the best of several runs taking at least
    min_time in all, and of at least min_runs when one run is short (the
    minimum filters out noise from other work; a long run is measured once)."""
    best = math.inf
    total = 0.0
    runs = 0
    D = I = None
    while runs < max_runs and (total < min_time or (runs < min_runs and best < min_time / 2)):
        t0 = time.perf_counter()
        D, I = index.search(xq, k)
        t = time.perf_counter() - t0
        best = min(best, t)
        total += t
        runs += 1
    return D, I, max(best, 1e-9)


class _Evaluator:
    """Builds (and caches) indexes by build configuration and measures trials."""

    def __init__(self, xb, xq, gt, k, metric, ns, max_cached=3, verbose=False, train_max=None):
        self.xb, self.xq, self.gt, self.k, self.metric, self.ns = xb, xq, gt, k, metric, ns
        self.built = {}  # (factory, build_params) -> index, LRU order
        self.build_info = {}  # (factory, build_params) -> (build_s, bytes)
        self.max_cached = max_cached
        self.verbose = verbose
        self.train_max = train_max

    def estimate(self, factory, build_params="", unseen=0.0):
        """Expected build seconds: builds seen of the same kind (same string up
        to the numbers), scaled by the product of the numbers (HNSW: M x
        efConstruction; IVF: nlist x PQ M), which over- rather than
        under-estimates; `unseen` for a kind never built."""
        def size(f, bp):
            return math.prod(float(x) for x in re.findall(r"\d+(?:\.\d+)?", f + " " + bp)) or 1.0

        kind = re.sub(r"\d+", "#", factory)
        mine = size(factory, build_params)
        seen = [b * mine / size(f, p) for (f, p), (b, _) in self.build_info.items()
                if re.sub(r"\d+", "#", f) == kind]
        return max(seen) if seen else unseen

    def index_for(self, factory, build_params):
        key = (factory, build_params)
        if key in self.built:
            self.built[key] = self.built.pop(key)  # most recently used last
            return self.built[key]
        index, build_s = build_index(self.ns, self.xb, factory, build_params, self.metric,
                                     train_max=self.train_max)
        nbytes = _index_bytes(index)
        self.build_info[key] = (build_s, nbytes)
        self.built[key] = index
        while len(self.built) > self.max_cached:
            self.built.pop(next(iter(self.built)))
        return index

    def measure(self, family, factory, build_params, params):
        index = self.index_for(factory, build_params)
        ParameterSpace().set_index_parameters(index, params)
        D, I, t = _time_search(index, self.xq, self.k)
        recall = recall_at_k(I, self.gt)
        build_s, nbytes = self.build_info[(factory, build_params)]
        return recall, len(self.xq) / t, build_s, nbytes


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


class TuneResult:
    """What annvil.tune found.

    best: the fastest trial meeting the target (or, when none does, the one
    with the highest recall; then target_reached is False and `message` says
    so); front: Pareto-optimal trials over recall (up), QPS (up), memory (down)
    and build time (down); trials: everything measured."""

    def __init__(self, trials, *, k, target_recall, metric, normalize, strategy, seed, d, n,
                 nq, fingerprint, elapsed_s, families, exhausted=False):
        self.trials = list(trials)
        self.k, self.target_recall, self.metric = k, target_recall, int(metric)
        self.normalize, self.strategy, self.seed = normalize, strategy, seed
        self.d, self.n, self.nq, self.fingerprint = d, n, nq, fingerprint
        self.elapsed_s, self.families, self.exhausted = elapsed_s, list(families), exhausted
        self._summarize()

    def _summarize(self):
        ok = [t for t in self.trials if t.recall >= self.target_recall]
        if ok:
            self.best = max(ok, key=lambda t: (t.qps, -t.bytes))
        elif self.trials:
            self.best = max(self.trials, key=lambda t: (t.recall, t.qps))
        else:
            self.best = None
        self.target_reached = bool(ok)
        pts = [(t.recall, t.qps, t.bytes, t.build_s) for t in self.trials]
        self.front = [self.trials[i] for i in pareto_front(pts, [True, True, False, False])] if pts else []
        self.front.sort(key=lambda t: (t.recall, t.qps))
        if self.best is None:
            self.message = "no trial finished within the budget"
        elif self.target_reached:
            self.message = (f"target recall@{self.k} >= {self.target_recall} reached: {self.best}")
        else:
            self.message = (f"TARGET NOT REACHED: no configuration tried reached recall@{self.k} >= "
                            f"{self.target_recall} (families tried: {', '.join(self.families)}); "
                            f"best found: {self.best}")

    def recall_qps_front(self):
        """Trials on the recall/QPS Pareto front, by increasing recall."""
        pts = [(t.recall, t.qps) for t in self.trials]
        fr = [self.trials[i] for i in pareto_front(pts, [True, True])] if pts else []
        return sorted(fr, key=lambda t: (t.recall, t.qps))

    def build(self, xb, *, trial=None):
        """Build the best (or the given) trial's index on xb with its search
        parameters applied."""
        import sys

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

    # ---- persistence ----
    def to_dict(self):
        return {
            "format": "annvil-tune/1",
            "k": self.k, "target_recall": self.target_recall, "metric": self.metric,
            "normalize": self.normalize, "strategy": self.strategy, "seed": self.seed,
            "d": self.d, "n": self.n, "nq": self.nq, "fingerprint": self.fingerprint,
            "elapsed_s": self.elapsed_s, "families": self.families, "exhausted": self.exhausted,
            "target_reached": self.target_reached, "message": self.message,
            "best": self.best.to_dict() if self.best else None,
            "front": [t.number for t in self.front],
            "trials": [t.to_dict() for t in self.trials],
        }

    def save(self, path):
        import json
        import os

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
        if not isinstance(d, dict) or d.get("format") != "annvil-tune/1":
            raise InvalidArgumentError(f"'{path}' is not an annvil tuning result")
        trials = [TuneTrial.from_dict(t) for t in d["trials"]]
        return cls(trials, k=d["k"], target_recall=d["target_recall"], metric=d["metric"],
                   normalize=d["normalize"], strategy=d["strategy"], seed=d["seed"], d=d["d"], n=d["n"],
                   nq=d["nq"], fingerprint=d["fingerprint"], elapsed_s=d["elapsed_s"],
                   families=d["families"], exhausted=d.get("exhausted", False))

    def plot(self, path, title=None):
        """Recall vs QPS of every trial (log QPS), coloured by family, with the
        recall/QPS Pareto front and the target line; writes a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        colors = {"flat": "tab:gray", "ivf": "tab:blue", "hnsw": "tab:orange"}
        for fam in sorted({t.family for t in self.trials}):
            ts = [t for t in self.trials if t.family == fam]
            ax.scatter([t.recall for t in ts], [t.qps for t in ts], s=14, alpha=0.6,
                       color=colors.get(fam), label=fam)
        fr = self.recall_qps_front()
        if fr:
            ax.step([t.recall for t in fr], [t.qps for t in fr], where="post", color="black", lw=1,
                    label="Pareto front")
        ax.axvline(self.target_recall, color="red", ls="--", lw=1, label=f"target {self.target_recall}")
        if self.best is not None:
            ax.scatter([self.best.recall], [self.best.qps], marker="*", s=160, color="red", zorder=5,
                       label="best")
        ax.set_yscale("log")
        ax.set_xlabel(f"recall@{self.k}")
        ax.set_ylabel("queries per second (batch)")
        ax.set_title(title or f"annvil.tune ({self.strategy}, {len(self.trials)} trials)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path

    def summary(self):
        lines = [self.message, f"{len(self.trials)} trials in {self.elapsed_s:.1f} s; Pareto front:"]
        lines += [f"  {t}" for t in self.front[:20]]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<TuneResult trials={len(self.trials)} target_reached={self.target_reached} "
                f"best={self.best.factory + ' ' + self.best.params if self.best else None}>")


def _normalize_rows(x):
    from . import _core

    _core._normalize_rows(x)


def _metric_arg(metric):
    """(metric constant, normalise) for METRIC_* or 'l2' / 'ip' / 'cosine': annvil's own parser."""
    from . import _metric

    return _metric(metric)


_STRATEGIES = ("grid", "random", "bayes", "evolutionary")


def tune(xb, xq=None, *, k=10, target_recall=0.95, budget_s=300, metric=None, strategy="bayes",
         seed=0, warm_start=None, resume=None, families=("flat", "ivf", "hnsw"), n_trials=None,
         nq=1000, gt=None, search_space=None, verbose=False, progress=False, _ns=None):
    """Find the fastest index configuration that reaches `target_recall` (recall@k).

    xb: (n, d) base vectors; xq: queries (default: a held-out sample of `nq`
    rows of xb, removed from the base); gt: optional (nq, >=k) true neighbour
    ids of xq in xb (computed once with annvil.knn otherwise).
    metric: METRIC_L2 (default), METRIC_INNER_PRODUCT, or 'l2' / 'ip' / 'cosine'.
    strategy: 'grid' (every build configuration, search parameters swept
    cheapest first), 'random', 'bayes' (Optuna TPE, multi-objective: recall
    and QPS) or 'evolutionary' (Optuna NSGA-II, same objectives).  Whatever
    the strategy, the first time a build configuration is seen its search
    parameter is also swept (no rebuild) until the target is passed.
    search_space: optional overrides of the candidate lists, keys hnsw_M,
    hnsw_efConstruction, ivf_nlist, ivf_encodings (e.g. ["Flat", "SQ8"]),
    k_factors, efSearch_max.
    Searches the families present in this build (flat always; ivf: nlist,
    encoding Flat/SQ8/PQ+RFlat, nprobe, k_factor_rf; hnsw: M, efConstruction,
    efSearch).  Indexes are cached by build configuration, so search settings
    are swept without rebuilding.  budget_s bounds the wall time (checked
    between trials; one build can overrun it); n_trials caps the trial count.
    warm_start: a TuneResult or JSON path whose best and front trials are tried
    first.  resume: a JSON path; finished trials found there (same data, k and
    metric) are reused without re-measuring, and the result is saved there
    after every trial.  seed fixes the query sample and the samplers' random
    streams (grid and random trial sequences are then identical; Optuna's
    choices also depend on measured QPS, which varies run to run).

    Returns a TuneResult (.best, .front, .target_reached, .message, .build(xb),
    .save(path), .plot(path))."""
    import os
    import sys

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
    metric, normalize = _metric_arg(METRIC_L2 if metric is None else metric)
    ns = _ns or sys.modules[__package__]
    t_start = time.monotonic()
    deadline = math.inf if budget_s is None else t_start + float(budget_s)

    xb = as_matrix(xb, None, "xb", allow_1d=False)
    if xq is None:
        n_all = xb.shape[0]
        nq = int(min(nq, max(1, n_all // 10)))
        if n_all < 2:
            raise InvalidArgumentError("xb needs at least 2 vectors to hold out queries")
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
            raise InvalidArgumentError(
                f"gt must have shape ({xq.shape[0]}, >= {k}), got {gt.shape}")
        gt = as_ids(gt.reshape(-1), what="gt").reshape(gt.shape)
    gt = gt[:, :k]
    fingerprint = _data_fingerprint(xb, xq, k, metric)

    space = _Space(n, d, k, families, ns, search_space)
    ev = _Evaluator(xb, xq, gt, k, metric, ns, verbose=verbose)
    trials: list[TuneTrial] = []
    measured = {}  # (factory, build_params, params) -> TuneTrial

    def result():
        return TuneResult(trials, k=k, target_recall=float(target_recall), metric=metric,
                          normalize=normalize, strategy=strategy, seed=seed, d=d, n=n, nq=len(xq),
                          fingerprint=fingerprint, elapsed_s=time.monotonic() - t_start,
                          families=space.families)

    # resume: reuse finished trials measured on the same data
    reusable = {}
    if resume is not None and os.path.exists(resume):
        old = TuneResult.load(resume)
        if old.fingerprint == fingerprint:
            for t in old.trials:
                reusable[(t.factory, t.build_params, t.params)] = t
        elif verbose:
            print(f"tune: {resume} was measured on other data/k/metric; not reusing its trials")
    prior = []  # choices to try first
    if reusable:
        prior += [t.choice for t in reusable.values() if space.fits(t.choice)]
    if warm_start is not None:
        ws = TuneResult.load(warm_start) if isinstance(warm_start, (str, os.PathLike)) else warm_start
        if not isinstance(ws, TuneResult):
            raise InvalidArgumentError("warm_start must be a TuneResult or the path of a saved one")
        seeds = ([ws.best] if ws.best else []) + ws.front
        prior += [t.choice for t in seeds if space.fits(t.choice)]

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_trials, desc=f"tune ({strategy})", unit="trial", leave=False)
        except ImportError:
            bar = None

    state = {"stale": 0}
    stop_at = float(target_recall)

    def evaluate(choice):
        """Measure (or reuse) one choice; returns the TuneTrial."""
        family, factory, build_params, params = space.config(choice)
        key = (factory, build_params, params)
        if key in measured:
            state["stale"] += 1
            return measured[key]
        state["stale"] = 0
        if key in reusable:
            old = reusable[key]
            t = TuneTrial(**{**old.to_dict(), "number": len(trials), "choice": dict(choice)})
        else:
            recall, qps, build_s, nbytes = ev.measure(family, factory, build_params, params)
            t = TuneTrial(len(trials), family, factory, build_params, params, float(recall), float(qps),
                          float(build_s), int(nbytes), nbytes / float(n), dict(choice))
        trials.append(t)
        measured[key] = t
        if verbose:
            print(f"  trial {t.number}: {t}")
        if bar is not None:
            bar.update(1)
        if resume is not None:
            result().save(resume)
        return t

    def out_of_budget():
        return (time.monotonic() >= deadline or (n_trials is not None and len(trials) >= n_trials)
                or state["stale"] >= 50)

    swept = set()
    # a kind of index never built yet may be slow (PQ training, large HNSW):
    # start one only while a quarter of the budget is left
    unseen_cost = 0.0 if budget_s is None else 0.25 * float(budget_s)

    def run(choice):
        """Evaluate choice; the first time its build configuration is seen,
        also sweep that build's search parameter (cheap: no rebuild) up to the
        target.  Returns (trial, extra trials), trial None when the build
        would not fit in the remaining budget."""
        family, factory, build_params, params = space.config(choice)
        if ((factory, build_params, params) not in reusable and (factory, build_params) not in ev.build_info
                and time.monotonic() + ev.estimate(factory, build_params, unseen_cost) > deadline):
            state["stale"] += 1
            return None, []
        t = evaluate(choice)
        extra = []
        if (factory, build_params) in swept:
            return t, extra
        swept.add((factory, build_params))
        for ladder in space.sweep(choice):
            above = flat = 0
            prev = -1.0
            for c in ladder:
                if out_of_budget():
                    return t, extra
                before = len(trials)
                tt = evaluate(c)
                if len(trials) > before:
                    extra.append(tt)
                above += tt.recall >= stop_at
                flat = flat + 1 if tt.recall <= prev + 1e-4 else 0
                prev = max(prev, tt.recall)
                # the rest of this ladder is only slower (or no better)
                if above >= 1 or tt.recall >= 0.9999 or flat >= 2:
                    break
        return t, extra

    exhausted = False
    for c in prior:
        if out_of_budget():
            break
        run(c)
    if strategy == "grid":
        for c in space.builds():
            if out_of_budget():
                break
            run(c)
        else:
            exhausted = True
    elif strategy == "random":
        rng = np.random.default_rng(seed)
        while not out_of_budget():
            run(space.random(rng))
    else:
        try:
            import optuna
        except ImportError:
            raise ImportError(f"strategy '{strategy}' needs optuna (pip install optuna); "
                              "strategy='grid' or 'random' work without it") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if strategy == "bayes":
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True,
                                                     group=True)
        else:
            sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
        study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
        dists = space.distributions()

        def tell(ts):
            """Let the sampler know of trials it did not ask for."""
            for t in ts:
                params = {k: v for k, v in t.choice.items() if k in dists}
                study.add_trial(optuna.trial.create_trial(
                    params=params, distributions={k: dists[k] for k in params},
                    values=[t.recall, math.log10(max(t.qps, 1e-9))]))

        tell(trials)
        # start from the cheapest build of each family so that all are seen
        firsts = {}
        for c in space.builds():
            firsts.setdefault(c["family"], c)
        for c in firsts.values():
            if not any(t.choice.get("family") == c["family"] for t in trials):
                study.enqueue_trial(c)
        pending = []

        def objective(trial):
            t, extra = run(space.suggest(trial))
            pending.extend(extra)
            if t is None:
                raise optuna.TrialPruned()  # would not fit in the budget
            return t.recall, math.log10(max(t.qps, 1e-9))

        def after(study_, _trial):
            tell(pending)
            pending.clear()
            if out_of_budget():
                study_.stop()

        if not out_of_budget():
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.optimize(objective, n_trials=None, callbacks=[after], catch=())
    if bar is not None:
        bar.close()
    res = result()
    res.exhausted = exhausted or state["stale"] >= 50
    if resume is not None:
        res.save(resume)
    return res

