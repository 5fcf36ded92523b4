"""LSH benchmark on real embeddings (wordnet-minilm-384, inner product):
recall@10 / QPS curves of annvil's IndexLSHMultiTable (multi-table,
multi-probe, exact re-ranking) next to IndexLSH (Faiss's single binary code,
alone and with exact re-ranking of its Hamming candidates), IVF-Flat and
HNSW-Flat, annvil and Faiss side by side where both have the index.  Search
is single-threaded (builds use --build-threads); every (ours, Faiss's) pair
is timed interleaved in the same run.

    PYTHONPATH=python python bench/bench_lsh.py --nq 500
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import set_faiss_coretype  # noqa: E402

set_faiss_coretype()

import annvil  # noqa: E402
from annvil.eval import best_of, intersection_recall  # noqa: E402
import faiss  # noqa: E402

WORDNET = os.environ.get("ANNVIL_WORDNET", "/work/shared/data/wordnet-minilm-384")


def timed(index, xq, k, repeats):
    """(ids, QPS of the fastest of `repeats` searches of xq)."""
    best, (_, I) = best_of(lambda: index.search(xq, k), repeats, warmup=False)
    return I, len(xq) / best


def row(name, param, r, qps, r_f=None, qps_f=None):
    if qps_f is None:
        print(f"{name:<22} {param:<14} {r:8.3f} {qps:10.0f} {'':>8} {'':>10} {'':>6}", flush=True)
    else:
        print(f"{name:<22} {param:<14} {r:8.3f} {qps:10.0f} {r_f:8.3f} {qps_f:10.0f} {qps / qps_f:6.2f}", flush=True)


def set_threads(n):
    annvil.omp_set_num_threads(n)
    faiss.omp_set_num_threads(n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nq", type=int, default=500)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--build-threads", type=int, default=2)
    ap.add_argument("--tables", default="16x14,32x16", help="LSHMT configurations ntables x nbits")
    ap.add_argument("--nprobe", default="8,16,32,64,128,256")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: lsh,ivf,hnsw")
    args = ap.parse_args()
    xb = np.load(os.path.join(WORDNET, "train.f16.npy")).astype(np.float32)
    xq = np.load(os.path.join(WORDNET, "test.f16.npy")).astype(np.float32)[: args.nq]
    gt = np.load(os.path.join(WORDNET, "neighbors.i32.npy")).astype(np.int64)[: args.nq]
    d, k = xb.shape[1], args.k
    skip = set(args.skip.split(","))
    print(f"wordnet-minilm-384: nb={len(xb)} nq={len(xq)} d={d}, inner product, k={k}, search threads=1")
    print(f"{'index':<22} {'param':<14} {'R@10':>8} {'QPS':>10} {'F R@10':>8} {'F QPS':>10} {'ratio':>6}")

    # ---- multi-table LSH (annvil only: Faiss has no equivalent) ----
    for cfg in args.tables.split(","):
        L, K = (int(v) for v in cfg.split("x"))
        set_threads(args.build_threads)
        idx = annvil.IndexLSHMultiTable(d, L, K, annvil.METRIC_INNER_PRODUCT)
        t0 = time.perf_counter()
        idx.train(xb)
        idx.add(xb)
        tb = time.perf_counter() - t0
        set_threads(1)
        for nprobe in (int(v) for v in args.nprobe.split(",")):
            idx.nprobe = nprobe
            I, qps = timed(idx, xq, k, args.repeats)
            row(f"LSHMT{L}x{K} (build {tb:.0f}s)", f"nprobe={nprobe}", intersection_recall(I, gt), qps)
            print(f"{'':<22} {'':<14} candidates/query {idx.last_candidates:.0f}", flush=True)

    # ---- IndexLSH: Faiss's scheme, alone and re-ranked ----
    if "lsh" not in skip:
        for nbits in (384, 1536):
            set_threads(1)
            a = annvil.IndexLSH(d, nbits, True, True)
            f = faiss.IndexLSH(d, nbits, True, True)
            set_threads(args.build_threads)
            for ix in (a, f):
                ix.train(xb)
                ix.add(xb)
            set_threads(1)
            Ia, qa = timed(a, xq, k, args.repeats)
            If, qf = timed(f, xq, k, args.repeats)
            row(f"LSH{nbits}rt", "", intersection_recall(Ia, gt), qa, intersection_recall(If, gt), qf)
            for kf in (10, 50):
                ra, rf = annvil.IndexRefineFlat(a, xb), faiss.IndexRefineFlat(f, faiss.swig_ptr(xb))
                ra.k_factor = rf.k_factor = kf
                Ia, qa = timed(ra, xq, k, args.repeats)
                If, qf = timed(rf, xq, k, args.repeats)
                row(f"LSH{nbits}rt,RFlat", f"k_factor={kf}", intersection_recall(Ia, gt), qa,
                    intersection_recall(If, gt), qf)

    # ---- IVF-Flat ----
    if "ivf" not in skip:
        set_threads(args.build_threads)
        pair = []
        for lib in (annvil, faiss):
            q = lib.IndexFlatIP(d)
            ix = lib.IndexIVFFlat(q, d, 1024, lib.METRIC_INNER_PRODUCT)
            ix.train(xb[::4])
            ix.add(xb)
            pair.append(ix)
        set_threads(1)
        for nprobe in (4, 8, 16, 32):
            for ix in pair:
                ix.nprobe = nprobe
            Ia, qa = timed(pair[0], xq, k, args.repeats)
            If, qf = timed(pair[1], xq, k, args.repeats)
            row("IVF1024,Flat", f"nprobe={nprobe}", intersection_recall(Ia, gt), qa, intersection_recall(If, gt), qf)

    # ---- HNSW-Flat ----
    if "hnsw" not in skip:
        set_threads(args.build_threads)
        pair = []
        for lib in (annvil, faiss):
            ix = lib.IndexHNSWFlat(d, 32, lib.METRIC_INNER_PRODUCT)
            ix.hnsw.efConstruction = 40
            ix.add(xb)
            pair.append(ix)
        set_threads(1)
        for ef in (16, 32, 64):
            for ix in pair:
                ix.hnsw.efSearch = ef
            Ia, qa = timed(pair[0], xq, k, args.repeats)
            If, qf = timed(pair[1], xq, k, args.repeats)
            row("HNSW32,Flat", f"efSearch={ef}", intersection_recall(Ia, gt), qa, intersection_recall(If, gt), qf)


if __name__ == "__main__":
    main()
