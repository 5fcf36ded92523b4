"""Exact search and k-means: annvil against Faiss, same run, same threads.

    python bench/bench_flat.py                 # wordnet + 1M x 128, 1 and 2 threads
    python bench/bench_flat.py --quick         # smaller random set
Prints ours, Faiss's and the ratio; GFLOP/s and % of FMA peak for batches,
GB/s for single queries, memory overhead of the flat index, k-means time at
equal objective.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEAK_GFLOPS_PER_CORE, WORDNET, load_wordnet, random_data, set_faiss_coretype  # noqa: E402

coretype = set_faiss_coretype()
import faiss  # noqa: E402
import numpy as np  # noqa: E402

import annvil  # noqa: E402
from annvil.eval import median_time  # noqa: E402


def set_threads(n):
    annvil.omp_set_num_threads(n)
    faiss.omp_set_num_threads(n)


def bench_search(name, xb, xq, metric, threads, batches, k=10):
    d = xb.shape[1]
    ours = annvil.IndexFlat(d, metric)
    ref = faiss.IndexFlat(d, metric)
    ours.add(xb)
    ref.add(xb)
    raw = xb.nbytes
    print(f"\n== {name}: {xb.shape[0]} x {d}, k={k}, metric={'L2' if metric == 1 else 'IP'}; "
          f"annvil SIMD={annvil.simd_level()}, OPENBLAS_CORETYPE={coretype}")
    print(f"   flat memory: raw {raw / 1e6:.1f} MB, annvil {ours.memory_usage() / 1e6:.1f} MB "
          f"(overhead {100 * (ours.memory_usage() - raw) / raw:.3f}%)")
    big = np.ones(256 * 2**20 // 4, dtype=np.float32)  # 256 MiB
    bw = big.nbytes / median_time(lambda: big.sum(), repeats=3) / 1e9
    print(f"   machine read bandwidth (numpy sum over 256 MiB, 1 thread): {bw:.1f} GB/s")
    print(f"{'thr':>3} {'batch':>6} | {'annvil ms':>10} {'faiss ms':>10} {'ratio':>6} | {'annvil':>16} {'faiss':>16}")
    for nt in threads:
        set_threads(nt)
        for nq in batches:
            if nq == 1:
                qs = xq[:20]
                t_ours = median_time(lambda qs=qs: [ours.search(q[None], k) for q in qs], repeats=3) / len(qs)
                t_ref = median_time(lambda qs=qs: [ref.search(q[None], k) for q in qs], repeats=3) / len(qs)
                unit = lambda t: f"{raw / t / 1e9:7.1f} GB/s"  # noqa: E731
            else:
                q = xq[:nq]
                rep = 3 if nq >= 1000 else 7
                t_ours = median_time(lambda q=q: ours.search(q, k), repeats=rep)
                t_ref = median_time(lambda q=q: ref.search(q, k), repeats=rep)
                flops = 2.0 * nq * xb.shape[0] * d

                def unit(t, flops=flops, nt=nt):
                    g = flops / t / 1e9
                    return f"{g:6.0f} GF {100 * g / (PEAK_GFLOPS_PER_CORE * nt):3.0f}%"
            print(f"{nt:>3} {nq:>6} | {t_ours * 1e3:10.2f} {t_ref * 1e3:10.2f} {t_ref / t_ours:6.2f} | "
                  f"{unit(t_ours):>16} {unit(t_ref):>16}", flush=True)


def bench_kmeans(xb, k, threads, niter=20):
    d = xb.shape[1]
    print(f"\n== k-means: {xb.shape[0]} x {d} -> {k} centroids, niter={niter}")
    for nt in threads:
        set_threads(nt)
        t0 = time.perf_counter()
        ours = annvil.Kmeans(d, k, niter=niter, seed=1)
        ours.train(xb)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = faiss.Kmeans(d, k, niter=niter, seed=1)
        ref.train(xb)
        t_ref = time.perf_counter() - t0
        obj_ours = float(ours.assign(xb)[0].sum())
        obj_ref = float(ref.index.search(xb, 1)[0].sum())
        print(f"thr={nt}: annvil {t_ours:6.2f} s obj {obj_ours:.6g} | faiss {t_ref:6.2f} s obj {obj_ref:.6g} | "
              f"speed ratio {t_ref / t_ours:.2f}, objective ratio {obj_ours / obj_ref:.4f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small random data only")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,16,1000")
    ap.add_argument("--skip-kmeans", action="store_true")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    if args.quick:
        xb, xq = random_data(200_000, 128, 1000)
        bench_search("random 200k", xb, xq, annvil.METRIC_L2, threads, batches)
    else:
        if (WORDNET / "train.f16.npy").exists():
            xb, xq, _ = load_wordnet()
            bench_search("wordnet-minilm-384", xb, xq, annvil.METRIC_INNER_PRODUCT, threads, batches)
        xb, xq = random_data(1_000_000, 128, 1000)
        bench_search("random 1M x 128", xb, xq, annvil.METRIC_L2, threads, batches)
    if not args.skip_kmeans:
        xb, _ = random_data(100_000 if args.quick else 262_144, 128 if args.quick else 384, 1, seed=3)
        bench_kmeans(xb, 1024, threads)


if __name__ == "__main__":
    main()
