"""Vector transforms with Faiss's API (faiss/VectorTransform.h):

    pca = PCAMatrix(d_in, d_out, eigen_power=0, random_rotation=False)
    pca.train(x); y = pca.apply(x); x2 = pca.reverse_transform(y)

LinearTransform (y = A x + b), RandomRotationMatrix, PCAMatrix (PCA,
whitening with eigen_power=-0.5, PCAR: random rotation after the PCA),
ITQMatrix / ITQTransform, OPQMatrix, NormalizationTransform,
CenteringTransform, RemapDimensionsTransform, HadamardRotation; chain them in
front of an index with IndexPreTransform (factory prefixes PCA{d}, PCAW{d},
PCAR{d}, ITQ[{d}], RR[{d}], Pad{d}, HR, OPQ{M}[_{d}], L2norm).

Vector fields (A, b, mean, eigenvalues, PCAMat, ...) read as numpy copies;
``faiss.copy_array_to_vector(values, t.A)`` or ``t.A = values`` writes them.
"""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import ArrayLike, as_matrix
from ._core import (  # noqa: F401  (re-exported)
    CenteringTransform,
    HadamardRotation,
    IndexPreTransform,
    ITQMatrix,
    ITQTransform,
    LinearTransform,
    NormalizationTransform,
    OPQMatrix,
    PCAMatrix,
    RandomRotationMatrix,
    RemapDimensionsTransform,
    VectorTransform,
    matrix_qr as _matrix_qr,
)
from ._core import InvalidArgumentError
from .compat import FieldArray, ptr_array

__all__ = [
    "VectorTransform", "LinearTransform", "RandomRotationMatrix", "PCAMatrix", "ITQMatrix", "ITQTransform",
    "OPQMatrix", "NormalizationTransform", "CenteringTransform", "RemapDimensionsTransform", "HadamardRotation",
    "IndexPreTransform", "downcast_VectorTransform", "matrix_qr",
]


def _field(name, doc):
    """A property over the bound `_name` copy: reads give a FieldArray that
    copy_array_to_vector writes back through the checked setter."""
    raw = "_" + name

    def get(self):
        return FieldArray.of(getattr(self, raw), lambda a, self=self: setattr(self, raw, a))

    def set_(self, value):
        setattr(self, raw, np.ascontiguousarray(value).reshape(-1))

    return property(get, set_, doc=doc)


for _cls, _name, _doc in [
        (LinearTransform, "A", "the d_out * d_in matrix, row-major (float32)"),
        (LinearTransform, "b", "the d_out bias (empty without bias)"),
        (PCAMatrix, "mean", "the d_in training mean"),
        (PCAMatrix, "eigenvalues", "the d_in covariance eigenvalues, decreasing"),
        (PCAMatrix, "PCAMat", "the eigenvectors, one per row of d_in values"),
        (ITQMatrix, "init_rotation", "optional starting rotation R (d * d doubles, row-major; rotated = x R)"),
        (ITQTransform, "mean", "the d_in training mean"),
        (CenteringTransform, "mean", "the d training mean"),
        (RemapDimensionsTransform, "map", "input dimension of each output dimension (-1: zero)"),
        (HadamardRotation, "signs1", "first sign-flip vector (d_out)"),
        (HadamardRotation, "signs2", "second sign-flip vector (d_out)"),
        (HadamardRotation, "signs3", "third sign-flip vector (d_out)")]:
    setattr(_cls, _name, _field(_name, _doc))
def _read_only(raw: str) -> property:
    return property(lambda self: getattr(self, raw))


for _n in ("signs1", "signs2", "signs3"):  # read-only: fixed by the seed
    setattr(HadamardRotation, _n, _read_only("_" + _n))


def _vt_train(self, x):
    """Train the transform on x (n, d_in)."""
    self._train(as_matrix(x, self.d_in, "training vectors"))


def _vt_apply(self, x: ArrayLike) -> np.ndarray:
    """x (n, d_in) -> transformed (n, d_out) float32."""
    x = as_matrix(x, self.d_in, "vectors")
    return self._apply(x)


def _vt_reverse(self, xt: ArrayLike) -> np.ndarray:
    """Transformed vectors (n, d_out) -> (n, d_in) (exact for orthonormal transforms)."""
    xt = as_matrix(xt, self.d_out, "transformed vectors")
    return self._reverse_transform(xt)


def _vt_reduce(self):
    # transforms pickle through a one-transform IndexPreTransform around an empty flat index
    from . import serialize_index
    holder = IndexPreTransform(self, _core.IndexFlat(self.d_out))
    return _unpickle_transform, (serialize_index(holder),)


def _vt_repr(self):
    return f"<annvil.{type(self).__name__} d_in={self.d_in} d_out={self.d_out} trained={self.is_trained}>"


def _unpickle_transform(data):
    from . import deserialize_index
    return deserialize_index(data).chain[0]


for _name, _fn in [("train", _vt_train), ("apply", _vt_apply), ("apply_py", _vt_apply),
                   ("reverse_transform", _vt_reverse), ("__reduce__", _vt_reduce), ("__repr__", _vt_repr)]:
    setattr(VectorTransform, _name, _fn)


def _lt_transform_transpose(self, y, *args):
    """x = A^T (y - b) for y (n, d_out): (n, d_in).  Faiss's pointer form
    transform_transpose(n, y_ptr, x_ptr) is accepted too."""
    if args:
        n, xout = int(y), args[1]
        yy = ptr_array(args[0], np.float32, n * self.d_out, "y").reshape(n, self.d_out)
        ptr_array(xout, np.float32, n * self.d_in, "x", writable=True)[...] = \
            self._transform_transpose(np.ascontiguousarray(yy)).ravel()
        return None
    return self._transform_transpose(as_matrix(y, self.d_out, "vectors"))


LinearTransform.transform_transpose = _lt_transform_transpose


def downcast_VectorTransform(vt):
    """Identity: annvil returns the most derived transform type already."""
    return vt


def matrix_qr(m, n, a):
    """Faiss's matrix_qr: orthonormalise in place the n vectors of m floats
    held by `a` (float32 array or swig_ptr), Householder QR as LAPACK."""
    flat = ptr_array(a, np.float32, int(m) * int(n), "a", writable=True)
    if int(n) > int(m):
        raise InvalidArgumentError(f"matrix_qr needs m >= n, got m={m} n={n}")
    buf = np.ascontiguousarray(flat)
    _matrix_qr(int(m), int(n), buf)
    flat[...] = buf


class _Chain(list):
    """The transforms of an IndexPreTransform; also answers Faiss's vector API
    (chain.at(i), chain.size())."""

    def at(self, i):
        return self[i]

    def size(self):
        return len(self)


def _pt_chain(self):
    return _Chain(self._chain)


def _pt_apply_chain(self, x: ArrayLike) -> np.ndarray:
    """x (n, d) through every transform of the chain: (n, index.d)."""
    return self._apply_chain(as_matrix(x, self.d, "vectors"))  # each transform checks it is trained


IndexPreTransform.chain = property(_pt_chain)
IndexPreTransform.apply_chain = _pt_apply_chain
IndexPreTransform.apply = _pt_apply_chain


def write_VectorTransform(vt, f):
    """Write one transform to a path or IOWriter (annvil's file format: the
    transform in a one-transform IndexPreTransform)."""
    from . import IndexFlat, write_index
    if not isinstance(vt, VectorTransform):
        raise InvalidArgumentError(f"write_VectorTransform needs a VectorTransform, got {type(vt).__name__}")
    write_index(IndexPreTransform(vt, IndexFlat(vt.d_out)), f)


def read_VectorTransform(f):
    """Read a transform written by write_VectorTransform (path or IOReader)."""
    from . import IndexFileError, read_index
    idx = read_index(f)
    if not isinstance(idx, IndexPreTransform) or len(idx._chain) != 1:
        raise IndexFileError(f"not a vector transform file (found {type(idx).__name__})")
    return idx._chain[0]


__all__ += ["write_VectorTransform", "read_VectorTransform"]
