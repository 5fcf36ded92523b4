"""What the reliability work costs (issue 9): read-only search speed, mmap load
time, and HNSW recall/reachability.  Uses only the public API, so the same
script runs against an older build (PYTHONPATH=<old checkout>/python) for a
before/after comparison; run the builds alternately, single thread.

    python bench/bench_reliability.py search            # 1-query and 1000-query calls, Flat/IVF/HNSW
    python bench/bench_reliability.py mmap --n 1000000  # write an HNSW file once, time mmap loads
    python bench/bench_reliability.py recall --M 8 32   # wordnet HNSW recall@10 and unreachable vertices
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_wordnet  # noqa: E402

import annvil  # noqa: E402

# Own timers, recall and BFS instead of annvil.eval / the tests' helpers: the
# builds compared (53d62b1, 3ab5710) predate annvil.eval.


def qps_single(index, xq, k=10, reps=3):
    """Best of reps: one search call per query (the per-call cost, lock included)."""
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        for q in xq:
            index.search(q[None, :], k)
        best = max(best, len(xq) / (time.perf_counter() - t0))
    return best


def qps_batch(index, xq, k=10, reps=3):
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        index.search(xq, k)
        best = max(best, len(xq) / (time.perf_counter() - t0))
    return best


def cmd_search(args):
    xb, xq, _ = load_wordnet()
    xb = xb[: args.n]
    annvil.omp_set_num_threads(1)
    d = xb.shape[1]
    flat = annvil.IndexFlatIP(d)
    flat.add(xb)
    ivf = annvil.IndexIVFFlat(annvil.IndexFlatIP(d), d, 256, annvil.METRIC_INNER_PRODUCT)
    ivf.train(xb[:20000])
    ivf.add(xb)
    ivf.nprobe = 8
    hnsw = annvil.IndexHNSWFlat(d, 16, annvil.METRIC_INNER_PRODUCT)
    annvil.omp_set_num_threads(2)
    hnsw.add(xb)
    annvil.omp_set_num_threads(1)
    hnsw.hnsw.efSearch = 64
    small = annvil.IndexFlatIP(d)
    small.add(xb[:1000])
    for name, index in [("Flat 1k", small), ("Flat", flat), ("IVF256,Flat np8", ivf), ("HNSW16 ef64", hnsw)]:
        s = qps_single(index, xq[: args.nq_single])
        b = qps_batch(index, xq[: args.nq])
        print(f"{name:18s} 1-query calls {s:10.0f} QPS   {args.nq}-query call {b:10.0f} QPS", flush=True)


def cmd_mmap(args):
    path = Path(args.file)
    if not path.exists():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((args.n, args.d), dtype=np.float32)
        index = annvil.IndexHNSWFlat(args.d, 16)
        t0 = time.perf_counter()
        index.add(x)
        print(f"built {args.n} x {args.d} HNSW16 in {time.perf_counter() - t0:.1f} s", flush=True)
        annvil.write_index(index, str(path))
        del index, x
    size = path.stat().st_size
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        index = annvil.read_index(str(path), mmap=True)
        times.append(time.perf_counter() - t0)
        del index
    t0 = time.perf_counter()
    index = annvil.read_index(str(path))
    t_full = time.perf_counter() - t0
    q = np.random.default_rng(1).standard_normal((1, index.d), dtype=np.float32)
    index.search(q, 5)
    print(f"file {size / 2**20:.0f} MiB, ntotal {index.ntotal}: mmap load median {np.median(times) * 1e3:.2f} ms "
          f"(min {min(times) * 1e3:.2f}), full read {t_full * 1e3:.0f} ms", flush=True)


def unreachable(index):
    g = index.hnsw
    n = index.ntotal
    seen = np.zeros(n, dtype=bool)
    stack = [int(g.entry_point)]
    seen[stack[0]] = True
    while stack:
        v = stack.pop()
        nb = np.asarray(g.get_neighbors(v, 0))
        nb = nb[nb >= 0]
        new = nb[~seen[nb]]
        seen[new] = True
        stack.extend(new.tolist())
    return int(n - seen.sum())


def cmd_recall(args):
    xb, xq, gt = load_wordnet()
    xq = xq[: args.nq]
    gt = gt[: args.nq, :10]
    for m in args.M:
        annvil.omp_set_num_threads(2)
        index = annvil.IndexHNSWFlat(xb.shape[1], m, annvil.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = args.efc
        t0 = time.perf_counter()
        index.add(xb)
        tb = time.perf_counter() - t0
        annvil.omp_set_num_threads(1)
        parts = []
        for ef in args.ef:
            index.hnsw.efSearch = ef
            _, ids = index.search(xq, 10)
            r = np.mean([len(np.intersect1d(ids[i], gt[i])) / 10 for i in range(len(xq))])
            parts.append(f"ef{ef} {r:.4f}")
        print(f"M={m} efC={args.efc} build {tb:.0f} s, unreachable {unreachable(index)}: " + "  ".join(parts),
              flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("search")
    s.add_argument("--n", type=int, default=50_000)
    s.add_argument("--nq", type=int, default=1000)
    s.add_argument("--nq-single", type=int, default=500)
    m = sub.add_parser("mmap")
    m.add_argument("--n", type=int, default=1_000_000)
    m.add_argument("--d", type=int, default=32)
    m.add_argument("--reps", type=int, default=7)
    m.add_argument("--file", default=os.path.join(tempfile.gettempdir(), "annvil-bench-hnsw.idx"))
    r = sub.add_parser("recall")
    r.add_argument("--M", type=int, nargs="+", default=[8, 32])
    r.add_argument("--efc", type=int, default=40)
    r.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64, 128])
    r.add_argument("--nq", type=int, default=2000)
    args = ap.parse_args()
    {"search": cmd_search, "mmap": cmd_mmap, "recall": cmd_recall}[args.cmd](args)


if __name__ == "__main__":
    main()
