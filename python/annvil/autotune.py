"""Faiss's AutoTune API: ParameterSpace / ParameterRange / OperatingPoints and
the criteria (AutoTuneCriterion, OneRecallAtRCriterion, IntersectionCriterion).
annvil's own tuner, annvil.tune(), lives in the tuner/ package and builds on
these; recall and the Pareto front they use are in eval.py.

ParameterSpace works on annvil and on Faiss indexes alike (it looks at
attributes, not classes), so the benchmark can sweep both with one code path.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._core import InvalidArgumentError
from .eval import one_recall_at_r, pareto_front, recall_at_k

__all__ = [
    "ParameterSpace", "ParameterRange", "OperatingPoint", "OperatingPoints", "AutoTuneCriterion",
    "OneRecallAtRCriterion", "IntersectionCriterion",
    "pareto_front",  # from eval.py; exported here so that annvil.pareto_front stays
]


# ---------------------------------------------------------------------------------
# index introspection shared by ParameterSpace and the tuner
# ---------------------------------------------------------------------------------
def _down(index):
    """Faiss returns sub-indexes as the base Index proxy: downcast those."""
    if type(index).__module__.startswith("faiss"):
        import faiss

        return faiss.downcast_index(index)
    return index


def _kind(index):
    """What kind of node `index` is, by Faiss class name and attributes."""
    name = type(index).__name__
    if name.startswith("IndexIDMap") or name.startswith("IndexBinaryIDMap"):
        return "idmap"
    if name == "IndexPreTransform":
        return "pretransform"
    if hasattr(index, "base_index") and hasattr(index, "k_factor"):
        return "refine"
    if hasattr(index, "nprobe") and hasattr(index, "nlist"):
        return "ivf"
    if hasattr(index, "hnsw") or hasattr(index, "efSearch"):
        return "hnsw"
    return "other"


# ---------------------------------------------------------------------------------
# ParameterSpace (Faiss semantics)
# ---------------------------------------------------------------------------------
@dataclass
class ParameterRange:
    """Possible values of one parameter, least to most expensive."""

    name: str
    values: list


class ParameterSpace:
    """Sets search-time parameters by name on an index and its sub-indexes, and
    enumerates combinations of them (Faiss's AutoTune ParameterSpace).

    Names: nprobe (IVF), efSearch / ef and efConstruction (HNSW), k_factor_rf
    (the k_factor of a refine wrapper), quantizer_<name> (on an IVF's coarse
    quantizer), verbose.  Wrappers are looked through: IndexIDMap/IDMap2 and
    IndexPreTransform (.index), IndexRefine (.base_index).
    """

    def __init__(self):
        self.parameter_ranges: list[ParameterRange] = []
        self.verbose = 1
        self.n_experiments = 500
        self.batchsize = 1 << 30
        self.thread_over_batches = False
        self.min_test_duration = 0.0

    # ---- ranges ----
    def add_range(self, name: str) -> ParameterRange:
        for pr in self.parameter_ranges:
            if pr.name == name:
                return pr
        pr = ParameterRange(name, [])
        self.parameter_ranges.append(pr)
        return pr

    def n_combinations(self) -> int:
        n = 1
        for pr in self.parameter_ranges:
            n *= len(pr.values)
        return n

    def _digits(self, cno):
        cno = int(cno)
        if not 0 <= cno < self.n_combinations():
            raise InvalidArgumentError(
                f"combination {cno} out of range [0, {self.n_combinations()})")
        out = []
        for pr in self.parameter_ranges:
            out.append(cno % len(pr.values))
            cno //= len(pr.values)
        return out

    def combination_name(self, cno: int) -> str:
        """e.g. 'k_factor_rf=8,nprobe=2' (first parameter varies fastest)."""
        return ",".join(f"{pr.name}={pr.values[j]:g}"
                        for pr, j in zip(self.parameter_ranges, self._digits(cno)))

    @property
    def combinations(self) -> list[str]:
        """All combination names, in combination-number order."""
        return [self.combination_name(i) for i in range(self.n_combinations())]

    def combination_ge(self, c1: int, c2: int) -> bool:
        """True when every parameter of c1 is at least as expensive as in c2."""
        return all(a >= b for a, b in zip(self._digits(c1), self._digits(c2)))

    def display(self) -> None:
        print(f"ParameterSpace, {len(self.parameter_ranges)} parameters, "
              f"{self.n_combinations()} combinations:")
        for pr in self.parameter_ranges:
            print(f"   {pr.name}: [" + ", ".join(f"{v:g}" for v in pr.values) + "]")

    def initialize(self, index: Any) -> None:
        """Reasonable ranges for this index, as Faiss: k_factor_rf 1..64 for a
        refine wrapper, nprobe = powers of two below nlist, efSearch 4..512 for
        HNSW, quantizer_* for the coarse quantizer's own parameters.  (Unlike
        Faiss, an IDMap wrapper is looked through too.)"""
        # Faiss proxies of sub-indexes do not own them: keep every level alive
        # (a temporary passed in is referenced by this frame only)
        keep = [index]
        index = _down(index)
        while _kind(index) == "idmap":
            keep.append(index)
            index = _down(index.index)
        if _kind(index) == "pretransform":
            keep.append(index)
            index = _down(index.index)
        if _kind(index) == "refine":
            self.add_range("k_factor_rf").values.extend(1 << i for i in range(7))
            keep.append(index)
            index = _down(index.base_index)
        if _kind(index) == "pretransform":
            keep.append(index)
            index = _down(index.index)
        kind = _kind(index)
        if kind == "ivf":
            pr = self.add_range("nprobe")
            for i in range(13):
                if (1 << i) >= index.nlist:
                    break
                pr.values.append(1 << i)
            sub = ParameterSpace()
            if getattr(index, "quantizer", None) is not None:
                sub.initialize(index.quantizer)
            for p in sub.parameter_ranges:
                self.add_range("quantizer_" + p.name).values = list(p.values)
        if kind == "hnsw":
            self.add_range("efSearch").values.extend(1 << i for i in range(2, 10))

    # ---- setting ----
    def set_index_parameter(self, index: Any, name: str, value: float) -> None:
        """Set one parameter; raises InvalidArgumentError when no (sub-)index of
        `index` has it."""
        if not self._set(index, str(name), float(value)):
            raise InvalidArgumentError(
                f"ParameterSpace: could not set parameter '{name}' on {type(_down(index)).__name__} "
                f"({_describe(index)}); known names: nprobe (IVF), efSearch/ef, efConstruction (HNSW), "
                "k_factor_rf (refine), quantizer_<name>, verbose")

    def _set(self, root, name, val):
        index = _down(root)  # `root` keeps a Faiss owner proxy alive
        if name == "verbose":
            index.verbose = bool(int(val))  # and on sub-indexes below
        kind = _kind(index)
        if kind in ("idmap", "pretransform"):
            return self._set(index.index, name, val)
        if kind == "refine":
            if name in ("k_factor_rf", "k_factor"):
                index.k_factor = float(val) if name == "k_factor" else int(val)
                return True
            return self._set(index.base_index, name, val)
        if name == "verbose":
            return True
        if kind == "ivf":
            if name == "nprobe":
                if val < 1:
                    raise InvalidArgumentError(f"nprobe must be at least 1, got {val:g}")
                index.nprobe = int(val)
                return True
            if name == "max_codes" and hasattr(index, "max_codes"):
                index.max_codes = int(val) if math.isfinite(val) else 0
                return True
            quantizer = getattr(index, "quantizer", None)
            if quantizer is not None:
                if name in ("efSearch", "ef", "efConstruction") and _kind(_down(quantizer)) == "hnsw":
                    return self._set(quantizer, name, val)
                if name.startswith("quantizer_"):
                    return self._set(quantizer, name[len("quantizer_"):], val)
        if kind == "hnsw":
            if name in ("efSearch", "ef", "efConstruction"):
                if val < 1:
                    raise InvalidArgumentError(f"{name} must be at least 1, got {val:g}")
                attr = "efConstruction" if name == "efConstruction" else "efSearch"
                hnsw = index.hnsw if hasattr(index, "hnsw") else index  # Faiss: index.hnsw.efSearch
                setattr(hnsw, attr, int(val))
                return True
        if name == "ht" and hasattr(index, "polysemous_ht"):
            index.polysemous_ht = int(val)
            return True
        return False

    def set_index_parameters(self, index: Any, params: int | str | dict[str, float]) -> None:
        """params: a combination number, or a string 'nprobe=64,k_factor_rf=16'
        (separated by commas or spaces), or a dict {name: value}."""
        if isinstance(params, dict):
            for k, v in params.items():
                self.set_index_parameter(index, k, v)
            return
        if isinstance(params, (int, np.integer)) and not isinstance(params, bool):
            for pr, j in zip(self.parameter_ranges, self._digits(params)):
                self.set_index_parameter(index, pr.name, pr.values[j])
            return
        if not isinstance(params, str):
            raise InvalidArgumentError(
                f"parameters must be a string like 'nprobe=16,efSearch=64', a dict or a combination "
                f"number, got {type(params).__name__}")
        for name, val in parse_params(params).items():
            self.set_index_parameter(index, name, val)

    # ---- exploring ----
    def explore(self, index: Any, xq: Any, crit: AutoTuneCriterion) -> OperatingPoints:
        """Time the search of xq at each combination (in a random order that
        starts with the cheapest and the most expensive, skipping combinations
        that cannot be on the Pareto front given those seen) and return the
        OperatingPoints (perf = crit's measure, t = seconds)."""
        xq = np.ascontiguousarray(xq, dtype=np.float32)
        if xq.ndim != 2 or xq.shape[0] != crit.nq:
            raise InvalidArgumentError(
                f"explore: the criterion is for {crit.nq} queries, got xq of shape {xq.shape}")
        ops = OperatingPoints()
        n_comb = self.n_combinations()
        n_exp = n_comb if self.n_experiments == 0 else min(int(self.n_experiments), n_comb)
        if n_comb == 1 or self.n_experiments == 0:
            order = list(range(n_comb))
        else:
            rest = np.random.default_rng(1234).permutation(n_comb - 2) + 1
            order = [0, n_comb - 1] + [int(c) for c in rest]
        for xp, cno in enumerate(order[:n_exp]):
            if self.n_experiments != 0 and ops.all_pts:
                lower_t, upper_perf = 0.0, 1.0
                for op in ops.all_pts:
                    if self.combination_ge(cno, op.cno):
                        lower_t = max(lower_t, op.t)
                    if self.combination_ge(op.cno, cno):
                        upper_perf = min(upper_perf, op.perf)
                if ops.t_for_perf(upper_perf) <= lower_t:
                    if self.verbose:
                        print(f"  {xp}/{n_exp}: cno={cno} {self.combination_name(cno)} skip")
                    continue
            self.set_index_parameters(index, cno)
            t0 = time.perf_counter()
            nrun = 0
            while True:
                parts = [index.search(xq[i:i + self.batchsize], crit.nnn)
                         for i in range(0, len(xq), self.batchsize)]
                nrun += 1
                t = time.perf_counter() - t0
                if t >= self.min_test_duration:
                    break
            D = np.vstack([p[0] for p in parts])
            I = np.vstack([p[1] for p in parts])
            perf = crit.evaluate(D, I)
            keep = ops.add(perf, t / nrun, self.combination_name(cno), cno)
            if self.verbose:
                print(f"  {xp}/{n_exp}: cno={cno} {self.combination_name(cno)} perf {perf:.3f} "
                      f"t {t / nrun:.3f} {'*' if keep else ''}")
        return ops


def parse_params(text: str) -> dict[str, float]:
    """'nprobe=64,k_factor_rf=16' -> {'nprobe': 64.0, 'k_factor_rf': 16.0}."""
    out = {}
    for tok in text.replace(" ", ",").split(","):
        if not tok:
            continue
        name, sep, val = tok.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(val)
        except ValueError:
            raise InvalidArgumentError(
                f"could not interpret parameter '{tok}': expected name=value, e.g. 'nprobe=16'") from None
    return out


def _describe(index):
    """Short structural description, e.g. 'IndexIDMap(IndexIVFFlat(nlist=100))'."""
    root, index = index, _down(index)  # noqa: F841 (root keeps a Faiss owner alive)
    kind = _kind(index)
    name = type(index).__name__
    if kind in ("idmap", "pretransform"):
        return f"{name}({_describe(index.index)})"
    if kind == "refine":
        return f"{name}({_describe(index.base_index)})"
    if kind == "ivf":
        return f"{name}(nlist={index.nlist})"
    return name


# ---------------------------------------------------------------------------------
# OperatingPoints and criteria
# ---------------------------------------------------------------------------------
@dataclass
class OperatingPoint:
    perf: float
    t: float
    key: str
    cno: int


class _PointList(list):
    """A list of OperatingPoint that also answers Faiss's std::vector calls (size(), at(i))."""

    def size(self):
        return len(self)

    def at(self, i):
        return self[i]


class OperatingPoints:
    """Measured (perf, time) points and their Pareto-optimal subset (more perf,
    less time), as Faiss's.  optimal_pts starts with the point (0, 0) of doing
    nothing and is sorted by increasing perf and time."""

    def __init__(self):
        self.all_pts: list[OperatingPoint] = []
        self.optimal_pts: list[OperatingPoint] = []
        self.clear()

    def clear(self) -> None:
        self.all_pts = _PointList()
        self.optimal_pts = _PointList([OperatingPoint(0.0, 0.0, "", -1)])

    def add(self, perf: float, t: float, key: str = "", cno: int = 0) -> bool:
        """Record a point; True when it is (for now) Pareto-optimal."""
        op = OperatingPoint(float(perf), float(t), str(key), int(cno))
        self.all_pts.append(op)
        a = self.optimal_pts
        if op.perf == 0:
            return False
        if op.perf > a[-1].perf:
            a.append(op)
        elif op.perf == a[-1].perf:
            if op.t < a[-1].t:
                a[-1] = op
            else:
                return False
        else:
            i = next(i for i, p in enumerate(a) if p.perf >= op.perf)
            if op.t < a[i].t:
                if a[i].perf == op.perf:
                    a[i] = op
                else:
                    a.insert(i, op)
            else:
                return False
        # drop points that a better point matches or beats in time (Faiss's rule)
        i = len(a) - 1
        while i > 0:
            if a[i].t <= a[i - 1].t:
                del a[i - 1]
            i -= 1
        return True

    def merge_with(self, other: OperatingPoints, prefix: str = "") -> int:
        return sum(self.add(op.perf, op.t, prefix + op.key, op.cno) for op in other.all_pts)

    def t_for_perf(self, perf: float) -> float:
        """Time of the fastest optimal point with at least this perf (1e50 if none)."""
        for op in self.optimal_pts:
            if op.perf >= perf:
                return op.t
        return 1e50

    def display(self, only_optimal: bool = True) -> None:
        pts = self.optimal_pts if only_optimal else self.all_pts
        print(f"Tested {len(self.all_pts)} operating points, {len(self.optimal_pts)} ones are Pareto-optimal:")
        opt = {op.cno for op in self.optimal_pts}
        for op in pts:
            star = "*" if (not only_optimal and op.cno in opt) else ""
            print(f"cno={op.cno} key={op.key} perf={op.perf:.4f} t={op.t:.3f} {star}")

    def all_to_gnuplot(self, fname: str) -> None:
        with open(fname, "w") as f:
            for op in self.all_pts:
                f.write(f"{op.perf:g} {op.t:g} {op.key}\n")

    def optimal_to_gnuplot(self, fname: str) -> None:
        with open(fname, "w") as f:
            prev = 0.0
            for op in self.optimal_pts:
                f.write(f"{prev:g} {op.t:g}\n{op.perf:g} {op.t:g} {op.key}\n")
                prev = op.perf


class AutoTuneCriterion:
    """Quality measure of a search result against ground truth.  nq queries,
    searched for nnn neighbours."""

    def __init__(self, nq: int, nnn: int):
        self.nq, self.nnn = int(nq), int(nnn)
        self.gt_nnn = 0
        self._gt_D = None  # (nq, gt_nnn) arrays; gt_D / gt_I show them as Faiss's vectors
        self._gt_I = None

    @property
    def gt_I(self):
        """The ground-truth ids as Faiss's std::vector (nq * gt_nnn int64), or None."""
        from .compat import Int64Vector
        return None if self._gt_I is None else Int64Vector(self._gt_I)

    @property
    def gt_D(self):
        """The ground-truth distances as Faiss's std::vector (nq * gt_nnn floats), or None."""
        from .compat import Float32Vector
        return None if self._gt_D is None else Float32Vector(self._gt_D)

    def set_groundtruth(self, gt_D: Any, gt_I: Any, gt_nnn: Any = None) -> None:
        """gt_I (nq, gt_nnn) ids of the true neighbours (gt_D may be None).
        Faiss's C++ order (gt_nnn, gt_D, gt_I) is accepted too."""
        if isinstance(gt_D, (int, np.integer)) and gt_nnn is not None:  # C++ argument order
            gt_D, gt_I = gt_I, gt_nnn
        gt_I = np.asarray(gt_I, dtype=np.int64)
        if gt_I.ndim == 1:
            gt_I = gt_I.reshape(self.nq, -1)
        if gt_I.ndim != 2 or gt_I.shape[0] != self.nq:
            raise InvalidArgumentError(
                f"ground truth must have {self.nq} rows (one per query), got shape {gt_I.shape}")
        self._gt_I = gt_I
        self.gt_nnn = gt_I.shape[1]
        self._gt_D = None if gt_D is None else np.asarray(gt_D, dtype=np.float32).reshape(gt_I.shape)

    def _check(self, I, need_gt):
        if self._gt_I is None or self.gt_nnn < need_gt:
            raise InvalidArgumentError("ground truth not initialized (call set_groundtruth)")
        I = np.asarray(I).reshape(self.nq, -1)
        if I.shape[1] < self.nnn:
            raise InvalidArgumentError(f"results have {I.shape[1]} columns, the criterion needs {self.nnn}")
        return I

    def evaluate(self, D: Any, I: Any) -> float:
        raise NotImplementedError


class OneRecallAtRCriterion(AutoTuneCriterion):
    """Fraction of queries whose true nearest neighbour is in the first R results."""

    def __init__(self, nq: int, R: int):
        super().__init__(nq, R)
        self.R = int(R)

    def evaluate(self, D: Any, I: Any) -> float:
        I = self._check(I, 1)
        return one_recall_at_r(I, self._gt_I, self.R)


class IntersectionCriterion(AutoTuneCriterion):
    """Mean |first R results ∩ true R nearest| / R (recall@R)."""

    def __init__(self, nq: int, R: int):
        super().__init__(nq, R)
        self.R = int(R)

    def evaluate(self, D: Any, I: Any) -> float:
        I = self._check(I, self.R)
        return recall_at_k(I[:, :self.R], self._gt_I[:, :self.R])
