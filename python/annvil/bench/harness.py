"""The benchmark harness: builds each index configuration with annvil and,
when installed, Faiss (same factory string), hnswlib and usearch (HNSW
configurations; usearch's int8 storage stands for SQ8), in one process with
the same thread count and parameters, and measures recall@k, batch QPS,
single-query latency (p50/p99), build time, add and remove throughput and
bytes per vector for every search-parameter setting.  summarize() gives each
library's best QPS at recall targets and the ratio to annvil's."""
from __future__ import annotations

import csv
import itertools
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .._core import InvalidArgumentError

__all__ = ["IndexConfig", "Result", "parse_index_spec", "load_toml_config", "default_configs",
           "run_benchmark", "write_results", "print_table", "summarize", "print_summary", "family_of",
           "LIBRARIES", "TARGETS"]

LIBRARIES = ("annvil", "faiss", "hnswlib", "usearch")
BUILD_PARAMS = ("efConstruction",)  # set before adding; everything else is a search parameter
_RE_HNSW_FLAT = re.compile(r"HNSW(\d*)(,Flat|,SQ8)?$")
TARGETS = (0.90, 0.95)  # recall levels of the summary


def family_of(factory):
    """A short family label for plots and tables: 'Flat', 'HNSW', 'HNSW-SQ8',
    'IVF-PQfs+refine', 'IVF-SQ8', 'IVF-Flat', 'IVF-PQ'..."""
    f = factory.replace(" ", "")
    refine = "+refine" if re.search(r",R(Flat|\w+)$", f) or f.startswith("Refine") else ""
    if f in ("Flat", "IDMap,Flat"):
        return "Flat"
    if "HNSW" in f and "IVF" not in f:
        return "HNSW-SQ8" if "SQ8" in f else ("HNSW-" + f.split(",")[1] if "," in f and not f.endswith(",Flat")
                                               else "HNSW")
    if "IVF" in f:
        enc = f.split(",")[1] if "," in f else "Flat"
        enc = "PQfs" if re.match(r"PQ\d+x4fs", enc) else re.sub(r"\d.*", "", enc) if enc.startswith("PQ") else enc
        return f"IVF-{enc}{refine}"
    return f.split(",")[0] + refine


@dataclass
class IndexConfig:
    """One index to build (`factory`, `build` parameters) and the search
    settings to measure on it (ParameterSpace strings; [""] for none)."""

    factory: str
    build: dict = field(default_factory=dict)
    search: list = field(default_factory=lambda: [""])

    @property
    def build_str(self):
        return ",".join(f"{k}={v:g}" for k, v in self.build.items())


def _values(text, what):
    try:
        return [float(v) for v in re.split(r"[/|;]", text) if v.strip()]
    except ValueError:
        raise InvalidArgumentError(f"{what}: values must be numbers separated by '/', got '{text}'") from None


def _sweep(params):
    """{'nprobe': [1, 2], 'k_factor_rf': [1, 4]} -> ['nprobe=1,k_factor_rf=1', ...]."""
    if not params:
        return [""]
    names = list(params)
    out = []
    for combo in itertools.product(*(params[n] for n in names)):
        out.append(",".join(f"{n}={v:g}" for n, v in zip(names, combo)))
    return out


def parse_index_spec(text):
    """'FACTORY[:name=v1/v2/...]...' -> IndexConfig, e.g.
    'IVF256,Flat:nprobe=1/4/16' or 'HNSW32:efConstruction=80:efSearch=16/32/64'
    (efConstruction is a build parameter; the others are swept at search)."""
    from ..factory import check_description

    parts = text.split(":")
    factory = parts[0].strip()
    if not factory:
        raise InvalidArgumentError(f"index spec '{text}' has no factory string")
    check_description(factory)
    build, search = {}, {}
    for p in parts[1:]:
        name, sep, vals = p.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidArgumentError(
                f"index spec '{text}': expected name=v1/v2/... after ':', got '{p}'")
        values = _values(vals, f"index spec '{text}'")
        if name in BUILD_PARAMS:
            if len(values) != 1:
                raise InvalidArgumentError(f"{name} is a build parameter: give one value, got '{vals}'")
            build[name] = values[0]
        else:
            search[name] = values
    return IndexConfig(factory, build, _sweep(search))


def load_toml_config(path):
    """Read a benchmark TOML file:

        [bench]                       # any CLI option, by its long name
        dataset = "synthetic-clustered-20k-96"
        k = 10
        libraries = ["annvil", "faiss"]
        [[index]]
        factory = "IVF256,Flat"
        nprobe = [1, 2, 4, 8]         # lists are swept (cartesian product)
        [[index]]
        factory = "HNSW32"
        efConstruction = 40           # build parameter
        efSearch = [16, 32, 64]

    Returns (settings dict, [IndexConfig])."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError:
            raise ImportError("reading TOML configs on Python < 3.11 needs tomli: pip install tomli") from None
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such config file: '{path}'")
    with open(path, "rb") as f:
        try:
            doc = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise InvalidArgumentError(f"'{path}' is not valid TOML: {e}") from None
    settings = dict(doc.get("bench", {}))
    configs = []
    for i, entry in enumerate(doc.get("index", [])):
        entry = dict(entry)
        factory = entry.pop("factory", None)
        if not isinstance(factory, str):
            raise InvalidArgumentError(f"'{path}': [[index]] #{i + 1} needs factory = \"...\"")
        build, search = {}, {}
        for name, v in entry.items():
            vals = v if isinstance(v, list) else [v]
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals):
                raise InvalidArgumentError(f"'{path}': [[index]] {factory}: {name} must be a number or a list")
            if name in BUILD_PARAMS:
                if len(vals) != 1:
                    raise InvalidArgumentError(f"'{path}': {name} is a build parameter: give one value")
                build[name] = float(vals[0])
            else:
                search[name] = [float(x) for x in vals]
        from ..factory import check_description

        check_description(factory)
        configs.append(IndexConfig(factory, build, _sweep(search)))
    unknown = set(doc) - {"bench", "index"}
    if unknown:
        raise InvalidArgumentError(f"'{path}': unknown table(s) {sorted(unknown)}; use [bench] and [[index]]")
    return settings, configs


def default_configs(n, d=None):
    """The families that matter on text embeddings, as far as this build of
    annvil has them: Flat (exact, the reference), IVF with 4-bit PQ
    fast-scan codes re-ranked by the exact vectors (IVF{~sqrt n},PQ{d/4}x4fs,
    RFlat; nprobe and k_factor_rf swept), HNSW32 and HNSW32 with SQ8 storage
    (efConstruction 40, efSearch swept), and annvil's quantized graph
    QG64,PQ{d/4}x4.  Every library runs the ones it has."""
    import annvil

    have = lambda *c: all(getattr(annvil, x, None) is not None for x in c)  # noqa: E731
    nlist = max(16, 1 << int(round(math.log2(max(1.0, math.sqrt(n))))))
    cfgs = [IndexConfig("Flat")]
    m = None if d is None else next((d // s for s in (4, 2, 1) if d % s == 0 and (d // s) % 2 == 0), None)
    if d is not None and m and have("IndexIVFPQFastScan", "IndexRefineFlat"):
        search = [f"nprobe={p},k_factor_rf=8" for p in (1, 2, 4, 8) if p <= nlist]
        search += [f"nprobe={p},k_factor_rf=16" for p in (4, 8, 16, 32) if p <= nlist]
        cfgs.append(IndexConfig(f"IVF{nlist},PQ{m}x4fs,RFlat", {}, search))
    elif have("IndexIVFFlat"):
        nps = [p for p in (1, 2, 4, 8, 16, 32, 64) if p <= nlist]
        cfgs.append(IndexConfig(f"IVF{nlist},Flat", {}, [f"nprobe={p}" for p in nps]))
    efs = [f"efSearch={e}" for e in (10, 16, 24, 32, 48, 64, 96, 128)]
    if have("IndexHNSWFlat"):
        cfgs.append(IndexConfig("HNSW32", {"efConstruction": 40.0}, efs))
    if have("IndexHNSWSQ"):
        cfgs.append(IndexConfig("HNSW32,SQ8", {"efConstruction": 40.0}, efs))
    if d is not None and m and have("IndexQG"):
        # annvil's quantized graph (peers have no equivalent and skip it)
        cfgs.append(IndexConfig(f"QG64,PQ{m}x4", {"efConstruction": 40.0}, efs))
    return cfgs


@dataclass
class Result:
    library: str
    index: str
    build_params: str
    params: str
    k: int
    recall: float
    qps: float
    p50_ms: float
    p99_ms: float
    build_s: float
    bytes_per_vector: float
    threads: int
    nq: int
    family: str = ""
    add_per_s: float | None = None  # vectors/s added to the trained (empty) index
    remove_per_s: float | None = None  # ids/s removed (None: the library cannot remove from it)


# ---- libraries ------------------------------------------------------------------
class _Lib:
    name = ""

    def available(self):
        return True

    def supports(self, cfg, ds):
        """None when cfg can run, else the reason why not."""
        return None


class _FactoryLib(_Lib):
    """A library with Faiss's API (`mod` is annvil or faiss): built from factory
    strings, tuned through ParameterSpace, sized by serialize_index."""

    def build(self, cfg, ds):
        """(index, seconds spent adding the vectors to the trained index)."""
        from ..tuner import build_index

        index, _, add_s = build_index(self.mod, ds.train, cfg.factory, cfg.build_str, ds.metric_type,
                                      timing=True)
        return index, add_s

    def remove(self, index, ids):
        return int(index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def set_params(self, index, params):
        from ..tune import ParameterSpace

        ParameterSpace().set_index_parameters(index, params)

    def search(self, index, xq, k):
        return index.search(xq, k)[1]

    def nbytes(self, index):
        return len(self.mod.serialize_index(index))


class _Annvil(_FactoryLib):
    name = "annvil"

    def __init__(self, threads):
        import annvil

        self.mod = annvil
        annvil.omp_set_num_threads(threads)

    def supports(self, cfg, ds):
        from ..factory import _build

        try:
            _build(ds.d, cfg.factory, ds.metric_type, self.mod)
        except InvalidArgumentError as e:
            return str(e).split("\n")[0]
        return None


class _Faiss(_FactoryLib):
    name = "faiss"

    def __init__(self, threads):
        import faiss

        self.mod = faiss
        faiss.omp_set_num_threads(threads)

    def supports(self, cfg, ds):
        try:
            self.mod.index_factory(ds.d, cfg.factory, ds.metric_type)
        except Exception as e:  # Faiss raises RuntimeError with its C++ message
            msg = [ln for ln in str(e).splitlines() if ln.strip()]
            return f"faiss cannot build '{cfg.factory}': {(msg[-1] if msg else '')[:120]}"
        return None


def _hnsw_m(cfg):
    m = _RE_HNSW_FLAT.match(cfg.factory)
    return int(m.group(1) or 32) if m else None


class _Hnswlib(_Lib):
    name = "hnswlib"

    def __init__(self, threads):
        import hnswlib

        self.mod = hnswlib
        self.threads = threads

    quantized = False  # whether HNSW{M},SQ8 can run (as int8 storage)

    def supports(self, cfg, ds):
        if _hnsw_m(cfg) is None:
            return ""  # HNSW{M}[,Flat] configurations only: skip silently
        if cfg.factory.endswith(",SQ8") and not self.quantized:
            return ""
        bad = [p for p in _param_names(cfg) if p not in ("efSearch", "ef")]
        return f"{self.name} has no parameter {bad}" if bad else None

    def build(self, cfg, ds):
        index = self.mod.Index(space="l2" if ds.metric == "l2" else "ip", dim=ds.d)
        index.init_index(max_elements=ds.train.shape[0], M=_hnsw_m(cfg),
                         ef_construction=int(cfg.build.get("efConstruction", 40)), random_seed=100,
                         allow_replace_deleted=False)
        index.set_num_threads(self.threads)
        t0 = time.perf_counter()
        index.add_items(ds.train, np.arange(ds.train.shape[0]))
        return index, time.perf_counter() - t0

    def remove(self, index, ids):
        for i in ids:
            index.mark_deleted(int(i))
        return len(ids)

    def set_params(self, index, params):
        from ..tune import parse_params

        for name, v in parse_params(params).items():
            index.set_ef(int(v))

    def search(self, index, xq, k):
        if index.ef < k:
            index.set_ef(k)
        return index.knn_query(xq, k=k)[0].astype(np.int64)

    def nbytes(self, index):
        return int(index.index_file_size())


class _Usearch(_Lib):
    name = "usearch"

    def __init__(self, threads):
        from usearch.index import Index

        self.Index = Index
        self.threads = threads

    supports = _Hnswlib.supports
    quantized = True  # HNSW{M},SQ8 runs with usearch's int8 storage (dtype="i8")

    def build(self, cfg, ds):
        index = self.Index(ndim=ds.d, metric="l2sq" if ds.metric == "l2" else "ip",
                           dtype="i8" if cfg.factory.endswith(",SQ8") else "f32",
                           connectivity=_hnsw_m(cfg),
                           expansion_add=int(cfg.build.get("efConstruction", 40)), expansion_search=16)
        t0 = time.perf_counter()
        index.add(np.arange(ds.train.shape[0]), ds.train, threads=self.threads)
        return index, time.perf_counter() - t0

    def remove(self, index, ids):
        return int(np.sum(index.remove(np.asarray(ids, dtype=np.uint64))))

    def set_params(self, index, params):
        from ..tune import parse_params

        for name, v in parse_params(params).items():
            index.expansion_search = int(v)

    def search(self, index, xq, k):
        m = index.search(xq, k, threads=self.threads)
        keys = np.asarray(m.keys).reshape(len(xq), -1).astype(np.int64)
        return keys

    def nbytes(self, index):
        return int(index.serialized_length)


_LIB_CLASSES = {"annvil": _Annvil, "faiss": _Faiss, "hnswlib": _Hnswlib, "usearch": _Usearch}


def _param_names(cfg):
    from ..tune import parse_params

    names = set()
    for p in cfg.search:
        names |= set(parse_params(p))
    return names


def make_libraries(names, threads, log=print):
    libs = []
    for name in names:
        if name not in _LIB_CLASSES:
            raise InvalidArgumentError(f"unknown library '{name}'; choose from {', '.join(LIBRARIES)}")
        try:
            libs.append(_LIB_CLASSES[name](threads))
        except ImportError:
            log(f"[skip] {name} is not installed (pip install {'faiss-cpu' if name == 'faiss' else name})")
    return libs


# ---- measuring ------------------------------------------------------------------
def _recall(I, gt):
    from ..tune import recall_at_k

    return recall_at_k(I, gt)


def _batch_time(lib, index, xq, k, min_time=0.2, max_runs=5):
    """(ids, seconds): the fastest of a few runs (the minimum filters out the
    noise of other work on the machine); 3 runs at least when one is short,
    1 when one run takes min_time already."""
    best, total, runs, I = math.inf, 0.0, 0, None
    while runs < max_runs and (total < min_time or runs < (3 if best < min_time / 4 else 1)):
        t0 = time.perf_counter()
        I = lib.search(index, xq, k)
        t = time.perf_counter() - t0
        best, total, runs = min(best, t), total + t, runs + 1
    return I, best


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


def run_benchmark(ds, configs, *, k=10, libraries=LIBRARIES, threads=None, latency_queries=100,
                  progress=True, log=None):
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
                        lib.name, cfg.factory, cfg.build_str, params, k, float(_recall(I, gt)),
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


# ---- output ---------------------------------------------------------------------
def _rate(v):
    return "n/a" if v is None else f"{v:,.0f}"


def print_table(results, title=None, file=None):
    """A table of the results (rich when installed)."""
    cols = ["library", "index", "params", "recall", "QPS", "p50 ms", "p99 ms", "build s", "B/vec", "add/s",
            "remove/s"]
    rows = [[r.library, r.index + (f" ({r.build_params})" if r.build_params else ""), r.params,
             f"{r.recall:.4f}", f"{r.qps:,.0f}", f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.build_s:.2f}",
             f"{r.bytes_per_vector:.1f}", _rate(r.add_per_s), _rate(r.remove_per_s)] for r in results]
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for i, c in enumerate(cols):
            t.add_column(c, justify="right" if i >= 3 else "left")
        for row in rows:
            t.add_row(*row)
        con = Console(file=file)
        if not con.is_terminal:
            con = Console(file=file, width=160)  # files and pipes: do not squeeze to 80 columns
        con.print(t)
    except ImportError:
        out = file or sys.stdout
        if title:
            print(title, file=out)
        widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths)), file=out)
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=out)


def environment():
    import annvil

    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
           "annvil": annvil.__version__, "simd": annvil.simd_level()}
    for mod in ("faiss", "hnswlib", "usearch"):
        try:
            m = __import__(mod)
            env[mod] = getattr(m, "__version__", "?")
        except ImportError:
            pass
    return env


def summarize(results, targets=TARGETS):
    """Each library's fastest setting reaching each recall target, and the
    ratio annvil QPS / that library's QPS (> 1: annvil is faster):
    {library: {"0.9": {"qps", "index", "params", "recall", "family", "annvil_ratio"} or None}}."""
    out = {}
    libs = sorted({r.library for r in results}, key=lambda s: (s != "annvil", s))
    for lib in libs:
        out[lib] = {}
        for t in targets:
            ok = [r for r in results if r.library == lib and r.recall >= t]
            b = max(ok, key=lambda r: r.qps, default=None)
            out[lib][f"{t:g}"] = None if b is None else {
                "qps": b.qps, "index": b.index, "params": b.params, "recall": b.recall, "family": b.family,
                "p99_ms": b.p99_ms}
    for t in targets:
        key = f"{t:g}"
        a = out.get("annvil", {}).get(key)
        for lib in libs:
            b = out[lib][key]
            if b is not None:
                b["annvil_ratio"] = (a["qps"] / b["qps"]) if a else None
    return out


def print_summary(summary, file=None, title=None):
    """The "best QPS at recall >= target" table of summarize()."""
    targets = sorted({t for v in summary.values() for t in v}, key=float)
    rows = []
    for lib, v in summary.items():
        row = [lib]
        for t in targets:
            b = v.get(t)
            if b is None:
                row += ["not reached", "", ""]
            else:
                ratio = b.get("annvil_ratio")
                row += [f"{b['qps']:,.0f}", f"{b['index']} {b['params']}".strip(),
                        "" if lib == "annvil" or ratio is None else f"{ratio:.2f}x"]
        rows.append(row)
    cols = ["library"]
    for t in targets:
        cols += [f"QPS @ recall>={t}", "at", "annvil / it"]
    title = title or "best QPS at each recall target (higher is better; ratio > 1: annvil faster)"
    try:
        from rich.console import Console
        from rich.table import Table

        tab = Table(title=title)
        for i, c in enumerate(cols):
            tab.add_column(c, justify="left" if i == 0 or c == "at" else "right")
        for row in rows:
            tab.add_row(*row)
        con = Console(file=file)
        if not con.is_terminal:
            con = Console(file=file, width=160)
        con.print(tab)
    except ImportError:
        out = file or sys.stdout
        print(title, file=out)
        for row in [cols] + rows:
            print("  ".join(str(x) for x in row), file=out)


def write_results(results, out_dir, *, meta=None, plot=True, title=None):
    """results.json (meta, environment, summary, results), results.csv and
    (plot=True) recall_qps.png in out_dir; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    rows = [asdict(r) for r in results]
    paths["json"] = os.path.join(out_dir, "results.json")
    with open(paths["json"], "w") as f:
        json.dump({"meta": meta or {}, "environment": environment(), "summary": summarize(results),
                   "results": rows}, f, indent=1)
    paths["csv"] = os.path.join(out_dir, "results.csv")
    with open(paths["csv"], "w", newline="") as f:
        fields = list(Result.__dataclass_fields__)
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    if plot:
        from .plot import plot_recall_qps

        paths["png"] = plot_recall_qps(results, os.path.join(out_dir, "recall_qps.png"), title=title)
    return paths
