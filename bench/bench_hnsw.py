"""Benchmark annvil's IndexHNSWFlat against Faiss, hnswlib and usearch.

Data: wordnet-minilm-384 (inner product on unit vectors).  For every M the four
libraries build a graph with the same M / efConstruction and the same number of
threads; then an efSearch sweep prints recall@10 and QPS for each, and the QPS
of each library at recall@10 = --target (linearly interpolated on the sweep),
with annvil's ratio to each peer.  Finally annvil's filtered search at a few
selectivities (recall against exact filtered ground truth).

    OPENBLAS_CORETYPE=SkylakeX PYTHONPATH=python python bench/bench_hnsw.py --n 50000

Compressed storages (IndexHNSWSQ against Faiss's IndexHNSWSQ, same M /
efConstruction / threads; the codec is trained on the base vectors):

    OPENBLAS_CORETYPE=SkylakeX PYTHONPATH=python python bench/bench_hnsw.py --quant --M 32

(--quant is --libs annvil-sq8 faiss-sq8 annvil-sqfp16 faiss-sqfp16 --no-filter;
ratios are then taken between the same storages.  --libs annvil-pq faiss-pq
compares IndexHNSWPQ with 48 x 8-bit codes, in L2: wordnet's vectors have
unit norm, so the L2 neighbours are the inner-product ones, and Faiss's
IndexHNSWPQ builds its graph with L2 (symmetric) distances whatever the
metric, which makes its inner-product graph poor.)

With --threads 1 (the default) times are process CPU time, steadier than wall
time on a shared machine.  Bytes/vector is the serialized size of each library's index divided by n
(vectors + graph), the same measure for all four.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import annvil
from annvil.eval import best_of, intersection_recall

DATA = "/work/shared/data/wordnet-minilm-384"


# With one thread, times are the process's CPU time: on a shared machine that
# is far steadier than wall time (waiting for a core is not counted), and it
# is the same measure for every library.  With more threads: wall time.
CLOCK = time.perf_counter


# ---- the four libraries behind one small interface ---------------------------------
class Annvil:
    name = "annvil"
    allow_f16 = True

    def __init__(self, d, M, efc, threads):
        annvil.omp_set_num_threads(threads)
        self.index = annvil.IndexHNSWFlat(d, M, annvil.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = efc
        self.index.allow_f16 = self.allow_f16

    def build(self, xb):
        self.index.add(xb)

    def search(self, xq, k, ef):
        self.index.hnsw.efSearch = ef
        return self.index.search(xq, k)[1]

    def nbytes(self):
        return annvil.serialize_index(self.index).nbytes


class AnnvilF32(Annvil):
    """annvil with float32 vector storage forced (wordnet's values are all
    exact in half precision, so plain annvil stores them as halves)."""
    name = "annvil-f32"
    allow_f16 = False


class Faiss:
    name = "faiss"

    def __init__(self, d, M, efc, threads):
        import faiss
        self.faiss = faiss
        faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexHNSWFlat(d, M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = efc

    def build(self, xb):
        self.index.add(xb)

    def search(self, xq, k, ef):
        self.index.hnsw.efSearch = ef
        return self.index.search(xq, k)[1]

    def nbytes(self):
        return self.faiss.serialize_index(self.index).nbytes


class Hnswlib:
    name = "hnswlib"

    def __init__(self, d, M, efc, threads):
        import hnswlib
        self.d, self.M, self.efc, self.threads = d, M, efc, threads
        self.index = hnswlib.Index(space="ip", dim=d)

    def build(self, xb):
        self.index.init_index(max_elements=len(xb), ef_construction=self.efc, M=self.M, random_seed=100)
        self.index.add_items(xb, np.arange(len(xb)), num_threads=self.threads)

    def search(self, xq, k, ef):
        self.index.set_ef(ef)
        return self.index.knn_query(xq, k=k, num_threads=self.threads)[0]

    def nbytes(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "h.bin")
            self.index.save_index(p)
            return os.path.getsize(p)


class Usearch:
    name = "usearch"

    def __init__(self, d, M, efc, threads):
        from usearch.index import Index
        self.threads = threads
        self.index = Index(ndim=d, metric="ip", dtype="f32", connectivity=M, expansion_add=efc)

    def build(self, xb):
        self.index.add(np.arange(len(xb)), xb, threads=self.threads)

    def search(self, xq, k, ef):
        self.index.expansion_search = ef
        return self.index.search(xq, k, threads=self.threads).keys

    def nbytes(self):
        return len(self.index.save())


class AnnvilSQ(Annvil):
    """IndexHNSWSQ: vectors stored as SQ codes, distances on the codes."""
    qtype = 0

    def __init__(self, d, M, efc, threads):
        annvil.omp_set_num_threads(threads)
        self.index = annvil.IndexHNSWSQ(d, self.qtype, M, annvil.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = efc

    def build(self, xb):
        self.index.train(xb)
        self.index.add(xb)


class FaissSQ(Faiss):
    qtype = 0

    def __init__(self, d, M, efc, threads):
        import faiss
        self.faiss = faiss
        faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexHNSWSQ(d, self.qtype, M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = efc

    def build(self, xb):
        self.index.train(xb)
        self.index.add(xb)


class AnnvilPQ(Annvil):
    """IndexHNSWPQ: vectors stored as PQ codes (PQ_M x 8 bits), table lookups."""
    name = "annvil-pq"
    pq_m = 48

    def __init__(self, d, M, efc, threads):
        annvil.omp_set_num_threads(threads)
        self.index = annvil.IndexHNSWPQ(d, self.pq_m, M, 8, annvil.METRIC_L2)
        self.index.hnsw.efConstruction = efc

    build = AnnvilSQ.build


class FaissPQ(Faiss):
    name = "faiss-pq"
    pq_m = 48

    def __init__(self, d, M, efc, threads):
        import faiss
        self.faiss = faiss
        faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexHNSWPQ(d, self.pq_m, M, 8, faiss.METRIC_L2)
        self.index.hnsw.efConstruction = efc

    build = FaissSQ.build


def _sq(base, name, qtype):
    return type(base.__name__ + name, (base,), {"name": name, "qtype": qtype})


LIBS = {"annvil": Annvil, "annvil-f32": AnnvilF32, "faiss": Faiss, "hnswlib": Hnswlib, "usearch": Usearch,
        "annvil-sq8": _sq(AnnvilSQ, "annvil-sq8", 0), "faiss-sq8": _sq(FaissSQ, "faiss-sq8", 0),
        "annvil-sqfp16": _sq(AnnvilSQ, "annvil-sqfp16", 4), "faiss-sqfp16": _sq(FaissSQ, "faiss-sqfp16", 4),
        "annvil-pq": AnnvilPQ, "faiss-pq": FaissPQ}
QUANT_LIBS = ["annvil-sq8", "faiss-sq8", "annvil-sqfp16", "faiss-sqfp16"]


def qps_at(points, target):
    """QPS at recall `target`, linear interpolation between sweep points
    (None when the sweep never reaches it)."""
    pts = sorted(points)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 if r1 == r0 else q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    if pts and pts[0][0] >= target:
        return pts[0][1]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--n", type=int, default=0, help="subsample the base to n vectors (0: all)")
    ap.add_argument("--nq", type=int, default=1000, help="number of queries")
    ap.add_argument("--M", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--efc", type=int, default=100, help="efConstruction for every library")
    ap.add_argument("--ef", type=int, nargs="+", default=[16, 24, 32, 48, 64, 96, 128, 192])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--libs", nargs="+", default=list(LIBS))
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per point (best kept)")
    ap.add_argument("--no-filter", action="store_true")
    ap.add_argument("--quant", action="store_true", help="compare IndexHNSWSQ (SQ8, SQfp16) with Faiss's")
    args = ap.parse_args()
    if args.quant:
        args.libs, args.no_filter = QUANT_LIBS, True
    global CLOCK
    CLOCK = time.process_time if args.threads == 1 else time.perf_counter

    xb = np.load(os.path.join(args.data, "train.f16.npy")).astype(np.float32)
    xq = np.load(os.path.join(args.data, "test.f16.npy")).astype(np.float32)[: args.nq]
    k = 10
    if args.n and args.n < len(xb):
        xb = np.ascontiguousarray(xb[: args.n])
        gt = annvil.knn(xq, xb, k, annvil.METRIC_INNER_PRODUCT)[1]
    else:
        gt = np.load(os.path.join(args.data, "neighbors.i32.npy"))[: args.nq, :k]
    n, d = xb.shape
    print(f"wordnet-minilm-384: n={n} d={d} nq={len(xq)} k={k} threads={args.threads} "
          f"efConstruction={args.efc} simd={annvil.simd_level()} "
          f"clock={'process CPU time' if args.threads == 1 else 'wall time'}")

    for M in args.M:
        print(f"\n== M={M} ==")
        print(f"{'library':<10} {'build s':>8} {'bytes/vec':>10}")
        curves, builds, sizes, built = {}, {}, {}, {}
        for name in args.libs:
            lib = LIBS[name](d, M, args.efc, args.threads)
            t = CLOCK()
            lib.build(xb)
            builds[name] = CLOCK() - t
            sizes[name] = lib.nbytes() / n
            built[name] = lib
            print(f"{name:<10} {builds[name]:8.2f} {sizes[name]:10.1f}")
        print(f"\n{'efSearch':>8} " + " ".join(f"{nm + ' R@10':>13} {nm + ' QPS':>12}" for nm in args.libs))
        for ef in args.ef:
            row = f"{ef:8d} "
            for name in args.libs:
                dt, I = best_of(lambda built=built, name=name, ef=ef: built[name].search(xq, k, ef), args.repeat,
                                clock=CLOCK)
                r, q = intersection_recall(np.asarray(I), gt, k), len(xq) / dt
                curves.setdefault(name, []).append((r, q))
                row += f"{r:13.4f} {q:12.0f} "
            print(row)
        print(f"\nat recall@10 = {args.target}:")
        for name in args.libs:
            q = qps_at(curves[name], args.target)
            print(f"  {name:<10} QPS {q:10.0f}" if q else f"  {name:<10} QPS        n/a")
        for ours_name in [nm for nm in args.libs if nm.startswith("annvil")]:
            ours = qps_at(curves[ours_name], args.target)
            suffix = ours_name[len("annvil"):]
            # a compressed storage is compared with the same storage only
            peers = [nm for nm in args.libs if not nm.startswith("annvil") and
                     (nm.endswith(suffix) if suffix.startswith(("-sq", "-pq"))
                      else "-sq" not in nm and "-pq" not in nm)]
            for name in peers:
                q = qps_at(curves[name], args.target)
                if q and ours:
                    print(f"  {ours_name}/{name}: QPS x{ours / q:.2f}, build time "
                          f"x{builds[ours_name] / builds[name]:.2f}, bytes/vec x{sizes[ours_name] / sizes[name]:.2f}")

        if "annvil" in built and not args.no_filter:
            idx = built["annvil"].index
            # the smallest swept efSearch reaching the target unfiltered
            ef = next((e for e, (r, _) in zip(args.ef, curves["annvil"]) if r >= args.target), args.ef[-1])
            print(f"\nannvil filtered search (efSearch={ef}; recall vs exact filtered truth):")
            rng = np.random.default_rng(0)
            for frac in [0.01, 0.1, 0.5]:
                mask = rng.random(n) < frac
                allowed = np.flatnonzero(mask)
                gtf = allowed[annvil.knn(xq, xb[allowed], k, annvil.METRIC_INNER_PRODUCT)[1]]
                params = annvil.SearchParametersHNSW(efSearch=ef, sel=mask)
                dt, (_, I) = best_of(lambda idx=idx, params=params: idx.search(xq, k, params=params), args.repeat,
                                     clock=CLOCK)
                print(f"  selectivity {frac:5.0%}: recall@10 {intersection_recall(I, gtf, k):.4f}  "
                      f"QPS {len(xq) / dt:10.0f}")


if __name__ == "__main__":
    main()
