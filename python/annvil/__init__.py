"""annvil: a native-accelerated vector index engine, a drop-in for Faiss.

    import annvil as faiss
    index = faiss.IndexFlatL2(d)
    index.add(xb)
    D, I = index.search(xq, k)
"""
from __future__ import annotations

import os as _os
import pickle as _pickle
import sys as _sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

import numpy as _np

from . import _core
from ._core import (  # noqa: F401  (re-exported)
    METRIC_INNER_PRODUCT,
    METRIC_L2,
    METRIC_L1,
    METRIC_Linf,
    METRIC_Lp,
    METRIC_Canberra,
    METRIC_BrayCurtis,
    METRIC_JensenShannon,
    METRIC_Jaccard,
    METRIC_NaNEuclidean,
    METRIC_GOWER,
    is_similarity_metric,
    AnnvilError,
    Index,
    IndexFileError,
    IndexFlat,
    IndexFlatIP,
    IndexFlat1D,
    IndexFlatL2,
    IndexIDMap,
    IndexIDMap2,
    InvalidArgumentError,
    InvalidTypeError,
    NotTrainedError,
    SearchParameters,
    detected_simd_level,
    get_num_gpus,
    omp_get_max_threads,
    omp_set_num_threads,
    set_simd_level,
    simd_level,
)
from . import _index_methods
from ._checks import NAN_METRICS as _NAN_METRICS, as_matrix as _as_matrix, check_k as _check_k
from ._selectors import (  # noqa: F401
    IDSelector,
    IDSelectorAll,
    IDSelectorAnd,
    IDSelectorArray,
    IDSelectorBatch,
    IDSelectorBitmap,
    IDSelectorNot,
    IDSelectorOr,
    IDSelectorRange,
    IDSelectorXOr,
    IDSelectorTranslated,
)
from .kmeans import *  # noqa: F401,F403

__version__ = "0.1.0"

_index_methods.attach(Index)
from . import _compat_b  # noqa: E402,F401  (Faiss surface details, second batch)
from ._core import IndexFlatCodes  # noqa: E402,F401  (the C++ base of IndexFlat, IndexPQ, IndexScalarQuantizer)

# Faiss's IO flags; IO_FLAG_MMAP has Faiss's value so drop-in code passes it as is.
IO_FLAG_READ_ONLY = 2
IO_FLAG_ONDISK_SAME_DIR = 4
IO_FLAG_SKIP_IVF_DATA = 8
IO_FLAG_MMAP = IO_FLAG_SKIP_IVF_DATA | 0x646F0000
IO_FLAG_SKIP_STORAGE = 1  # accepted; storage is always read
IO_FLAG_SKIP_PRECOMPUTE_TABLE = 16  # accepted; the IVF-PQ table is rebuilt when it fits, as usual
IO_FLAG_PQ_SKIP_SDC_TABLE = 32  # accepted (annvil has no SDC table)
IO_FLAG_MMAP_IFC = 1 << 9  # Faiss's newer mmap flag: maps the file, as IO_FLAG_MMAP


# ---- metrics ---------------------------------------------------------------------
def _metric(metric):
    """METRIC_* constant or a name ('l2', 'ip', 'cosine') -> (metric, normalise)."""
    if isinstance(metric, str):
        m = metric.lower()
        if m in ("l2", "euclidean", "sqeuclidean"):
            return METRIC_L2, False
        if m in ("ip", "inner_product", "dot"):
            return METRIC_INNER_PRODUCT, False
        if m in ("cosine", "angular"):
            return METRIC_INNER_PRODUCT, True
        raise InvalidArgumentError(f"unknown metric '{metric}'; use 'l2', 'ip' or 'cosine'")
    try:
        m = int(metric)
    except (TypeError, ValueError):
        m = None
    if m in _METRICS:
        return m, False
    raise InvalidArgumentError(
        f"unsupported metric {metric!r}; use one of the METRIC_* constants (METRIC_L2, METRIC_INNER_PRODUCT, "
        "METRIC_L1, METRIC_Linf, METRIC_Lp, ...) or 'l2', 'ip', 'cosine'")


_METRICS = frozenset((METRIC_INNER_PRODUCT, METRIC_L2, METRIC_L1, METRIC_Linf, METRIC_Lp, METRIC_Canberra,
                      METRIC_BrayCurtis, METRIC_JensenShannon, METRIC_Jaccard, METRIC_NaNEuclidean, METRIC_GOWER))


def _normalized(x):
    x = x.copy()
    _core._normalize_rows(x)
    return x


if _TYPE_CHECKING:
    from numpy.typing import ArrayLike


# ---- functions -------------------------------------------------------------------
def knn(xq: ArrayLike, xb: ArrayLike, k: int, metric: int | str = METRIC_L2,
        metric_arg: float = 0.0) -> tuple[_np.ndarray, _np.ndarray]:
    """Exact k nearest neighbours of xq among xb: (D (nq, k), I (nq, k)).

    metric: METRIC_L2 (squared distances), METRIC_INNER_PRODUCT, 'cosine'
    (both sides normalised, D holds cosine similarities), or one of the extra
    metrics (METRIC_L1, METRIC_Linf, METRIC_Lp with p = metric_arg, ...).
    Similarities (inner product, Jaccard) come largest first."""
    m, norm = _metric(metric)
    nan_ok = m in _NAN_METRICS
    xb = _as_matrix(xb, None, "xb", allow_1d=False, allow_nan=nan_ok)
    xq = _as_matrix(xq, xb.shape[1], "xq", allow_nan=nan_ok)
    k = _check_k(k)
    if norm:
        xq, xb = _normalized(xq), _normalized(xb)
    return _core._knn(xq, xb, k, m, float(metric_arg))


def pairwise_distances(xq: ArrayLike, xb: ArrayLike, metric: int | str = METRIC_L2,
                       metric_arg: float = 0.0) -> _np.ndarray:
    """Full (nq, nb) matrix of distances (squared for L2) or similarities under
    `metric` (metric_arg: the p of METRIC_Lp, distances without the 1/p root)."""
    m, norm = _metric(metric)
    nan_ok = m in _NAN_METRICS
    xb = _as_matrix(xb, None, "xb", allow_1d=False, allow_nan=nan_ok)
    xq = _as_matrix(xq, xb.shape[1], "xq", allow_nan=nan_ok)
    if norm:
        xq, xb = _normalized(xq), _normalized(xb)
    return _core._pairwise_distances(xq, xb, m, float(metric_arg))


def normalize_L2(x: _np.ndarray) -> None:
    """Normalise the rows of a float32 C-contiguous 2-D array in place (as Faiss)."""
    if not isinstance(x, _np.ndarray) or x.dtype != _np.float32 or not x.flags.c_contiguous:
        raise InvalidTypeError("normalize_L2 works in place: x must be a C-contiguous float32 numpy array")
    if x.ndim == 1:
        _core._normalize_rows(x.reshape(1, -1))
        return
    _core._normalize_rows(x)


def fvec_norms_L2sqr(x: ArrayLike) -> _np.ndarray:
    return _core._norms_sqr(_as_matrix(x, None, "x", allow_1d=False))


# ---- index files -------------------------------------------------------------------
def _check_format(format):
    if format not in ("annvil", "faiss"):
        raise InvalidArgumentError(f"format must be 'annvil' or 'faiss', got {format!r}")
    return format == "faiss"


def write_index(index: Index, path: str | _os.PathLike | object, format: str = "annvil") -> None:
    """Write index to path atomically (temporary file, fsync, rename).

    format="faiss" writes Faiss's own file format, which faiss.read_index
    reads (docs/notes/faissio.md lists the index types it covers)."""
    if not isinstance(index, Index):
        raise InvalidTypeError(f"write_index needs an annvil index, got {type(index).__name__}")
    faiss_fmt = _check_format(format)
    if not isinstance(path, (str, bytes, _os.PathLike)):
        # an IOWriter (PyCallbackIOWriter, VectorIOWriter...) or a binary file object
        from .pyio import write_to
        write_to(path, serialize_index(index, format=format))
        return
    if faiss_fmt:
        _core.faiss_write_index(index, _os.fsdecode(path))
        return
    _core.write_index(index, _os.fsdecode(path))


def read_index(path: str | _os.PathLike | object, io_flags: int = 0, *, mmap: bool = False,
               verify: bool | None = None) -> Index:
    """Read an index written by write_index, or a Faiss index file (recognised
    by its type code; see docs/notes/faissio.md for the types covered).

    mmap=True (or io_flags containing IO_FLAG_MMAP) maps the file read-only:
    large arrays are used in place and paged in on demand; the checksum is then
    not verified unless verify=True (that would read the whole file).  Faiss
    files have no checksum; their arrays are used in place where annvil keeps
    Faiss's layout (flat vectors, PQ / SQ codes), the rest is converted."""
    if not isinstance(path, (str, bytes, _os.PathLike)):
        # an IOReader (PyCallbackIOReader, VectorIOReader...) or a binary file object
        from .pyio import read_from
        return deserialize_index(read_from(path))
    use_mmap = (bool(mmap) or (int(io_flags) & IO_FLAG_MMAP) == IO_FLAG_MMAP
                or bool(int(io_flags) & IO_FLAG_MMAP_IFC))
    if verify is None:
        verify = not use_mmap
    return _core.read_index(_os.fsdecode(path), use_mmap, bool(verify))


def serialize_index(index: Index, format: str = "annvil") -> _np.ndarray:
    """The index file bytes as a uint8 numpy array (format="faiss": Faiss's format)."""
    if not isinstance(index, Index):
        raise InvalidTypeError(f"serialize_index needs an annvil index, got {type(index).__name__}")
    if _check_format(format):
        return _core.faiss_serialize_index(index)
    return _core.serialize_index(index)


def deserialize_index(data: ArrayLike | bytes) -> Index:
    """Inverse of serialize_index (accepts a uint8 array or bytes, in annvil's
    or Faiss's format)."""
    if isinstance(data, (bytes, bytearray, memoryview, _pickle.PickleBuffer)):
        try:
            data = _np.frombuffer(memoryview(data).cast("B"), dtype=_np.uint8)
        except (TypeError, ValueError) as e:  # e.g. a non-contiguous memoryview
            raise InvalidTypeError(f"serialized index must be one contiguous buffer of bytes: {e}") from None
    arr = _np.asarray(data)
    if arr.dtype != _np.uint8:
        raise InvalidTypeError(f"serialized index must be uint8, got {arr.dtype}")
    return _core.deserialize_index(_np.ascontiguousarray(arr.ravel()))


def downcast_index(index: Index) -> Index:
    """Identity: annvil returns the most derived index type already."""
    return index


def clone_index(index: Index) -> Index:
    """A deep copy of any annvil index (through its serialized form)."""
    if not isinstance(index, Index):
        raise InvalidTypeError(f"clone_index needs an annvil index, got {type(index).__name__}")
    return deserialize_index(serialize_index(index))


def get_mem_usage_kb() -> int:
    """Resident memory of this process in kB (Linux: VmRSS), 0 when unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def is_cuda_available() -> bool:
    return bool(_core.HAVE_CUDA) and _core.get_num_gpus() > 0


# ---- Faiss's pointer-level API and module utilities ----------------------------------
from .compat import *  # noqa: E402,F401,F403
from .compat import (  # noqa: E402,F401
    SIMDConfig, SIMDLevel_AVX2, SIMDLevel_AVX512, SIMDLevel_AVX512_SPR, SIMDLevel_AVX512_VPOPCNT,
    SIMDLevel_ARM_NEON, SIMDLevel_ARM_SVE, SIMDLevel_COUNT, SIMDLevel_NONE, SIMDLevel_RISCV_RVV,
    check_openmp, cvar, get_compile_options,
)
from .utils import *  # noqa: E402,F401,F403
from .pyio import *  # noqa: E402,F401,F403

# ---- index families and tools (each module defines __all__) ----------------------
from .pq import *  # noqa: E402,F401,F403
from .transforms import *  # noqa: E402,F401,F403
from .ivf import *  # noqa: E402,F401,F403
from .ivfpq import *  # noqa: E402,F401,F403
from .hnsw import *  # noqa: E402,F401,F403
from .qg import *  # noqa: E402,F401,F403
from .binary import *  # noqa: E402,F401,F403
from .lsh import *  # noqa: E402,F401,F403
from .factory import *  # noqa: E402,F401,F403
from .autotune import *  # noqa: E402,F401,F403
from .meta import *  # noqa: E402,F401,F403
from .tuner import *  # noqa: E402,F401,F403


# ---- Faiss's strict attributes on every compiled class ------------------------------
def _install_strict_attributes():
    from .compat import SWIG_THIS
    for obj in list(vars(_core).values()):
        if not isinstance(obj, type) or issubclass(obj, BaseException):
            continue
        if "this" not in obj.__dict__ and not any("this" in c.__dict__ for c in obj.__mro__[1:]):
            obj.this = property(lambda self: SWIG_THIS)
            obj.thisown = property(lambda self: True, lambda self, v: None)
        if issubclass(obj, SearchParameters):
            if obj is SearchParameters:
                _index_methods.attach_params(obj)
            _index_methods.keep_constructor_refs(obj)
        elif getattr(obj, "__dictoffset__", 0) and not issubclass(obj, Index):  # Index subclasses inherit Index's
            obj.__setattr__ = _index_methods.strict_setattr


_install_strict_attributes()

# `faiss.swigfaiss` (the SWIG module) is this module
swigfaiss = _sys.modules[__name__]
_sys.modules[__name__ + ".swigfaiss"] = swigfaiss
