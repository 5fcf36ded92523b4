"""annvil.tune against Faiss's own auto-tuning, same data, budget and threads.

annvil side: annvil.tune(train, test, gt=..., target_recall, budget_s) over
the index families this build has (or, with --engine faiss, over Faiss's
classes: that compares the two *tuning methods* on the same engine).
Faiss side: the classic Faiss recipe: build candidate indexes from a list of
factory strings (cheap builds first) and run faiss.ParameterSpace.explore on
each with an IntersectionCriterion (recall@k), until the same budget is spent.
Prints the best QPS at the target recall for each and the ratio.

    python bench/bench_tune.py --dataset /work/shared/data/wordnet-minilm-384 --budget 90
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

# Faiss's OpenBLAS picks a slow kernel on some CPUs unless told (benchmark runs only)
if "OPENBLAS_CORETYPE" not in os.environ:
    try:
        if "avx512f" in open("/proc/cpuinfo").read():
            os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    except OSError:
        pass

import numpy as np  # noqa: E402

import annvil  # noqa: E402
from annvil.bench import load_dataset  # noqa: E402

try:
    import faiss  # noqa: E402
except ImportError:
    sys.exit("bench_tune.py needs faiss-cpu (pip install faiss-cpu)")


def faiss_candidates(n, d):
    root = math.sqrt(n)
    small = 1 << int(round(math.log2(root)))
    big = 1 << int(round(math.log2(4 * root)))
    cands = [f"IVF{small},Flat", f"IVF{big},Flat", "HNSW32", f"IVF{big},SQ8"]
    if d % 2 == 0 and (d // 2) % 2 == 0:
        cands.append(f"IVF{big},PQ{d // 2}x4fs,RFlat")
    cands += ["HNSW16", f"IVF{small},SQ8"]
    return cands


def faiss_autotune(ds, xq, gt, k, target, budget_s, metric):
    """Faiss's recipe within budget_s: [(factory, params, recall, qps, build_s)]."""
    t_end = time.monotonic() + budget_s
    crit = faiss.IntersectionCriterion(len(xq), k)
    crit.set_groundtruth(None, np.ascontiguousarray(gt[:, :k], dtype=np.int64))
    found = []
    for fs in faiss_candidates(*ds.train.shape):
        if time.monotonic() >= t_end:
            break
        t0 = time.perf_counter()
        index = faiss.index_factory(ds.d, fs, metric)
        if not index.is_trained:
            n = ds.train.shape[0]
            sel = np.random.default_rng(1).choice(n, min(n, max(10000, 50 * 1024)), replace=False)
            index.train(ds.train[np.sort(sel)])
        index.add(ds.train)
        build_s = time.perf_counter() - t0
        if time.monotonic() >= t_end:
            print(f"  faiss {fs}: build {build_s:.1f} s ended past the budget: not counted", flush=True)
            break
        ps = faiss.ParameterSpace()
        ps.initialize(index)
        ps.verbose = 0
        ops = ps.explore(index, xq, crit)
        for i in range(ops.optimal_pts.size()):
            op = ops.optimal_pts.at(i)
            if op.perf > 0:
                found.append((fs, op.key, float(op.perf), len(xq) / max(op.t, 1e-9), build_s))
        best = max((f for f in found if f[0] == fs and f[2] >= target), key=lambda f: f[3], default=None)
        print(f"  faiss {fs}: build {build_s:.1f} s, best at target: "
              + (f"{best[1]} recall {best[2]:.4f} {best[3]:,.0f} QPS" if best else "none"), flush=True)
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="/work/shared/data/wordnet-minilm-384")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--nq", type=int, default=1000, help="queries used (first N of the test set)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--budget", type=float, default=90, help="seconds for each side")
    ap.add_argument("--strategy", default="bayes")
    ap.add_argument("--engine", default="annvil", choices=["annvil", "faiss"],
                    help="index classes annvil.tune searches over (faiss: compare tuning methods alone)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default="bench/results/bench_tune.json")
    args = ap.parse_args()

    annvil.omp_set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    ds = load_dataset(args.dataset, n_train=args.n_train, n_test=args.nq)
    xq, gt = ds.test, ds.ground_truth(args.k)
    print(f"{ds.describe()}; target recall@{args.k} >= {args.target}; budget {args.budget:g} s each; "
          f"{args.threads} threads; annvil.tune engine: {args.engine}", flush=True)

    t0 = time.monotonic()
    res = annvil.tune(ds.train, xq, gt=gt, k=args.k, target_recall=args.target, budget_s=args.budget,
                      metric=ds.metric_type, strategy=args.strategy, seed=0,
                      _ns=faiss if args.engine == "faiss" else None)
    t_annvil = time.monotonic() - t0
    print(f"annvil.tune: {len(res.trials)} trials in {t_annvil:.0f} s: {res.message}", flush=True)

    t0 = time.monotonic()
    found = faiss_autotune(ds, xq, gt, args.k, args.target, args.budget, ds.metric_type)
    t_faiss = time.monotonic() - t0
    ok = [f for f in found if f[2] >= args.target]
    fbest = max(ok, key=lambda f: f[3]) if ok else None
    print(f"faiss ParameterSpace.explore: {len(found)} optimal points in {t_faiss:.0f} s", flush=True)

    a_qps = res.best.qps if res.target_reached else float("nan")
    f_qps = fbest[3] if fbest else float("nan")
    print()
    print(f"best QPS at recall@{args.k} >= {args.target}:")
    print(f"  annvil.tune ({args.engine} indexes): "
          + (f"{a_qps:,.0f} QPS  {res.best.factory} [{res.best.params}] recall {res.best.recall:.4f}"
             if res.target_reached else "target not reached"))
    print(f"  faiss autotune:             "
          + (f"{f_qps:,.0f} QPS  {fbest[0]} [{fbest[1]}] recall {fbest[2]:.4f}" if fbest else "target not reached"))
    ratio = a_qps / f_qps if fbest and res.target_reached else float("nan")
    print(f"  ratio annvil/faiss: {ratio:.2f}x")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "dataset": ds.describe(), "annvil": res.to_dict(),
                   "faiss": [dict(zip(("factory", "params", "recall", "qps", "build_s"), x)) for x in found],
                   "annvil_best_qps": a_qps, "faiss_best_qps": f_qps, "ratio": ratio,
                   "seconds": {"annvil": t_annvil, "faiss": t_faiss}}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
