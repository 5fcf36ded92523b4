"""annvil.tune(): the fastest index configuration that meets a recall target.

How the budget is spent (each step is what a person tuning by hand does, made
systematic):
  1. Data statistics (n, d, metric, intrinsic dimension on a sample) choose
     the starting set of each family (families.py): IVF with small and
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

The package: core.py (tune() and the Tuner class: setup, starting set,
family search, refinement, result), evaluate.py (measurements on built
indexes), build.py (building, knob bisection, data statistics), result.py
(TuneTrial, TuneResult), families.py (the index families), report.py
(importances, plots, the HTML report).  The Faiss AutoTune API it builds on
(ParameterSpace...) is annvil/autotune.py; recall, the Pareto front and the
timers are annvil/eval.py.
"""
from __future__ import annotations

from .build import bisect_min, build_index  # noqa: F401
from .core import Tuner, tune  # noqa: F401
from .families import FAMILIES, Family, register_family  # noqa: F401
from .result import TuneResult, TuneTrial  # noqa: F401

__all__ = ["tune", "TuneResult", "TuneTrial", "bisect_min"]
