"""Benchmark datasets: readers for ann-benchmarks HDF5 files, TEXMEX
.fvecs/.bvecs/.ivecs, annvil's .npy directory layout, and seeded synthetic
sets; ground truth computed with annvil.knn and cached when absent.

    ds = load_dataset("synthetic-clustered-20k-96")
    ds = load_dataset("/data/glove-100-angular.hdf5")
    ds = load_dataset("/work/shared/data/wordnet-minilm-384", n_train=20000)
    xb, xq, gt = ds.train, ds.test, ds.ground_truth(10)
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .._core import InvalidArgumentError

__all__ = ["Dataset", "load_dataset", "read_fvecs", "read_bvecs", "read_ivecs", "write_fvecs",
           "write_ivecs", "write_bvecs", "synthetic", "SYNTHETIC_HELP"]

# metric names: ann-benchmarks' and ours -> 'l2' | 'ip' | 'angular'
_METRICS = {"euclidean": "l2", "l2": "l2", "sqeuclidean": "l2", "angular": "angular", "cosine": "angular",
            "ip": "ip", "dot": "ip", "inner_product": "ip"}

SYNTHETIC_HELP = ("synthetic-{text|clustered|gaussian}-{n}-{d}[-{nq}q][-ip|-angular|-l2], n like 20000 or 20k, "
                  "e.g. synthetic-text-50k-384 (the default of `annvil bench`) or synthetic-clustered-20k-96")


def _metric_name(m):
    if m is None:
        return None
    key = m.decode() if isinstance(m, bytes) else str(m)
    try:
        return _METRICS[key.lower()]
    except KeyError:
        raise InvalidArgumentError(
            f"unsupported dataset metric '{key}'; annvil handles {sorted(set(_METRICS))}") from None


@dataclass
class Dataset:
    """Base vectors (train), queries (test), optional true neighbours and
    their distances, and the metric ('l2', 'ip' or 'angular': inner product
    on normalised vectors)."""

    name: str
    train: np.ndarray
    test: np.ndarray
    metric: str = "l2"
    neighbors: np.ndarray | None = None
    distances: np.ndarray | None = None
    cache_dir: str | None = None
    source: str = ""
    _gt_cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.train = _as_f32(self.train, "train")
        self.test = _as_f32(self.test, "test")
        if self.train.shape[1] != self.test.shape[1]:
            raise InvalidArgumentError(
                f"dataset '{self.name}': train has dimension {self.train.shape[1]} but test has "
                f"{self.test.shape[1]}")
        if self.neighbors is not None:
            nb = np.asarray(self.neighbors)
            if nb.ndim != 2 or nb.shape[0] != self.test.shape[0]:
                raise InvalidArgumentError(
                    f"dataset '{self.name}': neighbors has shape {nb.shape}, expected ({self.test.shape[0]}, k) "
                    "(one row per test vector)")
            if nb.size and (nb.max() >= self.train.shape[0] or nb.min() < -1):
                raise InvalidArgumentError(
                    f"dataset '{self.name}': neighbors holds ids outside [0, {self.train.shape[0]})")
            self.neighbors = nb.astype(np.int64, copy=False)
        if self.metric == "angular":
            self.train = _normalized(self.train)
            self.test = _normalized(self.test)

    @property
    def d(self):
        return self.train.shape[1]

    @property
    def metric_type(self):
        from .. import METRIC_INNER_PRODUCT, METRIC_L2

        return METRIC_L2 if self.metric == "l2" else METRIC_INNER_PRODUCT

    def ground_truth(self, k: int, progress: Callable[[str], object] | None = None) -> np.ndarray:
        """(nq, k) int64 ids of the true k nearest train vectors of each test
        vector: the stored neighbours when they cover k, else computed with
        annvil.knn (cached on disk under cache_dir)."""
        if self.neighbors is not None and self.neighbors.shape[1] >= k:
            return self.neighbors[:, :k]
        if k in self._gt_cache:
            return self._gt_cache[k]
        path = None
        if self.cache_dir:
            h = hashlib.sha1()
            for a in (self.train, self.test):
                h.update(str(a.shape).encode())
                h.update(np.ascontiguousarray(a[:: max(1, a.shape[0] // 256)]).tobytes())
            h.update(f"{self.metric}/{k}".encode())
            path = os.path.join(self.cache_dir, f"gt-{_slug(self.name)}-{h.hexdigest()[:16]}-k{k}.npy")
            if os.path.exists(path):
                gt = np.load(path)
                if gt.shape == (self.test.shape[0], k):
                    self._gt_cache[k] = gt
                    return gt
        from .. import knn

        if progress:
            progress(f"ground truth for {self.name} (k={k})")
        gt = np.empty((self.test.shape[0], k), dtype=np.int64)
        step = 1024
        for i in range(0, self.test.shape[0], step):
            gt[i:i + step] = knn(self.test[i:i + step], self.train, k, self.metric_type)[1]
        if path:
            os.makedirs(self.cache_dir, exist_ok=True)
            tmp = path + f".{os.getpid()}.tmp.npy"
            np.save(tmp, gt)
            os.replace(tmp, path)
        self._gt_cache[k] = gt
        return gt

    def subsample(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Dataset:
        """A smaller copy: the first n_test queries and a seeded random sample
        of n_train base vectors (true neighbours are then recomputed)."""
        train, neighbors, distances = self.train, self.neighbors, self.distances
        name = self.name
        if n_train is not None and n_train < train.shape[0]:
            sel = np.sort(np.random.default_rng(seed).choice(train.shape[0], int(n_train), replace=False))
            train = train[sel]
            neighbors = distances = None
            name += f"-n{n_train}"
        test = self.test
        if n_test is not None and n_test < test.shape[0]:
            test = test[: int(n_test)]
            if neighbors is not None:
                neighbors = neighbors[: int(n_test)]
                distances = None if distances is None else distances[: int(n_test)]
            name += f"-q{n_test}"
        return Dataset(name, train, test, self.metric, neighbors, distances, self.cache_dir, self.source)

    def describe(self) -> str:
        return (f"{self.name}: {self.train.shape[0]} x {self.d} base, {self.test.shape[0]} queries, "
                f"metric {self.metric}")


def _slug(s):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:60]


def _as_f32(a, what):
    a = np.asarray(a)
    if a.ndim != 2:
        raise InvalidArgumentError(f"{what} vectors must be a 2-D array, got shape {a.shape}")
    if a.dtype.kind not in "fiu":
        raise InvalidArgumentError(f"{what} vectors must be numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _normalized(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1
    return np.ascontiguousarray(x / n, dtype=np.float32)


# ---- TEXMEX vecs files: each vector is an int32 dimension then d values ------------
def _read_vecs(path, value_dtype, mmap):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: '{path}'")
    itemsize = np.dtype(value_dtype).itemsize
    raw = np.memmap(path, dtype=np.uint8, mode="r") if mmap else np.fromfile(path, dtype=np.uint8)
    if raw.size == 0:
        return np.zeros((0, 0), dtype=value_dtype)
    if raw.size < 4:
        raise InvalidArgumentError(f"'{path}' is truncated (less than one header)")
    d = int(raw[:4].view(np.int32)[0])
    if d <= 0 or d > 1 << 20:
        raise InvalidArgumentError(f"'{path}': bad vector dimension {d} in the first header")
    rec = 4 + d * itemsize
    if raw.size % rec != 0:
        raise InvalidArgumentError(
            f"'{path}': size {raw.size} is not a multiple of the record size {rec} (d={d}); "
            "the file is truncated or has mixed dimensions")
    rows = raw.reshape(-1, rec)
    dims = np.ascontiguousarray(rows[:, :4]).view(np.int32).ravel()
    if np.any(dims != d):
        bad = int(np.argmax(dims != d))
        raise InvalidArgumentError(f"'{path}': vector {bad} has dimension {dims[bad]}, the first has {d}")
    return np.ascontiguousarray(rows[:, 4:]).view(value_dtype).reshape(-1, d)


def read_fvecs(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """float32 (n, d) from a .fvecs file."""
    return _read_vecs(path, np.float32, mmap)


def read_ivecs(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """int32 (n, d) from a .ivecs file (ground-truth ids)."""
    return _read_vecs(path, np.int32, mmap)


def read_bvecs(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """uint8 (n, d) from a .bvecs file."""
    return _read_vecs(path, np.uint8, mmap)


def _write_vecs(path, x, dtype):
    x = np.ascontiguousarray(x, dtype=dtype)
    n, d = x.shape
    rec = np.empty((n, 4 + d * x.itemsize), dtype=np.uint8)
    rec[:, :4] = np.full((n, 1), d, dtype=np.int32).view(np.uint8)
    rec[:, 4:] = x.view(np.uint8).reshape(n, -1)
    rec.tofile(path)


def write_fvecs(path: str | os.PathLike, x: Any) -> None:
    _write_vecs(path, x, np.float32)


def write_ivecs(path: str | os.PathLike, x: Any) -> None:
    _write_vecs(path, x, np.int32)


def write_bvecs(path: str | os.PathLike, x: Any) -> None:
    _write_vecs(path, x, np.uint8)


def _read_any_vecs(path):
    ext = os.path.splitext(path)[1].lower()
    readers = {".fvecs": read_fvecs, ".bvecs": read_bvecs, ".ivecs": read_ivecs}
    if ext not in readers:
        raise InvalidArgumentError(f"'{path}': expected a .fvecs, .bvecs or .ivecs file")
    return readers[ext](path)


# ---- loaders --------------------------------------------------------------------
def _load_hdf5(path, metric):
    try:
        import h5py
    except ImportError:
        raise ImportError("reading ann-benchmarks .hdf5 files needs h5py: pip install h5py") from None
    with h5py.File(path, "r") as f:
        missing = [k for k in ("train", "test") if k not in f]
        if missing:
            raise InvalidArgumentError(
                f"'{path}' is not an ann-benchmarks file: missing dataset(s) {missing} "
                "(expected train, test, neighbors, distances)")
        m = metric or _metric_name(f.attrs.get("distance", "euclidean"))
        train, test = f["train"][:], f["test"][:]
        neighbors = f["neighbors"][:] if "neighbors" in f else None
        distances = f["distances"][:] if "distances" in f else None
    name = os.path.splitext(os.path.basename(path))[0]
    return Dataset(name, train, test, m, neighbors, distances, source=path)


def _find_one(folder, patterns, what, required=True):
    for pat in patterns:
        hits = sorted(glob.glob(os.path.join(folder, pat)))
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InvalidArgumentError(f"'{folder}': several {what} files match {pat}: {hits}")
    if required:
        raise InvalidArgumentError(f"'{folder}': no {what} file (looked for {', '.join(patterns)})")
    return None


def _load_vecs(path, metric):
    """A base .fvecs/.bvecs file with its query and ground-truth siblings
    (TEXMEX naming: X_base.fvecs, X_query.fvecs, X_groundtruth.ivecs), or a
    directory holding them."""
    if os.path.isdir(path):
        folder = path
        base = _find_one(folder, ["*base.fvecs", "*base.bvecs", "*learn.fvecs"], "base (*_base.fvecs)")
    else:
        folder, base = os.path.dirname(path) or ".", path
    stem = os.path.basename(base)
    ext = os.path.splitext(stem)[1]
    if "base" in stem:
        query = os.path.join(folder, stem.replace("base", "query"))
        gtf = os.path.join(folder, os.path.splitext(stem.replace("base", "groundtruth"))[0] + ".ivecs")
    else:
        query = _find_one(folder, ["*query" + ext], "query")
        gtf = _find_one(folder, ["*groundtruth.ivecs"], "ground truth", required=False)
    if not os.path.exists(query):
        raise InvalidArgumentError(f"'{base}': no query file '{query}' beside it")
    train, test = _read_any_vecs(base), _read_any_vecs(query)
    neighbors = read_ivecs(gtf) if gtf and os.path.exists(gtf) else None
    name = os.path.basename(os.path.normpath(folder)) if os.path.isdir(path) else os.path.splitext(stem)[0]
    return Dataset(name, train, test, metric or "l2", neighbors, None, source=path)


def _load_npy_dir(folder, metric):
    """annvil's layout: train*.npy, test*.npy, optional neighbors*.npy and
    distances*.npy (any dtype suffix, e.g. train.f16.npy), optional
    dataset.json {"metric": ...}.  Without a metric given or stored, it is
    inferred from the stored distances (descending rows: inner product)."""
    train = np.load(_find_one(folder, ["train.npy", "train.*.npy"], "train"), mmap_mode="r")
    test = np.load(_find_one(folder, ["test.npy", "test.*.npy"], "test"), mmap_mode="r")
    nf = _find_one(folder, ["neighbors.npy", "neighbors.*.npy"], "neighbors", required=False)
    df = _find_one(folder, ["distances.npy", "distances.*.npy"], "distances", required=False)
    neighbors = np.load(nf) if nf else None
    distances = np.load(df) if df else None
    meta = os.path.join(folder, "dataset.json")
    if metric is None and os.path.exists(meta):
        with open(meta) as f:
            metric = _metric_name(json.load(f).get("metric"))
    if metric is None and distances is not None and distances.ndim == 2 and distances.shape[1] > 1:
        diffs = np.diff(distances[: min(50, len(distances))].astype(np.float64), axis=1)
        metric = "ip" if np.all(diffs <= 0) and np.any(diffs < 0) else "l2"
    name = os.path.basename(os.path.normpath(folder))
    return Dataset(name, train, test, metric or "l2", neighbors, distances, source=folder)


_RE_SYN = re.compile(r"synthetic-(text|clustered|gaussian)-(\d+)(k|m)?-(\d+)(?:-(\d+)q)?(?:-(ip|angular|l2))?$")


def synthetic(kind: str = "clustered", n: int = 20000, d: int = 96, nq: int = 500, seed: int = 0,
              metric: str = "l2") -> Dataset:
    """Seeded synthetic set.  'text': unit-norm vectors that behave like
    sentence embeddings (see _text_like; meant for inner product);
    'clustered': a mixture of sqrt(n)/2 anisotropic Gaussian clusters (what
    real embeddings look like to an IVF index); 'gaussian': iid normal (the
    hard case)."""
    rng = np.random.default_rng(seed)
    total = n + nq
    if kind == "text":
        x = _text_like(rng, total, d)
    elif kind == "gaussian":
        x = rng.standard_normal((total, d), dtype=np.float32)
    else:
        nc = max(2, int(np.sqrt(n) / 2))
        centers = rng.standard_normal((nc, d), dtype=np.float32) * 4.0
        scales = rng.uniform(0.5, 1.5, size=(nc, d)).astype(np.float32)
        a = rng.integers(nc, size=total)
        x = centers[a] + rng.standard_normal((total, d), dtype=np.float32) * scales[a]
    name = f"synthetic-{kind}-{n}-{d}" + ("" if metric == "l2" else f"-{metric}")
    return Dataset(name, x[:n], x[n:], metric)


def _text_like(rng, total, d, latent=64, noise=0.8):
    """Rows that look like sentence embeddings to an ANN index: topics (a
    two-level mixture: 40 themes, 8 topics each) on a low-dimensional
    subspace (`latent` dims, a decaying spectrum, embedded in d dims by a
    random orthonormal basis), plus isotropic noise of relative norm `noise`
    in all d dims, then normalised to unit length.  Real MiniLM embeddings
    have an intrinsic dimension of a few tens and a nearest-neighbour cosine
    around 0.6-0.8, which this reproduces, so recall curves spread over
    0.8-0.99 instead of saturating at 1.0."""
    r = min(latent, d)
    spectrum = (1.0 + np.arange(r, dtype=np.float32)) ** -0.25
    themes = rng.standard_normal((40, r), dtype=np.float32)
    topics = (themes[np.repeat(np.arange(40), 8)] + 0.7 * rng.standard_normal((320, r), dtype=np.float32)) * spectrum
    a = rng.integers(320, size=total)
    z = topics[a] + rng.standard_normal((total, r), dtype=np.float32) * spectrum
    basis, _ = np.linalg.qr(rng.standard_normal((d, r)).astype(np.float32))
    x = z @ basis.T.astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    x += rng.standard_normal((total, d), dtype=np.float32) * np.float32(noise / np.sqrt(d))
    return _normalized(x)


def load_dataset(spec: str | os.PathLike, *, metric: str | int | None = None, n_train: int | None = None,
                 n_test: int | None = None, seed: int = 0, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset from `spec`: an ann-benchmarks .hdf5 file, a .fvecs /
    .bvecs file (or a TEXMEX directory), a directory in annvil's .npy layout,
    or a synthetic name (SYNTHETIC_HELP).  metric overrides the stored one
    ('l2', 'ip', 'angular'/'cosine').  n_train / n_test subsample (seeded).
    Ground truth missing or invalidated is computed on demand and cached in
    cache_dir (default $ANNVIL_CACHE or ~/.cache/annvil)."""
    metric = _metric_name(metric)
    if cache_dir is None:
        cache_dir = os.environ.get("ANNVIL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "annvil")
    spec = os.fspath(spec)
    m = _RE_SYN.match(spec)
    if m:
        n = int(m.group(2)) * {None: 1, "k": 1000, "m": 1000000}[m.group(3)]
        d, nq = int(m.group(4)), int(m.group(5) or 500)
        if n < 1 or d < 1 or nq < 1:
            raise InvalidArgumentError(f"synthetic dataset '{spec}' needs positive sizes")
        default_metric = "ip" if m.group(1) == "text" else "l2"
        ds = synthetic(m.group(1), n, d, nq, seed, metric or _metric_name(m.group(6) or default_metric))
        ds.name = spec
    elif spec.startswith("synthetic"):
        raise InvalidArgumentError(f"bad synthetic dataset name '{spec}'; expected {SYNTHETIC_HELP}")
    elif not os.path.exists(spec):
        raise FileNotFoundError(
            f"dataset '{spec}' not found: give an existing .hdf5 / .fvecs / .bvecs file, a dataset "
            f"directory, or a synthetic name ({SYNTHETIC_HELP})")
    elif os.path.isdir(spec):
        if glob.glob(os.path.join(spec, "train*.npy")):
            ds = _load_npy_dir(spec, metric)
        else:
            ds = _load_vecs(spec, metric)
    else:
        ext = os.path.splitext(spec)[1].lower()
        if ext in (".hdf5", ".h5"):
            ds = _load_hdf5(spec, metric)
        elif ext in (".fvecs", ".bvecs"):
            ds = _load_vecs(spec, metric)
        else:
            raise InvalidArgumentError(
                f"'{spec}': unknown dataset format '{ext}'; use .hdf5, .fvecs/.bvecs or a directory")
    ds.cache_dir = cache_dir
    if n_train is not None or n_test is not None:
        ds = ds.subsample(n_train, n_test, seed)
    return ds
