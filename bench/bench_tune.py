"""annvil.tune against an expert's hand-tuned Faiss grid (issue 14).

Queries are split in two: A (given to annvil.tune, which keeps its own
held-out part of A to confirm its answer) and B (never seen by either side:
the final measurement).  The expert grid, in Faiss, is each swept to the
target on A (the smallest nprobe / efSearch meeting it, by bisection):

    HNSW32; IVF256,PQ{d/4}x4fs,RFlat and IVF1024,PQ{d/4}x4fs,RFlat with
    k_factor_rf 8 and 16; IVF1024,SQ8.

Then annvil.tune's answer (rebuilt with annvil) and the best grid entry are
timed on B with ONE thread, interleaved (median of alternated runs), and
the QPS ratio and the recall on B of each are printed.

    python bench/bench_tune.py --dataset /path/to/gcide-minilm-384-40k --target 0.90 --budget 150
"""
from __future__ import annotations

import argparse
import json
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
from annvil.autotune import ParameterSpace  # noqa: E402
from annvil.eval import recall_at_k  # noqa: E402
from annvil.tuner import bisect_min, build_index  # noqa: E402

try:
    import faiss  # noqa: E402
except ImportError:
    sys.exit("bench_tune.py needs faiss-cpu (pip install faiss-cpu)")


def expert_grid(d):
    m = d // 4
    return [("HNSW32", [{}], ("efSearch", 10, 1024)),
            ("IVF256,PQ%dx4fs,RFlat" % m, [{"k_factor_rf": 8}, {"k_factor_rf": 16}], ("nprobe", 1, 256)),
            ("IVF1024,PQ%dx4fs,RFlat" % m, [{"k_factor_rf": 8}, {"k_factor_rf": 16}], ("nprobe", 1, 1024)),
            ("IVF1024,SQ8", [{}], ("nprobe", 1, 1024))]


def _p(d):
    return ",".join(f"{k}={v}" for k, v in d.items())


def build_grid(xb, metric, log):
    out = []
    for factory, outer, knob in expert_grid(xb.shape[1]):
        t0 = time.perf_counter()
        index, _ = build_index(faiss, xb, factory, "", metric)
        log(f"  faiss {factory}: built in {time.perf_counter() - t0:.1f} s")
        out.append((factory, outer, knob, index))
    return out


def sweep_grid(built, xq, gt, k, target, log):
    """[(factory, params, recall on xq, index)] of each grid entry at the target."""
    out = []
    ps = ParameterSpace()
    for factory, outer, (name, lo, hi), index in built:
        for o in outer:
            def f(v, o=o, index=index, name=name):
                ps.set_index_parameters(index, _p({**o, name: v}))
                return recall_at_k(index.search(xq, k)[1], gt)

            v = bisect_min(f, lo, hi, target)
            if v is None:
                log(f"  faiss {factory} {_p(o)}: target not reachable")
                continue
            params = _p({**o, name: v})
            out.append((factory, params, f(v), index))
            log(f"  faiss {factory} [{params}]: recall {f(v):.4f} on A")
    return out


def interleaved(cands, xq, k, rounds=9):
    ps = ParameterSpace()
    times = [[] for _ in cands]
    for r in range(rounds + 1):
        order = list(range(len(cands))) if r % 2 == 0 else list(reversed(range(len(cands))))
        for i in order:
            index, params = cands[i]
            ps.set_index_parameters(index, params)
            t0 = time.perf_counter()
            index.search(xq, k)
            if r:  # round 0 warms up
                times[i].append(time.perf_counter() - t0)
    return [len(xq) / float(np.median(t)) for t in times]


def run_target(args, target, xb, xa, ga, xb_q, gb, metric, k, built, log):
    log(f"\n=== target recall@{k} >= {target} ===")
    t0 = time.monotonic()
    res = annvil.tune(xb, xa, gt=ga, k=k, target_recall=target, budget_s=args.budget, metric=metric,
                      strategy=args.strategy, seed=args.seed)
    t_tune = time.monotonic() - t0
    log(f"annvil.tune: {len(res.builds)} builds, {len(res.trials)} points in {t_tune:.0f} s: {res.message}")
    log("  importances: " + ", ".join(f"{n} {v:.2f}" for n, v in res.importances().items()))
    mine = res.build(xb)

    log("expert grid (Faiss), each swept to the target on A:")
    grid = sweep_grid(built, xa, ga, k, target, log)

    # the final measurement: one thread, unseen queries B, interleaved
    annvil.omp_set_num_threads(1)
    faiss.omp_set_num_threads(1)
    cands = [(mine, res.best.params)] + [(g[3], g[1]) for g in grid]
    qps = interleaved(cands, xb_q, k)
    ps = ParameterSpace()
    recalls = []
    for index, params in cands:
        ps.set_index_parameters(index, params)
        recalls.append(recall_at_k(index.search(xb_q, k)[1], gb))
    rows = [("annvil.tune", res.best.factory, res.best.params, recalls[0], qps[0])]
    rows += [("faiss grid", g[0], g[1], r, q) for g, r, q in zip(grid, recalls[1:], qps[1:])]
    log(f"\non the {len(xb_q)} unseen queries, 1 thread:")
    for who, f, p, r, q in rows:
        log(f"  {who:12s} {f:28s} [{p}]  recall {r:.4f}  {q:,.0f} QPS")
    ok = [x for x in rows[1:] if x[3] >= target - 0.005]
    best_grid = max(ok or rows[1:], key=lambda x: x[4]) if len(rows) > 1 else None
    ratio = rows[0][4] / best_grid[4] if best_grid else float("nan")
    log(f"ratio annvil.tune / best expert grid entry ({best_grid[1]} [{best_grid[2]}]): {ratio:.2f}x; "
        f"annvil recall on unseen queries {recalls[0]:.4f} (target {target}, "
        f"window [{target}, {target + 0.02:.2f}])" if best_grid else "no grid entry reached the target")
    return {"target": target, "tune_seconds": t_tune, "annvil": res.to_dict(), "rows": rows, "ratio": ratio}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--target", default="0.90,0.95", help="recall target(s), comma-separated")
    ap.add_argument("--budget", type=float, default=150, help="annvil.tune's budget (s)")
    ap.add_argument("--strategy", default="bayes")
    ap.add_argument("--threads", type=int, default=2, help="threads while tuning / building")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/bench_tune.json")
    args = ap.parse_args()

    log = lambda m: print(m, flush=True)  # noqa: E731
    annvil.omp_set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    ds = load_dataset(args.dataset, n_train=args.n_train)
    xb, xq_all, metric, k = ds.train, ds.test, ds.metric_type, args.k
    gt_all = ds.ground_truth(k)
    perm = np.random.default_rng(args.seed + 100).permutation(len(xq_all))
    a, b = np.sort(perm[: len(perm) // 2]), np.sort(perm[len(perm) // 2:])
    xa, ga, xb_q, gb = xq_all[a], gt_all[a], xq_all[b], gt_all[b]
    log(f"{ds.describe()}; target recall@{k} >= {args.target}; annvil.tune budget {args.budget:g} s on "
        f"{args.threads} threads; queries: {len(a)} for tuning (A), {len(b)} unseen (B)")

    targets = [float(t) for t in str(args.target).split(",") if t.strip()]
    log("expert grid (Faiss):")
    built = build_grid(xb, metric, log)
    report = []
    for target in targets:
        report.append(run_target(args, target, xb, xa, ga, xb_q, gb, metric, k, built, log))
        annvil.omp_set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "dataset": ds.describe(), "targets": report}, f, indent=1, default=str)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
