"""Reading a large Faiss IVF-PQ file: annvil.read_index (plain and with
IO_FLAG_MMAP) against faiss.read_index on the same file, interleaved, median
of --reps runs.  The file is built quickly: a trained IndexIVFPQ whose lists
are filled with random codes and ids (add_entries), written by faiss-cpu.

    python bench/bench_faiss_io.py --mb 250 --threads 1

prints each reader's median seconds, MB/s and the ratio faiss / annvil.
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import annvil
import faiss


def build_file(path, mb, d=64, nlist=1024, M=16, seed=0, by_residual=True):
    rs = np.random.RandomState(seed)
    xt = rs.randn(20000, d).astype("float32")
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFPQ(quantizer, d, nlist, M, 8)
    index.by_residual = by_residual
    index.cp.niter = 4
    index.pq.cp.niter = 4
    index.train(xt)
    per_vec = M + 8  # code bytes + id
    n = int(mb * 1e6) // per_vec
    per_list = n // nlist
    codes = rs.randint(0, 256, (per_list, M), dtype=np.uint8)
    for l in range(nlist):
        ids = np.arange(l * per_list, (l + 1) * per_list, dtype="int64")
        index.invlists.add_entries(l, per_list, faiss.swig_ptr(ids), faiss.swig_ptr(codes))
    index.ntotal = per_list * nlist
    faiss.write_index(index, path)
    return index.ntotal


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=250, help="file size in MB (codes + ids)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--path", default=None, help="reuse / keep the file here")
    ap.add_argument("--no-residual", action="store_true",
                    help="by_residual=False (no precomputed table: annvil then builds no per-vector terms)")
    args = ap.parse_args()
    faiss.omp_set_num_threads(args.threads)
    annvil.omp_set_num_threads(args.threads)
    tag = "_nores" if args.no_residual else ""
    path = args.path or os.path.join(tempfile.gettempdir(), f"bench_faiss_ivfpq_{int(args.mb)}mb{tag}.index")
    if not os.path.exists(path):
        t, n = timed(lambda: build_file(path, args.mb, by_residual=not args.no_residual))
        print(f"built {path}: {n} vectors in {t:.1f} s")
    size_mb = os.path.getsize(path) / 1e6
    print(f"file {path}: {size_mb:.1f} MB, threads {args.threads}")

    # check once that both give the same results
    fi = faiss.read_index(path)
    ai = annvil.read_index(path)
    xq = np.random.RandomState(1).randn(10, fi.d).astype("float32")
    fi.nprobe = ai.nprobe = 8
    D0, I0 = fi.search(xq, 10)
    D1, I1 = ai.search(xq, 10)
    print(f"same ids: {np.mean(I0 == I1):.3f}, max |dD|: {np.abs(D0 - D1).max():.2e}")
    del fi, ai

    readers = {
        "faiss.read_index": lambda: faiss.read_index(path),
        "annvil.read_index": lambda: annvil.read_index(path),
        "annvil.read_index(IO_FLAG_MMAP)": lambda: annvil.read_index(path, annvil.IO_FLAG_MMAP),
    }
    times = {k: [] for k in readers}
    for _ in range(args.reps):  # interleaved
        for name, fn in readers.items():
            t, idx = timed(fn)
            times[name].append(t)
            del idx
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, t in med.items():
        print(f"{k:34s} {t:8.3f} s  {size_mb / t:8.0f} MB/s   faiss/this = {med['faiss.read_index'] / t:5.2f}")


if __name__ == "__main__":
    main()
