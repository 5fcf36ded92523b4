"""IVF benchmark: annvil vs Faiss on the same data, same nlist, same threads.

Prints, per nprobe: recall@k, QPS (batched search), and the QPS ratio
annvil / Faiss both at the same nprobe and at equal recall (Faiss's QPS
interpolated at annvil's recall on its recall/QPS curve).

    OPENBLAS_CORETYPE=SkylakeX PYTHONPATH=python python bench/bench_ivf.py \\
        --data wordnet --nlist 1024 --nprobe 1,2,4,8,16,32,64 --threads 1
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from annvil.eval import best_of, intersection_recall

WORDNET = "/work/shared/data/wordnet-minilm-384"


def load(args):
    if args.data == "wordnet":
        xb = np.load(os.path.join(WORDNET, "train.f16.npy")).astype(np.float32)
        xq = np.load(os.path.join(WORDNET, "test.f16.npy")).astype(np.float32)
        gt = np.load(os.path.join(WORDNET, "neighbors.i32.npy")).astype(np.int64)
        if args.nb:
            xb = xb[: args.nb]
            gt = None
        if args.nq:
            xq = xq[: args.nq]
            gt = gt[: args.nq] if gt is not None else None
        metric = "ip"
    else:
        rng = np.random.default_rng(123)
        nb, nq, d = args.nb or 100_000, args.nq or 2000, args.dim
        # clustered data, so that IVF has structure to exploit
        centers = rng.standard_normal((256, d)).astype(np.float32) * 2
        xb = (centers[rng.integers(0, 256, nb)] + rng.standard_normal((nb, d))).astype(np.float32)
        xq = (centers[rng.integers(0, 256, nq)] + rng.standard_normal((nq, d))).astype(np.float32)
        gt = None
        metric = args.metric
    return xb, xq, gt, metric


def timed_search(index, xq, k, batch, repeats):
    """(QPS of the fastest of `repeats` searches of xq in batches, the ids)."""
    best, parts = best_of(lambda: [index.search(xq[i:i + batch], k)[1] for i in range(0, len(xq), batch)], repeats,
                          warmup=False)
    return len(xq) / best, (None if parts is None else np.vstack(parts))


def build(lib, kind, d, nlist, metric):
    m = lib.METRIC_INNER_PRODUCT if metric == "ip" else lib.METRIC_L2
    q = lib.IndexFlatIP(d) if metric == "ip" else lib.IndexFlatL2(d)
    if kind == "flat":
        idx = lib.IndexIVFFlat(q, d, nlist, m)
    elif kind == "sq8":
        idx = lib.IndexIVFScalarQuantizer(q, d, nlist, lib.ScalarQuantizer.QT_8bit, m)
    elif kind == "fp16":
        idx = lib.IndexIVFScalarQuantizer(q, d, nlist, lib.ScalarQuantizer.QT_fp16, m)
    else:
        raise SystemExit(f"unknown index kind {kind}")
    return idx, q


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=["wordnet", "synthetic"], default="wordnet")
    ap.add_argument("--metric", choices=["l2", "ip"], default="l2", help="synthetic data only (wordnet: ip)")
    ap.add_argument("--dim", type=int, default=128, help="synthetic dimension")
    ap.add_argument("--nb", type=int, default=0, help="base size (0: all / 100k synthetic)")
    ap.add_argument("--nq", type=int, default=0, help="queries (0: all / 2000 synthetic)")
    ap.add_argument("--index", choices=["flat", "sq8", "fp16"], default="flat")
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--nprobe", default="1,2,4,8,16,32,64")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--same-centroids", action="store_true",
                    help="train Faiss only and give annvil the same coarse centroids")
    args = ap.parse_args()

    import faiss
    import annvil

    faiss.omp_set_num_threads(args.threads)
    annvil.omp_set_num_threads(args.threads)
    xb, xq, gt, metric = load(args)
    d = xb.shape[1]
    if gt is None:
        ex = faiss.IndexFlatIP(d) if metric == "ip" else faiss.IndexFlatL2(d)
        ex.add(xb)
        gt = ex.search(xq, args.k)[1]
    print(f"data={args.data} nb={len(xb)} nq={len(xq)} d={d} metric={metric} index=IVF{args.nlist},{args.index} "
          f"threads={args.threads} batch={args.batch} k={args.k} simd={annvil.simd_level()}")

    res = {}
    for name, lib in (("faiss", faiss), ("annvil", annvil)):
        idx, q = build(lib, args.index, d, args.nlist, metric)
        t0 = time.perf_counter()
        if name == "annvil" and args.same_centroids:
            q.add(res["faiss"]["centroids"])
        idx.train(xb)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        idx.add(xb)
        t_add = time.perf_counter() - t0
        if name == "faiss":
            cents = idx.quantizer.reconstruct_n(0, args.nlist)
            bpv = (idx.code_size + 8)  # codes + int64 id per vector (lists' own overhead excluded)
        else:
            cents = None
            bpv = (idx.memory_usage() - q.memory_usage()) / idx.ntotal
        curve = []
        for npb in [int(v) for v in args.nprobe.split(",")]:
            idx.nprobe = npb
            qps, I = timed_search(idx, xq, args.k, args.batch, args.repeats)
            curve.append((npb, intersection_recall(I, gt, args.k), qps))
        res[name] = dict(train=t_train, add=t_add, bpv=bpv, curve=curve, centroids=cents)

    f, a = res["faiss"], res["annvil"]
    print(f"train+add s: faiss {f['train']:.2f}+{f['add']:.2f}  annvil {a['train']:.2f}+{a['add']:.2f}  "
          f"ratio {(f['train'] + f['add']) / (a['train'] + a['add']):.2f}x")
    print(f"bytes/vector: faiss {f['bpv']:.1f}  annvil {a['bpv']:.1f}")
    frec = np.array([c[1] for c in f["curve"]])
    fqps = np.array([c[2] for c in f["curve"]])
    order = np.argsort(frec)
    print(f"{'nprobe':>6} {'R@k faiss':>9} {'R@k annvil':>10} {'QPS faiss':>10} {'QPS annvil':>10} "
          f"{'ratio':>6} {'ratio@eqR':>9}")
    for (npb, fr, fq), (_, ar, aq) in zip(f["curve"], a["curve"]):
        if frec.min() <= ar <= frec.max():
            f_at = float(np.exp(np.interp(ar, frec[order], np.log(fqps[order]))))
            eq = f"{aq / f_at:9.2f}"
        else:
            eq = f"{'-':>9}"
        print(f"{npb:6d} {fr:9.4f} {ar:10.4f} {fq:10.0f} {aq:10.0f} {aq / fq:6.2f} {eq}")


if __name__ == "__main__":
    main()
