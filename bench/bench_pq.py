"""Benchmark of the PQ family against Faiss on real text embeddings.

Data: /work/shared/data/wordnet-minilm-384 (117,659 x 384 base vectors,
2,000 queries, inner product, exact top-100 ground truth).  Configurations
(same parameters in both libraries, one thread each):

  PQ48 + RFlat          IndexRefineFlat(IndexPQ(384, 48, 8, IP)), k_factor sweep
  PQ96x4fs + RFlat      IndexRefineFlat(IndexPQFastScan(384, 96, 4, IP)), k_factor sweep

Prints recall@10, QPS, train and add time, bytes per vector (codes + the
refine vectors) for annvil and Faiss, and the ratio annvil / Faiss
(QPS: higher is better; times: lower is better).

    OPENBLAS_CORETYPE=SkylakeX PYTHONPATH=python python bench/bench_pq.py
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from annvil.eval import intersection_recall


def load(path, nb, nq, ntrain, seed):
    xb = np.load(os.path.join(path, "train.f16.npy")).astype(np.float32)
    xq = np.load(os.path.join(path, "test.f16.npy")).astype(np.float32)
    gt = np.load(os.path.join(path, "neighbors.i32.npy")).astype(np.int64)
    if nb and nb < len(xb):
        raise SystemExit("--nb smaller than the base invalidates the ground truth; use the full base")
    xq, gt = xq[:nq], gt[:nq]
    rs = np.random.RandomState(seed)
    xt = xb[rs.choice(len(xb), min(ntrain, len(xb)), replace=False)] if ntrain else xb
    return xb, xq, xt, gt


def run(lib, make, xb, xq, xt, gt, k_factors, k, clock, repeats):
    idx = make(lib)
    t0 = clock()
    idx.train(xt)
    t_train = clock() - t0
    t0 = clock()
    idx.add(xb)
    t_add = clock() - t0
    rows = []
    for kf in k_factors:
        idx.k_factor = kf
        idx.search(xq[:50], k)  # warm-up
        best = None
        for _ in range(repeats):
            t0 = clock()
            _, I = idx.search(xq, k)
            dt = clock() - t0
            best = dt if best is None else min(best, dt)
        rows.append((kf, intersection_recall(I, gt, k), len(xq) / best))
    return t_train, t_add, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/data/wordnet-minilm-384")
    ap.add_argument("--nq", type=int, default=2000, help="queries (of 2000)")
    ap.add_argument("--ntrain", type=int, default=30000, help="training vectors sampled from the base (0: all)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--k-factors", default="1,2,4,8,16")
    ap.add_argument("--configs", default="PQ48,PQ96x4fs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="timed search runs per point (best kept)")
    ap.add_argument("--clock", choices=["auto", "wall", "cpu"], default="auto",
                    help="cpu: process CPU time (robust on a shared machine, meaningful with 1 thread); "
                         "auto: cpu when --threads 1, else wall")
    args = ap.parse_args()
    use_cpu = args.clock == "cpu" or (args.clock == "auto" and args.threads == 1)
    clock = time.process_time if use_cpu else time.perf_counter

    import faiss
    import annvil

    annvil.omp_set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    xb, xq, xt, gt = load(args.data, 0, args.nq, args.ntrain, args.seed)
    d = xb.shape[1]
    ip = 0  # METRIC_INNER_PRODUCT in both libraries
    k_factors = [float(v) for v in args.k_factors.split(",")]
    configs = {
        "PQ48": (lambda L: L.IndexRefineFlat(L.IndexPQ(d, 48, 8, ip)), 48),
        "PQ96x4fs": (lambda L: L.IndexRefineFlat(L.IndexPQFastScan(d, 96, 4, ip)), 48),
    }
    print(f"# wordnet-minilm-384: nb={len(xb)} nq={len(xq)} ntrain={len(xt)} d={d} k={args.k} "
          f"threads={args.threads} simd={annvil.simd_level()} faiss={faiss.__version__} "
          f"clock={'cpu' if use_cpu else 'wall'}")
    for name in args.configs.split(","):
        make, code_bytes = configs[name]
        bpv = code_bytes + 4 * d  # PQ codes + the refine index's float32 vectors
        res = {}
        for label, lib in (("annvil", annvil), ("faiss", faiss)):
            res[label] = run(lib, make, xb, xq, xt, gt, k_factors, args.k, clock, args.repeats)
        (at, aa, arows), (ft, fa, frows) = res["annvil"], res["faiss"]
        print(f"\n## {name} + RFlat   bytes/vector: {code_bytes} (codes) + {4 * d} (refine) = {bpv}")
        print(f"train s: annvil {at:.2f}  faiss {ft:.2f}  ratio {at / ft:.2f}   |   "
              f"add s: annvil {aa:.2f}  faiss {fa:.2f}  ratio {aa / fa:.2f}")
        print(f"{'k_factor':>8} | {'R@10 annvil':>11} {'R@10 faiss':>10} | {'QPS annvil':>10} {'QPS faiss':>10} "
              f"{'QPS ratio':>9}")
        for (kf, ar, aq), (_, fr, fq) in zip(arows, frows):
            print(f"{kf:>8g} | {ar:>11.4f} {fr:>10.4f} | {aq:>10.1f} {fq:>10.1f} {aq / fq:>9.2f}")


if __name__ == "__main__":
    main()
