"""The libraries the harness compares, behind one small interface (_Lib):
annvil and Faiss (built from factory strings, tuned through ParameterSpace),
hnswlib and usearch (HNSW configurations only)."""
from __future__ import annotations

import time

import numpy as np

from .._core import InvalidArgumentError
from .configs import _RE_HNSW_FLAT, LIBRARIES

__all__ = ["make_libraries"]


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
        from ..autotune import ParameterSpace

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
        from ..autotune import parse_params

        for _name, v in parse_params(params).items():
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
        from ..autotune import parse_params

        for _name, v in parse_params(params).items():
            index.expansion_search = int(v)

    def search(self, index, xq, k):
        m = index.search(xq, k, threads=self.threads)
        keys = np.asarray(m.keys).reshape(len(xq), -1).astype(np.int64)
        return keys

    def nbytes(self, index):
        return int(index.serialized_length)


_LIB_CLASSES = {"annvil": _Annvil, "faiss": _Faiss, "hnswlib": _Hnswlib, "usearch": _Usearch}


def _param_names(cfg):
    from ..autotune import parse_params

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
