"""Train + add time of IVF indexes: annvil against Faiss, same run, same threads.

    python bench/bench_train.py [--threads 1] [--configs "IVF1024,Flat;IVF1024,PQ48"]
Also prints recall@10 at nprobe 32 (no refine) so equal quality can be checked.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_wordnet, set_faiss_coretype  # noqa: E402

set_faiss_coretype()
import faiss  # noqa: E402

import annvil  # noqa: E402
from annvil.eval import intersection_recall  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--configs", default="IVF1024,Flat;IVF1024,SQ8;IVF1024,PQ96x4fs;IVF1024,PQ48")
    args = ap.parse_args()
    xb, xq, gt = load_wordnet()
    annvil.omp_set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    for desc in args.configs.split(";"):
        out = {}
        for name, mod in [("annvil", annvil), ("faiss", faiss)]:
            index = mod.index_factory(xb.shape[1], desc, mod.METRIC_INNER_PRODUCT)
            t0 = time.perf_counter()
            index.train(xb)
            index.add(xb)
            elapsed = time.perf_counter() - t0
            mod.ParameterSpace().set_index_parameter(index, "nprobe", 32)
            _, I = index.search(xq, 10)
            out[name] = (elapsed, intersection_recall(I, gt, 10))
        (ta, ra), (tf, rf) = out["annvil"], out["faiss"]
        print(f"{desc:18s} train+add annvil {ta:6.2f} s (R@10 {ra:.3f}) | faiss {tf:6.2f} s (R@10 {rf:.3f}) | "
              f"{tf / ta:.2f}x", flush=True)


if __name__ == "__main__":
    main()
