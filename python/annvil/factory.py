"""index_factory: build an index from a Faiss-style description string.

    index = annvil.index_factory(128, "OPQ16_64,IVF1024,PQ16x4fs,RFlat")

The grammar is the subset of Faiss's that annvil implements (see GRAMMAR).  The
string is read as

    [IDMap|IDMap2,] [transform,]* body [,RFlat | ,Refine(<description>)]

and the resulting object nests the same way as Faiss's: IDMap outermost, then
the refinement wrapper, then IndexPreTransform around the body.  Index classes
are looked up on the annvil module at call time, so a build that lacks a family
(say HNSW) still parses every string and says which class is missing.
"""
from __future__ import annotations

import re
import sys

from ._core import METRIC_INNER_PRODUCT, METRIC_L2, InvalidArgumentError

__all__ = ["index_factory"]

GRAMMAR = """\
  Flat                          exact search (IndexFlat)
  PQ{M}[x{nbits}]               product quantizer (IndexPQ), nbits defaults to 8
  PQ{M}x4fs                     4-bit fast-scan PQ (IndexPQFastScan)
  SQ8 | SQ4 | SQ6 | SQfp16 | SQbf16   scalar quantizer (IndexScalarQuantizer)
  IVF{nlist}[_HNSW{M}],Flat     inverted file (IndexIVFFlat)
  IVF{nlist},PQ{M}[x{nbits}]    (IndexIVFPQ)
  IVF{nlist},PQ{M}x4fs          (IndexIVFPQFastScan)
  IVF{nlist},SQ8|SQfp16|...     (IndexIVFScalarQuantizer)
  HNSW[{M}][,Flat]              graph index (IndexHNSWFlat), M defaults to 32
  HNSW{M},SQ8|SQfp16|...        (IndexHNSWSQ)
  HNSW{M},PQ{m}[x{nbits}]       (IndexHNSWPQ)
prefixes (any number of transforms, IDMap first):
  IDMap, | IDMap2,              user ids (IndexIDMap / IndexIDMap2)
  OPQ{M}[_{dout}],              OPQ rotation (OPQMatrix) in an IndexPreTransform
  L2norm,                       L2 normalisation (NormalizationTransform)
suffixes:
  ,RFlat | ,Refine(Flat)        re-rank with exact distances (IndexRefineFlat)
  ,Refine({description})        re-rank with another index (IndexRefine)
examples: "Flat", "IDMap,Flat", "IVF1024,PQ16x4fs,RFlat", "OPQ16_64,IVF256,PQ16",
          "L2norm,HNSW32", "IVF256,SQ8"\
"""

# Faiss's ScalarQuantizer.QuantizerType values, used when the SQ family's
# enum cannot be found on the module.
_SQ_TYPES = {
    "SQ8": ("QT_8bit", 0),
    "SQ4": ("QT_4bit", 1),
    "SQ6": ("QT_6bit", 6),
    "SQfp16": ("QT_fp16", 4),
    "SQbf16": ("QT_bf16", 7),
}

_RE_IVF = re.compile(r"IVF(\d+)(?:_HNSW(\d+))?$")
_RE_PQ = re.compile(r"PQ(\d+)(?:x(\d+))?(fs(r)?(?:_(\d+))?|np)?$")  # fs[r][_bbs]: fast-scan; np: no polysemous
_RE_HNSW = re.compile(r"HNSW(\d*)$")
_RE_OPQ = re.compile(r"OPQ(\d+)(?:_(\d+))?$")
_RE_REFINE = re.compile(r"Refine\((.*)\)$")


class _Builder:
    """Parses one description and builds it from the classes of `ns` (the annvil
    module normally; tests pass faiss to check that the nesting matches)."""

    def __init__(self, ns, description, check_dims=True):
        self.ns = ns
        self.description = description
        self.check_dims = check_dims

    # ---- errors and lookups ----
    def fail(self, why):
        raise InvalidArgumentError(
            f"index_factory: cannot build '{self.description}': {why}\nsupported grammar:\n{GRAMMAR}")

    def cls(self, name):
        c = getattr(self.ns, name, None)
        if c is None:
            have = sorted(n for n in _ALL_CLASSES if getattr(self.ns, n, None) is not None)
            raise InvalidArgumentError(
                f"index_factory: '{self.description}' needs {name}, which this build of "
                f"{getattr(self.ns, '__name__', 'annvil')} does not have; available index classes: "
                f"{', '.join(have)}")
        return c

    def sq_type(self, token):
        qt_name, qt_value = _SQ_TYPES[token]
        sq = getattr(self.ns, "ScalarQuantizer", None)
        if sq is not None:
            if hasattr(sq, qt_name):
                return getattr(sq, qt_name)
            have = [q for q, _ in _SQ_TYPES.values() if hasattr(sq, q)]
            raise InvalidArgumentError(
                f"index_factory: '{self.description}' needs ScalarQuantizer.{qt_name} ({token}), which this "
                f"build does not have; it has {', '.join(have) or 'none'}")
        return getattr(self.ns, "ScalarQuantizer_" + qt_name, qt_value)

    def parse_pq(self, token, d):
        m = _RE_PQ.match(token)
        M, nbits = int(m.group(1)), int(m.group(2) or 8)
        fast_scan = (m.group(3) or "np") != "np"
        self.fs_residual, self.fs_bbs = m.group(4) is not None, int(m.group(5) or 32)
        if fast_scan and (self.fs_bbs <= 0 or self.fs_bbs % 32):
            self.fail(f"{token}: the fast-scan block size must be a positive multiple of 32")
        if M <= 0 or (self.check_dims and d % M != 0):
            self.fail(f"{token}: the dimension {d} must be a multiple of the number of sub-quantizers M={M}")
        if fast_scan and nbits != 4:
            self.fail(f"{token}: fast-scan PQ ('fs') needs 4 bits per code (PQ{M}x4fs)")
        if not 1 <= nbits <= 16:
            self.fail(f"{token}: nbits must be in 1..16")
        return M, nbits, fast_scan

    # ---- the pieces ----
    def flat(self, d, metric):
        return self.cls("IndexFlat")(d, metric)

    def body(self, tokens, d, metric):
        """The main index (no transforms, no refine, no IDMap)."""
        t0 = tokens[0]
        rest = tokens[1:]
        if t0 == "Flat" and not rest:
            return self.flat(d, metric)
        if _RE_PQ.match(t0) and not rest:
            M, nbits, fs = self.parse_pq(t0, d)
            if fs:
                return self.cls("IndexPQFastScan")(d, M, 4, metric, self.fs_bbs)
            return self.cls("IndexPQ")(d, M, nbits, metric)
        if t0 in _SQ_TYPES and not rest:
            return self.cls("IndexScalarQuantizer")(d, self.sq_type(t0), metric)
        m = _RE_IVF.match(t0)
        if m:
            nlist = int(m.group(1))
            if nlist <= 0:
                self.fail("IVF needs at least one list")
            if len(rest) != 1:
                self.fail(f"{t0} must be followed by exactly one encoding: Flat, PQ{{M}}[x{{nbits}}], "
                          "PQ{M}x4fs or SQ8/SQfp16")
            enc = rest[0]
            if m.group(2):
                quantizer = self.cls("IndexHNSWFlat")(d, int(m.group(2)), metric)
            else:
                quantizer = self.flat(d, metric)
            if enc == "Flat":
                return self.cls("IndexIVFFlat")(quantizer, d, nlist, metric)
            if _RE_PQ.match(enc):
                M, nbits, fs = self.parse_pq(enc, d)
                if fs:
                    index = self.cls("IndexIVFPQFastScan")(quantizer, d, nlist, M, 4, metric, self.fs_bbs)
                    if index is not None:  # None: grammar check without classes
                        index.by_residual = self.fs_residual
                    return index
                return self.cls("IndexIVFPQ")(quantizer, d, nlist, M, nbits, metric)
            if enc in _SQ_TYPES:
                return self.cls("IndexIVFScalarQuantizer")(quantizer, d, nlist, self.sq_type(enc), metric)
            self.fail(f"unknown IVF encoding '{enc}'")
        m = _RE_HNSW.match(t0)
        if m:
            M = int(m.group(1) or 32)
            if M <= 0:
                self.fail("HNSW needs M >= 1")
            if len(rest) > 1:
                self.fail(f"{t0} takes at most one storage token (Flat, SQ8, PQ{{M}})")
            enc = rest[0] if rest else "Flat"
            if enc == "Flat":
                return self.cls("IndexHNSWFlat")(d, M, metric)
            if enc in _SQ_TYPES:
                return self.cls("IndexHNSWSQ")(d, self.sq_type(enc), M, metric)
            if _RE_PQ.match(enc):
                pq_m, nbits, fs = self.parse_pq(enc, d)
                if fs:
                    self.fail("HNSW storage cannot be fast-scan PQ")
                return self.cls("IndexHNSWPQ")(d, pq_m, M, nbits, metric)
            self.fail(f"unknown HNSW storage '{enc}'")
        self.fail(f"unknown index '{','.join(tokens)}'")

    def build(self, d, tokens, metric):
        if not tokens or any(t == "" for t in tokens):
            self.fail("empty component")
        idmap = None
        if tokens[0] in ("IDMap", "IDMap2"):
            idmap, tokens = tokens[0], tokens[1:]
        refine = None
        if tokens and (tokens[-1] == "RFlat" or _RE_REFINE.match(tokens[-1])):
            refine, tokens = tokens[-1], tokens[:-1]
        transforms = []
        d_cur = d
        while tokens:
            t = tokens[0]
            m = _RE_OPQ.match(t)
            if t == "L2norm":
                transforms.append(("L2norm", d_cur, d_cur))
            elif m:
                M, d_out = int(m.group(1)), int(m.group(2) or d_cur)
                if M <= 0 or d_out <= 0 or (self.check_dims and d_out % M != 0):
                    self.fail(f"{t}: the output dimension {d_out} must be a positive multiple of M={M}")
                transforms.append(("OPQ", M, d_cur, d_out))
                d_cur = d_out
            else:
                break
            tokens = tokens[1:]
        if not tokens:
            self.fail("no index after the prefixes")
        index = self.body(tokens, d_cur, metric)
        # IndexPreTransform takes one transform: nest them, innermost last
        for tr in reversed(transforms):
            if tr[0] == "L2norm":
                vt = self.cls("NormalizationTransform")(tr[1], 2.0)
            else:
                vt = self.cls("OPQMatrix")(tr[2], tr[1], tr[3])
            index = self.cls("IndexPreTransform")(vt, index)
        if refine is not None:
            m = _RE_REFINE.match(refine)
            inner = m.group(1) if m else "Flat"
            if inner == "Flat" and (m is None or getattr(self.ns, "IndexRefine", None) is None):
                index = self.cls("IndexRefineFlat")(index)
            else:
                refine_index = self.build(d, _split(inner, self), metric)
                index = self.cls("IndexRefine")(index, refine_index)
        if idmap is not None:
            index = self.cls("IndexIDMap" if idmap == "IDMap" else "IndexIDMap2")(index)
        return index


_ALL_CLASSES = (
    "IndexFlat", "IndexPQ", "IndexPQFastScan", "IndexScalarQuantizer", "IndexIVFFlat", "IndexIVFPQ",
    "IndexIVFPQFastScan", "IndexIVFScalarQuantizer", "IndexHNSWFlat", "IndexHNSWSQ", "IndexHNSWPQ",
    "IndexPreTransform", "OPQMatrix", "NormalizationTransform", "IndexRefineFlat", "IndexRefine",
    "IndexIDMap", "IndexIDMap2",
)


def _split(description, builder):
    """Split at commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in description:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                builder.fail("unbalanced parentheses")
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        builder.fail("unbalanced parentheses")
    parts.append("".join(cur).strip())
    return parts


def _build(d, description, metric, ns, check_dims=True):
    if isinstance(d, bool) or not isinstance(d, int) and not hasattr(d, "__index__"):
        raise InvalidArgumentError(f"index_factory: d must be an integer, got {type(d).__name__}")
    d = int(d)
    if d <= 0:
        raise InvalidArgumentError(f"index_factory: d must be positive, got {d}")
    if not isinstance(description, str):
        raise InvalidArgumentError(
            f"index_factory: description must be a string, got {type(description).__name__}")
    if int(metric) not in (METRIC_L2, METRIC_INNER_PRODUCT):
        raise InvalidArgumentError(
            f"index_factory: unsupported metric {metric!r}; use METRIC_L2 or METRIC_INNER_PRODUCT")
    b = _Builder(ns, description, check_dims)
    return b.build(d, _split(description, b), int(metric))


def index_factory(d, description, metric=METRIC_L2):
    """Build an (untrained, empty) index from a Faiss factory string.

    d: vector dimension; description: e.g. "IVF1024,PQ16x4fs,RFlat";
    metric: METRIC_L2 or METRIC_INNER_PRODUCT.  Raises InvalidArgumentError
    for strings outside the supported grammar (listed in the message) or
    when this build lacks an index class the string needs."""
    return _build(d, description, metric, sys.modules[__package__])


class _AnyClass:
    """Stands in for every class, to check a description's grammar alone."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _AnyClass()

    def __call__(self, *args, **kwargs):
        return None


def check_description(description, d=None):
    """Raise InvalidArgumentError when `description` is outside the factory
    grammar (whether or not this build has the classes it needs)."""
    _build(d or 1 << 12, description, METRIC_L2, _AnyClass(), check_dims=d is not None)


def supported_classes(ns=None):
    """Names of the factory's index classes present in this build."""
    ns = ns or sys.modules[__package__]
    return [n for n in _ALL_CLASSES if getattr(ns, n, None) is not None]
