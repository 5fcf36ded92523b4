"""Faiss's pointer-level Python API over numpy arrays.

Faiss's SWIG layer passes C pointers around: ``faiss.swig_ptr(a)`` gives the
address of a numpy array's data and C functions take ``(n, ptr, ...)``.
annvil has no raw pointers in Python: ``swig_ptr(a)`` returns a ``SwigPtr``
that keeps the array itself, and the functions that take pointers in Faiss
(``fvec_madd``, ``ranklist_intersection_size``, ``ClusteringInitialization
.init_centroids``...) accept it and read or write the array it wraps.  A
plain numpy array is accepted wherever a SwigPtr is.

Also here: ``vector_to_array`` / ``copy_array_to_vector`` (Faiss's std::vector
helpers: annvil's vector fields are numpy arrays or ``Vector`` objects) and the
harmless SWIG ownership attributes (``.this.disown()``, ``thisown``,
``own_fields``) that client code such as autofaiss touches.
"""
from __future__ import annotations

import numpy as np

from ._core import InvalidArgumentError, InvalidTypeError

__all__ = ["FieldArray", "SwigPtr", "swig_ptr", "rev_swig_ptr", "vector_to_array", "vector_float_to_array",
           "copy_array_to_vector", "Float32Vector", "Int64Vector", "UInt8Vector", "Int32Vector",
           "Float64Vector", "UInt64Vector", "Int8Vector", "UInt16Vector", "FloatVector", "LongVector",
           "ByteVector", "IntVector", "DoubleVector"]


class SwigPtr:
    """A numpy array standing in for a C pointer to its first element
    (``faiss.swig_ptr(a)``).  ``int(p)`` is the data address."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __int__(self):
        return int(self.array.ctypes.data)

    def __index__(self):
        return int(self.array.ctypes.data)

    def __repr__(self):
        return f"<annvil.SwigPtr to {self.array.dtype} x {self.array.size} at {int(self):#x}>"

    def __getitem__(self, i):
        return self.array.reshape(-1)[i]

    def __setitem__(self, i, v):
        self.array.reshape(-1)[i] = v


def swig_ptr(a):
    """The stand-in for a pointer to a numpy array's data (see SwigPtr)."""
    if isinstance(a, SwigPtr):
        return a
    if isinstance(a, Vector):
        return SwigPtr(a._a)
    if not isinstance(a, np.ndarray):
        raise InvalidTypeError(f"swig_ptr needs a numpy array, got {type(a).__name__}")
    if not a.flags.c_contiguous:
        raise InvalidArgumentError("swig_ptr needs a C-contiguous array (use np.ascontiguousarray)")
    return SwigPtr(a)


def ptr_array(p, dtype=None, count=None, what="array", writable=False):
    """The flat numpy array behind a pointer argument (SwigPtr, ndarray or
    Vector), checked to hold at least `count` elements of `dtype`; a view
    when it can be one (writes go to the caller's array)."""
    if isinstance(p, SwigPtr):
        a = p.array
    elif isinstance(p, Vector):
        a = p._a
    elif isinstance(p, np.ndarray):
        a = p
    elif p is None:
        raise InvalidArgumentError(f"{what}: got None where an array (faiss.swig_ptr(a)) is needed")
    else:
        if writable:
            raise InvalidTypeError(f"{what} must be a numpy array or swig_ptr(array), got {type(p).__name__}")
        a = np.asarray(p)
    flat = a.reshape(-1)
    if dtype is not None and flat.dtype != np.dtype(dtype):
        if writable:
            if flat.dtype.itemsize == np.dtype(dtype).itemsize and flat.dtype.kind in "iu" and \
                    np.dtype(dtype).kind in "iu":
                flat = flat.view(dtype)
            else:
                raise InvalidTypeError(f"{what} must be {np.dtype(dtype)}, got {flat.dtype}")
        else:
            flat = flat.astype(dtype)
    if count is not None:
        count = int(count)
        if count < 0 or flat.size < count:
            raise InvalidArgumentError(f"{what} holds {flat.size} elements, {count} needed")
        flat = flat[:count]
    return flat


def rev_swig_ptr(p, n):
    """The first n elements behind a pointer, as a numpy array (a view)."""
    return ptr_array(p, None, n, "rev_swig_ptr")


# ---- std::vector stand-ins ------------------------------------------------------------
class Vector:
    """Faiss's std::vector wrappers (Float32Vector...): a growable 1-D array with
    SWIG's methods (push_back, size, at, resize, clear, data)."""

    dtype = np.float32

    def __init__(self, values=None):
        self._a = np.zeros(0, dtype=self.dtype) if values is None else np.ascontiguousarray(values, self.dtype).ravel()

    def size(self):
        return int(self._a.size)

    def __len__(self):
        return int(self._a.size)

    def at(self, i):
        return self._a[i]

    def __getitem__(self, i):
        return self._a[i]

    def __setitem__(self, i, v):
        self._a[i] = v

    def push_back(self, v):
        self._a = np.append(self._a, np.asarray(v, self.dtype))

    def resize(self, n):
        n = int(n)
        if n <= self._a.size:
            self._a = self._a[:n].copy()
        else:
            self._a = np.concatenate([self._a, np.zeros(n - self._a.size, self.dtype)])

    def swap(self, other):
        """Exchange the contents of two vectors of the same type (std::vector::swap)."""
        if type(other) is not type(self):
            raise InvalidTypeError(f"swap needs another {type(self).__name__}, got {type(other).__name__}")
        self._a, other._a = other._a, self._a

    def clear(self):
        self._a = np.zeros(0, dtype=self.dtype)

    def empty(self):
        return self._a.size == 0

    def data(self):
        return SwigPtr(self._a)

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)

    def __repr__(self):
        return f"<annvil.{type(self).__name__} size={self._a.size}>"


def _vector_class(name, dt):
    return type(name, (Vector,), {"dtype": np.dtype(dt), "__doc__": f"std::vector of {np.dtype(dt)}"})


Float32Vector = _vector_class("Float32Vector", np.float32)
Float64Vector = _vector_class("Float64Vector", np.float64)
Int8Vector = _vector_class("Int8Vector", np.int8)
Int32Vector = _vector_class("Int32Vector", np.int32)
Int64Vector = _vector_class("Int64Vector", np.int64)
UInt8Vector = _vector_class("UInt8Vector", np.uint8)
UInt16Vector = _vector_class("UInt16Vector", np.uint16)
UInt64Vector = _vector_class("UInt64Vector", np.uint64)
# Faiss's deprecated aliases
FloatVector, DoubleVector, LongVector, ByteVector, IntVector = (Float32Vector, Float64Vector, Int64Vector,
                                                               UInt8Vector, Int32Vector)


class FieldArray(np.ndarray):
    """A copy of a vector field of a compiled object (LinearTransform.A,
    ProductQuantizer.centroids...), as a numpy array that remembers where it
    came from: ``faiss.copy_array_to_vector(a, obj.field)`` writes `a` back
    to the object, as it does into Faiss's std::vector.  Plain numpy
    otherwise (writing into the array itself changes only the copy)."""

    def __array_finalize__(self, obj):
        self._writeback = None  # views and results of operations do not write back

    @staticmethod
    def of(values, writeback):
        a = np.asarray(values).view(FieldArray)
        a._writeback = writeback
        return a

    def _assign_from_array(self, a):
        if self._writeback is None:
            if self.size != np.asarray(a).size:
                raise InvalidArgumentError(
                    f"copy_array_to_vector: the destination holds {self.size} elements, got {np.asarray(a).size}")
            self.reshape(-1)[...] = np.asarray(a).reshape(-1)
            return
        self._writeback(np.ascontiguousarray(a).reshape(-1))
        if self.size == np.asarray(a).size:
            np.ndarray.__setitem__(self.reshape(-1), Ellipsis, np.asarray(a).reshape(-1))


def vector_to_array(v):
    """A numpy copy of a vector (Vector object, numpy array or sequence)."""
    if isinstance(v, Vector):
        return v._a.copy()
    if hasattr(v, "size") and hasattr(v, "at") and not isinstance(v, np.ndarray):
        return np.array([v.at(i) for i in range(v.size())])
    # Faiss's vectors are 1-D: a code array such as index.codes ((ntotal,
    # code_size) here) comes back flat, as faiss.vector_to_array gives it
    return np.array(v).ravel()


vector_float_to_array = vector_to_array


def copy_array_to_vector(a, v):
    """Copy the 1-D array a into v: a Vector (resized to a.size) or a writable
    numpy array holding the same number of elements (written in place)."""
    a = np.asarray(a)
    if a.ndim != 1:
        raise InvalidArgumentError(f"copy_array_to_vector needs a 1-D array, got shape {a.shape}")
    if isinstance(v, Vector):
        v._a = np.ascontiguousarray(a, dtype=v.dtype).copy()
        return
    if isinstance(v, FieldArray) and v._writeback is not None:
        v._assign_from_array(a)
        return
    if isinstance(v, np.ndarray):
        if v.size != a.size:
            raise InvalidArgumentError(
                f"copy_array_to_vector: the destination holds {v.size} elements (it cannot be resized), "
                f"got {a.size}")
        if not v.flags.writeable:
            raise InvalidArgumentError("copy_array_to_vector: the destination array is read-only")
        v.reshape(-1)[...] = a
        return
    setter = getattr(v, "_assign_from_array", None)
    if setter is not None:
        setter(a)
        return
    raise InvalidTypeError(f"copy_array_to_vector cannot write into a {type(v).__name__}")


# ---- SWIG ownership ----------------------------------------------------------------
class _SwigThis:
    """What `index.this` is in Faiss (the SWIG pointer object).  annvil's
    objects are reference counted, so ownership calls are accepted and do
    nothing."""

    __slots__ = ()

    def own(self, value=None):
        return True

    def disown(self):
        return None

    def acquire(self):
        return None

    def append(self, other):
        return None


SWIG_THIS = _SwigThis()


# ---- build information and global settings ----------------------------------------------
# Faiss's SIMDLevel values
SIMDLevel_NONE = 0
SIMDLevel_AVX2 = 1
SIMDLevel_AVX512 = 2
SIMDLevel_AVX512_SPR = 3
SIMDLevel_ARM_NEON = 4
SIMDLevel_ARM_SVE = 5
SIMDLevel_RISCV_RVV = 6
SIMDLevel_AVX512_VPOPCNT = 7
SIMDLevel_COUNT = 8

_LEVEL_TO_NAME = {SIMDLevel_NONE: "scalar", SIMDLevel_AVX2: "avx2", SIMDLevel_AVX512: "avx512"}
_NAME_TO_LEVEL = {v: k for k, v in _LEVEL_TO_NAME.items()}
_LEVEL_ORDER = ("scalar", "avx2", "avx512")


def _available_levels():
    from . import _core
    top = _core.detected_simd_level()
    return _LEVEL_ORDER[:_LEVEL_ORDER.index(top) + 1] if top in _LEVEL_ORDER else ("scalar",)


class SIMDConfig:
    """Faiss's SIMDConfig over annvil's run-time kernel dispatch
    (annvil.simd_level() / set_simd_level()).  annvil has the levels NONE
    (scalar), AVX2 and AVX512."""

    @staticmethod
    def get_level():
        from . import _core
        return _NAME_TO_LEVEL[_core.simd_level()]

    @staticmethod
    def get_dispatched_level():
        from . import _core
        return _NAME_TO_LEVEL[_core.detected_simd_level()]

    @staticmethod
    def get_level_name():
        from . import _core
        return {"scalar": "NONE", "avx2": "AVX2", "avx512": "AVX512"}[_core.simd_level()]

    @staticmethod
    def set_level(level):
        from . import _core
        level = int(level)
        if level not in _LEVEL_TO_NAME or _LEVEL_TO_NAME[level] not in _available_levels():
            raise InvalidArgumentError(f"SIMD level {level} is not available on this machine/build")
        _core.set_simd_level(_LEVEL_TO_NAME[level])

    @staticmethod
    def is_simd_level_available(level):
        return _LEVEL_TO_NAME.get(int(level)) in _available_levels()

    @staticmethod
    def supported_simd_levels():
        return [_NAME_TO_LEVEL[n] for n in _available_levels()]

    @staticmethod
    def has_dynamic_dispatch():
        return True

    @staticmethod
    def auto_detect_simd_level():
        return SIMDConfig.get_dispatched_level()


def get_compile_options():
    """Faiss's build description: 'OPTIMIZE DD' (run-time dispatch) and the
    SIMD levels this build can run here (AVX2, AVX512)."""
    opts = ["OPTIMIZE", "DD"]
    levels = _available_levels()
    if "avx2" in levels:
        opts.append("AVX2")
    if "avx512" in levels:
        opts.append("AVX512")
    return " ".join(opts) + " "


def check_openmp():
    """True when the core was built with OpenMP (several threads available)."""
    from . import _core
    return bool(getattr(_core, "HAVE_OPENMP", True))


class _CVar:
    """Faiss's `cvar` (C global variables).  annvil has no BLAS path, so the
    BLAS blocking thresholds are accepted and kept, with Faiss's defaults, but
    do not change how searches run."""

    def __init__(self):
        object.__setattr__(self, "_values", {
            "distance_compute_blas_threshold": 128000,
            "distance_compute_blas_query_bs": 4096,
            "distance_compute_blas_database_bs": 1024,
            "distance_compute_min_k_reservoir": 100,
            "bucket_sort_verbose": 0,
        })

    def __getattr__(self, name):
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        if name in ("indexIVF_stats", "indexBinaryHash_stats", "hnsw_stats"):
            from . import _core
            return getattr(_core, name)
        raise AttributeError(f"annvil.cvar has no variable '{name}'")

    def __setattr__(self, name, value):
        values = object.__getattribute__(self, "_values")
        if name not in values:
            raise AttributeError(f"annvil.cvar has no variable '{name}'")
        values[name] = type(values[name])(value)

    def __dir__(self):
        stats = ["indexIVF_stats", "indexBinaryHash_stats", "hnsw_stats"]
        return sorted(object.__getattribute__(self, "_values")) + stats


cvar = _CVar()
