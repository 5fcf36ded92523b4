"""The benchmark harness: builds each index configuration with annvil and,
when installed, Faiss (same factory string), hnswlib and usearch (HNSW
configurations; usearch's int8 storage stands for SQ8), in one process with
the same thread count and parameters, and measures recall@k, batch QPS,
single-query latency (p50/p99), build time, add and remove throughput and
bytes per vector for every search-parameter setting.  summarize() gives each
library's best QPS at recall targets and the ratio to annvil's.

The configurations are in configs.py, the libraries in libraries.py, the
tables and files in report.py; the names they export are importable from
here as before."""
from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from .._core import InvalidArgumentError
from ..eval import fastest_of, recall_at_k
from .configs import (  # noqa: F401
    LIBRARIES, TARGETS, IndexConfig, Result, default_configs, family_of, load_toml_config, parse_index_spec,
)
from .libraries import make_libraries
from .report import print_summary, print_table, summarize, write_results  # noqa: F401

if TYPE_CHECKING:
    from .datasets import Dataset

__all__ = ["IndexConfig", "Result", "parse_index_spec", "load_toml_config", "default_configs",
           "run_benchmark", "write_results", "print_table", "summarize", "print_summary", "family_of",
           "LIBRARIES", "TARGETS"]


# ---- measuring ------------------------------------------------------------------
def _batch_time(lib, index, xq, k, min_time=0.2, max_runs=5):
    """(ids, seconds): the fastest of a few runs (eval.fastest_of)."""
    return fastest_of(lambda: lib.search(index, xq, k), min_time=min_time, max_runs=max_runs)


def _latencies(lib, index, xq, k, n):
    lat = np.empty(n)
    for i in range(n):
        q = xq[i:i + 1]
        t0 = time.perf_counter()
        lib.search(index, q, k)
        lat[i] = time.perf_counter() - t0
    return lat * 1e3


class _Progress:
    """rich progress bar when rich is installed, else tqdm, else plain lines."""

    def __init__(self, total, enabled=True):
        self.total, self.enabled, self.bar, self.rich = total, enabled, None, None
        if not enabled:
            return
        try:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.rich = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                 transient=True)
            self.rich.start()
            self.task = self.rich.add_task("benchmark", total=total)
        except ImportError:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc="benchmark")
            except ImportError:
                pass

    def step(self, desc, n=0):
        if self.rich is not None:
            self.rich.update(self.task, description=desc, advance=n)
        elif self.bar is not None:
            self.bar.set_description(desc)
            self.bar.update(n)
        elif self.enabled and desc:
            print(desc, file=sys.stderr)

    def log(self, msg):
        if self.rich is not None:
            self.rich.console.print(msg, markup=False, highlight=False)
        elif self.bar is not None:
            self.bar.write(msg)
        else:
            print(msg, file=sys.stderr)

    def close(self):
        if self.rich is not None:
            self.rich.stop()
        elif self.bar is not None:
            self.bar.close()


def _remove_rate(lib, index, n):
    """ids/s removed from a built index (1% of it, 10..1000 ids), or None when
    the library cannot remove from this kind of index.  Run last: it changes
    the index."""
    ids = np.arange(0, n, max(1, n // max(10, min(1000, n // 100))))[:1000]
    t0 = time.perf_counter()
    try:
        lib.remove(index, ids)
    except Exception:  # Faiss raises RuntimeError for indexes without removal
        return None
    return len(ids) / max(time.perf_counter() - t0, 1e-9)


def run_benchmark(ds: Dataset, configs: Sequence[IndexConfig], *, k: int = 10, libraries: Sequence[str] = LIBRARIES,
                  threads: int | None = None, latency_queries: int = 100, progress: bool = True,
                  log: Callable[[str], object] | None = None) -> list[Result]:
    """Measure every configuration on every library that can run it.
    Returns a list of Result (one per library, configuration and search
    setting).  threads: OpenMP / library threads (default: all cores)."""
    threads = int(threads or os.cpu_count() or 1)
    if k < 1:
        raise InvalidArgumentError(f"k must be at least 1, got {k}")
    if k > ds.train.shape[0]:
        raise InvalidArgumentError(f"k={k} is larger than the dataset ({ds.train.shape[0]} vectors)")
    total = sum(len(c.search) for c in configs) * len(libraries)
    bar = _Progress(total, progress)
    log = log or bar.log
    try:
        gt = ds.ground_truth(k, progress=lambda m: bar.step(m))
        libs = make_libraries(libraries, threads, log)
        xq = ds.test
        nlat = int(min(latency_queries, xq.shape[0]))
        results = []
        for cfg in configs:
            for lib in libs:
                why = lib.supports(cfg, ds)
                if why is not None:
                    if why:
                        log(f"[skip] {lib.name} {cfg.factory}: {why}")
                    bar.step("", len(cfg.search))
                    continue
                bar.step(f"{lib.name} build {cfg.factory}")
                t0 = time.perf_counter()
                index, add_s = lib.build(cfg, ds)
                build_s = time.perf_counter() - t0
                nbytes = lib.nbytes(index)
                add_rate = ds.train.shape[0] / max(add_s, 1e-9)
                first = len(results)
                for params in cfg.search:
                    bar.step(f"{lib.name} {cfg.factory} {params}".strip())
                    lib.set_params(index, params)
                    I, t = _batch_time(lib, index, xq, k)
                    lat = _latencies(lib, index, xq, k, nlat) if nlat else np.zeros(1)
                    results.append(Result(
                        lib.name, cfg.factory, cfg.build_str, params, k, float(recall_at_k(I, gt)),
                        xq.shape[0] / t, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                        build_s, nbytes / ds.train.shape[0], threads, int(xq.shape[0]), family_of(cfg.factory),
                        add_rate))
                    bar.step("", 1)
                rm = _remove_rate(lib, index, ds.train.shape[0])
                for r in results[first:]:
                    r.remove_per_s = rm
                del index
        return results
    finally:
        bar.close()
