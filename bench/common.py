"""Shared benchmark plumbing: datasets, timing, Faiss at its best."""
import os
from pathlib import Path

import numpy as np

WORDNET = Path(os.environ.get("ANNVIL_WORDNET", Path(__file__).resolve().parents[1].parent / "shared" / "data"
                              / "wordnet-minilm-384"))
PEAK_GFLOPS_PER_CORE = 268.0  # float32 FMA with AVX-512, measured on the dev machine


def set_faiss_coretype(default="SkylakeX"):
    """Faiss's bundled OpenBLAS misdetects some CPUs: pick its kernel explicitly
    (must happen before faiss is imported).  Benchmarks only, never tests."""
    if "OPENBLAS_CORETYPE" not in os.environ:
        flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        os.environ["OPENBLAS_CORETYPE"] = default if "avx512f" in flags else "Haswell"
    return os.environ["OPENBLAS_CORETYPE"]


def load_wordnet(n=None):
    xb = np.load(WORDNET / "train.f16.npy").astype(np.float32)
    xq = np.load(WORDNET / "test.f16.npy").astype(np.float32)
    gt = np.load(WORDNET / "neighbors.i32.npy").astype(np.int64)
    if n is not None and n < len(xb):
        xb = xb[:n]
        gt = None
    return xb, xq, gt


def random_data(n, d, nq, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d), dtype=np.float32), rng.standard_normal((nq, d), dtype=np.float32)
