"""What the benchmark measures: index configurations (IndexConfig), parsed
from index specs ('IVF128,Flat:nprobe=1/4/16') or a TOML file, the default
set for a dataset size, and the family labels of plots and tables."""
from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass, field


from .._core import InvalidArgumentError

__all__ = ["IndexConfig", "Result", "parse_index_spec", "load_toml_config", "default_configs", "family_of", "LIBRARIES",
           "TARGETS"]

LIBRARIES = ("annvil", "faiss", "hnswlib", "usearch")
BUILD_PARAMS = ("efConstruction",)  # set before adding; everything else is a search parameter
_RE_HNSW_FLAT = re.compile(r"HNSW(\d*)(,Flat|,SQ8)?$")
TARGETS = (0.90, 0.95)  # recall levels of the summary


def family_of(factory: str) -> str:
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


def parse_index_spec(text: str) -> IndexConfig:
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


def load_toml_config(path: str | os.PathLike) -> tuple:
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


def default_configs(n: int, d: int | None = None) -> list[IndexConfig]:
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
