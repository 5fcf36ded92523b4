"""Input conversion and validation at the Python boundary.

Every public method converts its array arguments once, here, to C-contiguous
float32 / int64, and raises a clear exception (naming the argument, what was
expected and what was given) before any state is touched, so a failed call
leaves the index exactly as it was.
"""
from __future__ import annotations

import numbers

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

from . import _core
from ._core import InvalidArgumentError, InvalidTypeError

__all__ = ["ArrayLike", "as_matrix", "as_ids", "check_k", "check_int", "check_out", "check_params", "into"]

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
# k beyond this cannot be a real request (Faiss's own limit for CPU heaps is int32)
MAX_K = (1 << 31) - 1


def _as_array(x, what):
    if isinstance(x, np.ndarray):
        return x
    # CuPy and other array-likes with a host copy
    if hasattr(x, "get") and hasattr(x, "__cuda_array_interface__"):
        x = x.get()
    try:
        return np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise InvalidTypeError(f"{what} must be an array of numbers ({e})") from None


# Metrics for which NaN means "missing value" (Faiss's METRIC_NaNEuclidean = 24,
# METRIC_GOWER = 25): their inputs may hold NaN (never infinity).
NAN_METRICS = (24, 25)


def as_matrix(x: ArrayLike, d: int | None = None, what: str = "x", *, allow_1d: bool = True,
              allow_nan: bool = False) -> np.ndarray:
    """x as a C-contiguous float32 (n, d) array, checked to be finite
    (allow_nan: NaN is accepted as a missing value, infinity still is not)."""
    arr = _as_array(x, what)
    if arr.dtype.kind not in "fiub":
        raise InvalidTypeError(
            f"{what} must hold real numbers (float32 preferred), got dtype {arr.dtype}")
    if arr.ndim == 1 and allow_1d:
        if d is not None and arr.shape[0] != d:
            raise InvalidArgumentError(
                f"{what} is a 1-D array of length {arr.shape[0]}; expected one vector of "
                f"dimension {d} or a 2-D array of shape (n, {d})")
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise InvalidArgumentError(
            f"{what} must be a 2-D array of shape (n, d), got shape {arr.shape}")
    if d is not None and arr.shape[1] != d:
        raise InvalidArgumentError(
            f"{what} has dimension {arr.shape[1]}, but the index has d={d}")
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below as inf
            arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.size:
        bad = _core._find_non_finite(arr)
        if bad >= 0 and allow_nan and not np.isinf(arr).any():
            bad = -1
        if bad >= 0:
            row, col = divmod(int(bad), arr.shape[1])
            raise InvalidArgumentError(
                f"{what} contains NaN or infinity (row {row}, column {col})"
                + ("; values beyond float32 range overflow to inf" if np.asarray(x).dtype == np.float64 else ""))
        row = _core._find_norm_overflow(arr) if not allow_nan else _norm_overflow_nan(arr)
        if row >= 0:
            raise InvalidArgumentError(
                f"{what} row {row} has a squared norm beyond float32 range, so its distances would be "
                f"infinite; scale the data down (components up to about 1e18 are safe)")
    return arr


def _norm_overflow_nan(arr):
    """_find_norm_overflow for data where NaN marks a missing value."""
    with np.errstate(over="ignore", invalid="ignore"):
        sq = np.nansum(np.square(arr, dtype=np.float32), axis=1, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(sq))
    return int(bad[0]) if bad.size else -1


def as_ids(ids: ArrayLike, n: int | None = None, what: str = "ids") -> np.ndarray:
    """ids as a C-contiguous int64 1-D array of length n."""
    arr = _as_array(ids, what)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            arr = arr.astype(np.int64)
        else:
            raise InvalidTypeError(f"{what} must be integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise InvalidArgumentError(f"{what} must be a 1-D array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise InvalidArgumentError(f"got {arr.shape[0]} {what} for {n} vectors")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise InvalidArgumentError(f"{what} must fit in int64")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_int(v: object, what: str, *, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise InvalidTypeError(f"{what} must be an integer, got {type(v).__name__}")
    v = int(v)
    if minimum is not None and v < minimum:
        raise InvalidArgumentError(f"{what} must be at least {minimum}, got {v}")
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise InvalidArgumentError(f"{what} must fit in int64, got {v}")
    return v


class InvalidKError(InvalidArgumentError, AssertionError):
    """k < 1.  Also an AssertionError: Faiss's Python layer checks k with
    `assert`, and client code (and Faiss's tests) catch that."""


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise InvalidTypeError(f"k must be an integer, got {type(k).__name__}")
    if int(k) < 1:
        raise InvalidKError(f"k must be at least 1, got {int(k)}")
    if int(k) > MAX_K:
        raise InvalidArgumentError(f"k must be at most {MAX_K}, got {int(k)}")
    return int(k)


def check_out(arr: object, shape: tuple[int, ...], dtype: npt.DTypeLike, what: str) -> np.ndarray:
    """A caller-supplied output array (Faiss's D=, I=, x= arguments): a numpy
    array of exactly `shape` whose dtype can hold `dtype` values."""
    if not isinstance(arr, np.ndarray):
        raise InvalidTypeError(f"{what} must be a numpy array, got {type(arr).__name__}")
    if tuple(arr.shape) != tuple(shape):
        raise InvalidArgumentError(f"{what} has shape {arr.shape}, expected {tuple(shape)}")
    if arr.dtype != np.dtype(dtype):
        raise InvalidTypeError(f"{what} has dtype {arr.dtype}, expected {np.dtype(dtype)}")
    if not arr.flags.writeable:
        raise InvalidArgumentError(f"{what} is read-only")
    return arr


def check_params(params: object) -> object:
    """A search's `params`: None or a SearchParameters (pybind11 would raise a
    bare TypeError listing the raw overloads)."""
    if params is not None and not isinstance(params, _core.SearchParameters):
        raise InvalidArgumentError(f"params must be a SearchParameters object, got {type(params).__name__}")
    return params


def into(out: np.ndarray | None, result: np.ndarray) -> np.ndarray:
    """`result`, copied into the caller's array `out` (Faiss's D=, I= arguments) when one is given."""
    if out is None:
        return result
    out[...] = result
    return out
