"""IVF-PQ: annvil against Faiss on wordnet-minilm-384 (inner product), same run,
same threads.

    python bench/bench_ivfpq.py                       # IVF1024,PQ48 and IVF1024,PQ96x4fs, + RFlat sweeps
    python bench/bench_ivfpq.py --family pq --nprobe 16,32 --kfactor 0,4,8
    python bench/bench_ivfpq.py --quick               # fewer configurations

For each family: train+add time, serialized bytes per vector, then a sweep
over nprobe x k_factor (k_factor 0: the bare IVF index; >= 1: IndexRefineFlat
around it) printing recall@10 and QPS (best of --repeats, batch --nq) for
both libraries and their ratio; finally, per recall target, the best QPS each
library reaches and the ratio.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from common import WORDNET, set_faiss_coretype  # noqa: E402

set_faiss_coretype()  # before faiss is imported (SkylakeX only where AVX-512 exists)

import faiss  # noqa: E402
import numpy as np  # noqa: E402

import annvil  # noqa: E402
from annvil.eval import best_of, intersection_recall  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/wordnet-minilm-384")


def load(path):
    xb = np.load(path / "train.f16.npy").astype(np.float32)
    xq = np.load(path / "test.f16.npy").astype(np.float32)
    gt = np.load(path / "neighbors.i32.npy").astype(np.int64)
    return xb, xq, gt


CLOCK = time.perf_counter


def build(family, xb, nlist, M, metric):
    d = xb.shape[1]
    flat = annvil.IndexFlatL2 if metric == annvil.METRIC_L2 else annvil.IndexFlatIP
    if family == "pq":
        ours = annvil.IndexIVFPQ(flat(d), d, nlist, M, 8, metric)
        ref = faiss.index_factory(d, f"IVF{nlist},PQ{M}", metric)
        name = f"IVF{nlist},PQ{M}"
    else:
        ours = annvil.IndexIVFPQFastScan(flat(d), d, nlist, M, 4, metric)
        ref = faiss.index_factory(d, f"IVF{nlist},PQ{M}x4fs", metric)
        name = f"IVF{nlist},PQ{M}x4fs"
    times = {}
    for lib, idx in (("annvil", ours), ("faiss", ref)):
        t0 = CLOCK()
        idx.train(xb)
        t1 = CLOCK()
        idx.add(xb)
        t2 = CLOCK()
        times[lib] = (t1 - t0, t2 - t1)
    return name, ours, ref, times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA if DEFAULT_DATA.exists() else WORDNET))
    ap.add_argument("--family", default="pq,fs", help="pq (IVF,PQ<M>) and/or fs (IVF,PQ<M>x4fs)")
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--pq-m", type=int, default=48)
    ap.add_argument("--fs-m", type=int, default=96)
    ap.add_argument("--nprobe", default="8,16,32,64")
    ap.add_argument("--kfactor", default="0,1,2,4,8,16", help="0: no refine")
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="nprobe 16,32 and k_factor 0,4,8 only")
    ap.add_argument("--metric", default="ip", choices=["ip", "l2"],
                    help="l2: same data and ground truth (unit vectors: L2 ranks as inner product), "
                         "exercises the L2 precomputed-table path")
    ap.add_argument("--wall", action="store_true",
                    help="time with the wall clock; default with 1 thread: CPU time of the calling thread, which "
                         "equals wall time on an idle machine and is robust on a shared one")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if (args.wall or args.threads > 1) else time.thread_time
    if args.quick:
        args.nprobe, args.kfactor = "16,32", "0,4,8"
    annvil.omp_set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    xb, xq, gt = load(Path(args.data))
    xq = xq[: args.nq]
    gt = gt[: args.nq]
    metric = annvil.METRIC_INNER_PRODUCT if args.metric == "ip" else annvil.METRIC_L2
    nprobes = [int(v) for v in args.nprobe.split(",")]
    kfs = [int(v) for v in args.kfactor.split(",")]
    print(f"wordnet-minilm-384: {xb.shape[0]} x {xb.shape[1]}, {len(xq)} queries, k=10, "
          f"{'inner product' if args.metric == 'ip' else 'L2'}, "
          f"{args.threads} thread(s), annvil SIMD={annvil.simd_level()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, faiss {faiss.__version__}, "
          f"clock={'wall' if CLOCK is time.perf_counter else 'thread CPU time'}")
    for family in args.family.split(","):
        M = args.pq_m if family == "pq" else args.fs_m
        name, ours, ref, times = build(family, xb, args.nlist, M, metric)
        ta, tf = sum(times["annvil"]), sum(times["faiss"])
        bpv = {lib: len(ser(idx)) / idx.ntotal for lib, idx, ser in
               (("annvil", ours, annvil.serialize_index), ("faiss", ref, faiss.serialize_index))}
        print(f"\n== {name} (annvil by_residual={ours.by_residual}, faiss by_residual="
              f"{faiss.extract_index_ivf(ref).by_residual})")
        print(f"train+add: annvil {ta:.2f} s (train {times['annvil'][0]:.2f} + add {times['annvil'][1]:.2f}) | "
              f"faiss {tf:.2f} s (train {times['faiss'][0]:.2f} + add {times['faiss'][1]:.2f}) | "
              f"speed-up {tf / ta:.2f}x")
        print(f"serialized bytes/vector: annvil {bpv['annvil']:.1f} | faiss {bpv['faiss']:.1f}  "
              f"(raw float32: {4 * xb.shape[1]})")
        r_ours = annvil.IndexRefineFlat(ours, xb)
        r_ref = faiss.IndexRefineFlat(ref, faiss.swig_ptr(xb))
        fivf = faiss.extract_index_ivf(ref)
        print(f"{'nprobe':>6} {'kf':>3} | {'recall':>7} {'recall_f':>8} | {'annvil QPS':>10} {'faiss QPS':>10} "
              f"{'ratio':>6}")
        rows = []
        for nprobe in nprobes:
            ours.nprobe = nprobe
            fivf.nprobe = nprobe
            for kf in kfs:
                if kf == 0:
                    a, f = ours, ref
                else:
                    r_ours.k_factor = kf
                    r_ref.k_factor = kf
                    a, f = r_ours, r_ref
                Ia = a.search(xq, 10)[1]
                If = f.search(xq, 10)[1]
                ra, rf = intersection_recall(Ia, gt, 10), intersection_recall(If, gt, 10)
                ta_ = best_of(lambda a=a: a.search(xq, 10), args.repeats, clock=CLOCK)[0]
                tf_ = best_of(lambda f=f: f.search(xq, 10), args.repeats, clock=CLOCK)[0]
                qa, qf = len(xq) / ta_, len(xq) / tf_
                rows.append((nprobe, kf, ra, rf, qa, qf))
                print(f"{nprobe:>6} {kf:>3} | {ra:7.4f} {rf:8.4f} | {qa:10.0f} {qf:10.0f} {qa / qf:6.2f}", flush=True)
        for target in (0.90, 0.95):
            ba = max((r[4] for r in rows if r[2] >= target), default=None)
            bf = max((r[5] for r in rows if r[3] >= target), default=None)
            eq = [r for r in rows if r[3] >= target and r[2] >= target - 0.005]
            msg = f"recall >= {target:.2f}: best annvil {ba or 0:.0f} QPS, best faiss {bf or 0:.0f} QPS"
            if ba and bf:
                msg += f", ratio {ba / bf:.2f}"
            if eq:
                r = max(eq, key=lambda r: r[5])  # faiss's best setting, annvil at the same parameters
                msg += (f"; at faiss's best parameters (nprobe {r[0]}, k_factor {r[1]}): "
                        f"{r[4]:.0f} vs {r[5]:.0f} QPS, ratio {r[4] / r[5]:.2f}")
            print(msg)


if __name__ == "__main__":
    main()
