"""Benchmark annvil's IndexQG against the best Faiss configurations, hnswlib and usearch.

Data: wordnet-minilm-384 (117,659 x 384 unit vectors, inner product).  Every
contender is searched single-threaded over a parameter sweep; the sweeps are
timed interleaved (each round visits every configuration of every library
once, rounds repeat --reps times, the median is kept), with process CPU time
(steadier than wall time on a shared machine).  Printed: recall@10 and QPS of
every configuration, then per library the best QPS reaching recall@10 0.90 /
0.95 / 0.99 with its parameters, annvil's ratio to each peer, build time
(--build-threads threads) and bytes per vector (serialized size / n).

    OPENBLAS_CORETYPE=SkylakeX PYTHONPATH=python python bench/bench_qg.py

Built indexes are cached in --cache (default /tmp/annvil_bench_qg) so that
reruns only search; --rebuild forces building (and timing) again.

Faiss: IVF1024,PQ192x4fs,RFlat swept over nprobe (16..512) x k_factor (2, 4, 8; 16 was never
best), HNSW32 (Flat)
and HNSW32,SQ8 swept over efSearch (efConstruction 40, Faiss's default).
hnswlib / usearch: M = 32 (connectivity 32), ef_construction 200 / 128
(their usual settings), swept over ef / expansion_search.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_wordnet, set_faiss_coretype  # noqa: E402

set_faiss_coretype()

import annvil  # noqa: E402
from annvil.eval import intersection_recall  # noqa: E402

TARGETS = (0.90, 0.95, 0.99)
CLOCK = time.process_time


class Contender:
    """One library's index and its sweep: search(p) -> I for each parameter p."""

    def __init__(self, lib, name, params, search, build_s, nbytes):
        self.lib, self.name, self.params, self.search = lib, name, params, search
        self.build_s, self.nbytes = build_s, nbytes
        self.times = {p: [] for p in params}
        self.recall = {}


def cached(cache, key, build, save, load, rebuild):
    """Build (timed) or load an index; returns (index, build seconds)."""
    path = cache / f"{key}.idx"
    meta = cache / f"{key}.json"
    if path.exists() and meta.exists() and not rebuild:
        return load(str(path)), json.loads(meta.read_text())["build_s"]
    t = time.perf_counter()
    index = build()
    build_s = time.perf_counter() - t
    save(index, str(path))
    meta.write_text(json.dumps({"build_s": build_s}))
    return index, build_s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nq", type=int, default=1000, help="queries (of 2000)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--build-threads", type=int, default=2)
    ap.add_argument("--cache", default="/tmp/annvil_bench_qg")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--qg", nargs="*", default=["QG64,PQ96x4:100"],
                    help="annvil factory strings, optionally ':efConstruction'")
    ap.add_argument("--libs", nargs="*", default=["annvil", "faiss-ivfpqfs", "faiss-hnsw", "faiss-hnswsq8",
                                                   "hnswlib", "usearch"])
    ap.add_argument("--ef", type=int, nargs="*",
                    default=[16, 20, 24, 32, 40, 48, 56, 64, 72, 80, 96, 112, 128, 160, 200, 256])
    args = ap.parse_args()

    import faiss

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    xb, xq, gt = load_wordnet()
    xq, gt = xq[: args.nq], gt[: args.nq, :10]
    n, d = xb.shape
    k = 10
    conts = []

    def nbytes_of(path):
        return os.path.getsize(path) / n

    annvil.omp_set_num_threads(args.build_threads)
    faiss.omp_set_num_threads(args.build_threads)

    if "annvil" in args.libs:
        for spec in args.qg:
            desc, _, efc = spec.partition(":")
            efc = int(efc or 40)
            key = f"annvil_{desc.replace(',', '_')}_efc{efc}"

            def build(desc=desc, efc=efc):
                ix = annvil.index_factory(d, desc, annvil.METRIC_INNER_PRODUCT)
                ix.hnsw.efConstruction = efc
                ix.train(xb)
                ix.add(xb)
                return ix

            ix, bs = cached(cache, key, build, annvil.write_index, annvil.read_index, args.rebuild)

            def search(ef, ix=ix):
                return ix.search(xq, k, params=annvil.SearchParametersQG(efSearch=ef))[1]

            conts.append(Contender("annvil", f"{desc} efC={efc}", [e for e in args.ef], search, bs,
                                   nbytes_of(cache / f"{key}.idx")))

    if "faiss-ivfpqfs" in args.libs:
        key = "faiss_IVF1024_PQ192x4fs_RFlat"

        def build():
            ix = faiss.index_factory(d, "IVF1024,PQ192x4fs,RFlat", faiss.METRIC_INNER_PRODUCT)
            ix.train(xb)
            ix.add(xb)
            return ix

        ix, bs = cached(cache, key, build, faiss.write_index, faiss.read_index, args.rebuild)
        ivf = faiss.extract_index_ivf(ix)
        params = [(p, kf) for p in (16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 112, 128, 160, 192, 256, 384, 512)
                  for kf in (2, 4, 8)]

        def search(p, ix=ix, ivf=ivf):
            ivf.nprobe = p[0]
            ix.k_factor = p[1]
            return ix.search(xq, k)[1]

        conts.append(Contender("faiss", "IVF1024,PQ192x4fs,RFlat", params, search, bs,
                               nbytes_of(cache / f"{key}.idx")))

    for lib, desc in (("faiss-hnsw", "HNSW32"), ("faiss-hnswsq8", "HNSW32,SQ8")):
        if lib not in args.libs:
            continue
        key = "faiss_" + desc.replace(",", "_")

        def build(desc=desc):
            ix = faiss.index_factory(d, desc, faiss.METRIC_INNER_PRODUCT)
            ix.train(xb)
            ix.add(xb)
            return ix

        ix, bs = cached(cache, key, build, faiss.write_index, faiss.read_index, args.rebuild)

        def search(ef, ix=ix):
            return ix.search(xq, k, params=faiss.SearchParametersHNSW(efSearch=ef))[1]

        conts.append(Contender("faiss", desc, list(args.ef), search, bs, nbytes_of(cache / f"{key}.idx")))

    if "hnswlib" in args.libs:
        import hnswlib

        path = cache / "hnswlib_M32_efc200.idx"
        meta = cache / "hnswlib_M32_efc200.json"
        p = hnswlib.Index(space="ip", dim=d)
        if path.exists() and meta.exists() and not args.rebuild:
            p.load_index(str(path), max_elements=n)
            bs = json.loads(meta.read_text())["build_s"]
        else:
            t = time.perf_counter()
            p.init_index(max_elements=n, M=32, ef_construction=200, random_seed=1)
            p.set_num_threads(args.build_threads)
            p.add_items(xb)
            bs = time.perf_counter() - t
            p.save_index(str(path))
            meta.write_text(json.dumps({"build_s": bs}))
        p.set_num_threads(1)

        def search(ef, p=p):
            p.set_ef(max(ef, k))
            return p.knn_query(xq, k=k, num_threads=1)[0].astype(np.int64)

        conts.append(Contender("hnswlib", "M=32 efC=200", list(args.ef), search, bs, nbytes_of(path)))

    if "usearch" in args.libs:
        from usearch.index import Index as UIndex

        path = cache / "usearch_c32_f16.idx"
        meta = cache / "usearch_c32_f16.json"
        u = UIndex(ndim=d, metric="ip", dtype="f16", connectivity=32, expansion_add=128)
        if path.exists() and meta.exists() and not args.rebuild:
            u.load(str(path))
            bs = json.loads(meta.read_text())["build_s"]
        else:
            t = time.perf_counter()
            u.add(np.arange(n), xb, threads=args.build_threads)
            bs = time.perf_counter() - t
            u.save(str(path))
            meta.write_text(json.dumps({"build_s": bs}))

        def search(ef, u=u):
            u.expansion_search = max(ef, k)
            return u.search(xq, k, threads=1).keys.astype(np.int64)

        conts.append(Contender("usearch", "f16 connectivity=32", list(args.ef), search, bs, nbytes_of(path)))

    annvil.omp_set_num_threads(1)
    faiss.omp_set_num_threads(1)

    # warm-up + recall, then interleaved timing rounds
    for c in conts:
        for p in c.params:
            c.recall[p] = intersection_recall(c.search(p), gt, k)
    for _r in range(args.reps):
        for c in conts:
            for p in c.params:
                if c.recall[p] < TARGETS[0] - 0.05:
                    continue  # too far below every target to matter
                t = CLOCK()
                c.search(p)
                c.times[p].append(CLOCK() - t)
    nq = len(xq)

    def qps(c, p):
        return nq / float(np.median(c.times[p])) if c.times[p] else 0.0

    print(f"wordnet-minilm-384: n={n} d={d} nq={nq} k={k}, 1 search thread, {args.reps} interleaved rounds "
          f"(process CPU time, median)")
    for c in conts:
        print(f"\n{c.lib} {c.name}: build {c.build_s:.1f} s ({args.build_threads} threads), "
              f"{c.nbytes:.0f} bytes/vector")
        for p in c.params:
            if c.times[p]:
                print(f"  {str(p):>10}  recall@10 {c.recall[p]:.4f}  QPS {qps(c, p):8.0f}")

    def best(c, target):
        got = [(qps(c, p), p) for p in c.params if c.times[p] and c.recall[p] >= target]
        return max(got) if got else (0.0, None)

    print("\nbest QPS at recall@10 >= target (parameters), annvil / peer ratio")
    libs = sorted({c.lib for c in conts}, key=lambda s: (s != "annvil", s))
    header = f"{'target':>7}  " + "  ".join(f"{lib:>28}" for lib in libs)
    print(header)
    for t in TARGETS:
        row, per = [], {}
        for lib in libs:
            cands = [(best(c, t), c.name) for c in conts if c.lib == lib]
            (q, p), name = max(cands, key=lambda z: z[0][0])
            per[lib] = q
            row.append(f"{q:8.0f} ({name} {p})"[:28].rjust(28))
        print(f"{t:>7.2f}  " + "  ".join(row))
        if per.get("annvil"):
            ratios = ", ".join(f"{lib} {per['annvil'] / per[lib]:.2f}x" for lib in libs
                               if lib != "annvil" and per[lib] > 0)
            print(f"         annvil / peer: {ratios}")


if __name__ == "__main__":
    main()
