"""index_factory: build an index from a Faiss-style description string.

    index = annvil.index_factory(128, "OPQ16_64,IVF1024,PQ16x4fs,RFlat")

A description is a list of components separated by commas (commas inside
parentheses do not split), read as

    [IDMap|IDMap2,] [transform,]* [IDMap|IDMap2,] body [,RFlat | ,Refine(<description>)] [,IDMap|,IDMap2]

and the result nests as in Faiss: IDMap outermost, then the refinement
wrapper, then IndexPreTransform around the body.  The body is one component
(``Flat``, ``PQ16``, ``HNSW32``...) or an IVF coarse quantizer followed by an
encoding (``IVF1024,PQ16``).

Each kind of component is one entry of a table below (_TRANSFORMS, _BODIES,
_IVF_ENCODINGS, _HNSW_STORAGES): a regular expression and a function building
the piece, so a family adds its names with one entry.  Index classes are
looked up on the annvil module at call time: a build that lacks a family still
parses every string and names the missing class.  A string outside the grammar
raises InvalidArgumentError naming the component it could not read.
"""
from __future__ import annotations

import re
import sys

from ._core import METRIC_INNER_PRODUCT, METRIC_L2, Index, InvalidArgumentError

__all__ = ["index_factory"]

GRAMMAR = """\
  Flat                            exact search (IndexFlat)
  PQ{M}[x{nbits}][np]             product quantizer (IndexPQ), nbits defaults to 8
  PQ{M}x4fs[_{bbs}]               4-bit fast-scan PQ (IndexPQFastScan)
  SQ8 | SQ4 | SQ6 | SQfp16 | SQbf16 | SQ8_direct ...   scalar quantizer (IndexScalarQuantizer)
  IVF{nlist}[k|M][_HNSW[{M}]],Flat  inverted file (IndexIVFFlat); k = 1024, M = 1024^2
  IVF{nlist}({description}),...   IVF with the coarse quantizer built from a description
  IVF{nlist},PQ{M}[x{nbits}][np]  (IndexIVFPQ)
  IVF{nlist},PQ{M}x4fs[r][_{bbs}] (IndexIVFPQFastScan; r: residuals)
  IVF{nlist},SQ8|SQfp16|...       (IndexIVFScalarQuantizer)
  HNSW[{M}][,Flat]                graph index (IndexHNSWFlat), M defaults to 32
  HNSW{M},SQ8|... | HNSW{M}_SQ8   (IndexHNSWSQ)
  HNSW{M},PQ{m}[x{nbits}][np]     (IndexHNSWPQ)
  QG[{R}][,PQ{m}[x4]]             quantized-graph index (IndexQG): out-degree R (default 32),
                                  m 4-bit sub-quantizers (default ceil(d / 4), d if d <= 16; any d)
prefixes (any number of transforms, IDMap first):
  IDMap, | IDMap2,                user ids (IndexIDMap / IndexIDMap2); also as a suffix
  OPQ{M}[_{dout}],                OPQ rotation (OPQMatrix) in an IndexPreTransform
  L2norm, | L2Norm,               L2 normalisation (NormalizationTransform)
  PCA{d}, | PCAW{d}, | PCAR{d}, | PCAWR{d},  PCA to d dims (PCAMatrix; W: whitened, R: random rotation)
  ITQ[{d}],                       ITQ rotation (ITQTransform; with {d}: PCA to d dims first)
  RR[{d}],                        random rotation (RandomRotationMatrix)
  Pad{d},                         zero-pad to d dims (RemapDimensionsTransform)
  HR,                             Hadamard rotation (HadamardRotation)
  Center,                         subtract the mean (CenteringTransform)
LSH:
  LSH[{nbits}][r][t]              sign bits + Hamming search (IndexLSH; r: rotate, t: train thresholds)
  LSHMT{ntables}x{nbits}          multi-table LSH with multi-probe and exact re-ranking (IndexLSHMultiTable)
suffixes:
  ,RFlat | ,Refine(Flat)          re-rank with exact distances (IndexRefineFlat)
  ,Refine({description})          re-rank with another index (IndexRefine)
  ,IDMap | ,IDMap2                user ids
examples: "Flat", "IDMap,Flat", "Flat,IDMap2", "IVF1024,PQ16x4fs,RFlat", "OPQ16_64,IVF256,PQ16",
          "L2norm,HNSW32", "IVF4096_HNSW32,SQ8", "IVF3k,Flat"\
"""

# Faiss's ScalarQuantizer.QuantizerType names and values (looked up on the
# ScalarQuantizer class when the build has it)
_SQ_TYPES = {
    "SQ8": ("QT_8bit", 0),
    "SQ4": ("QT_4bit", 1),
    "SQ8_uniform": ("QT_8bit_uniform", 2),
    "SQ4_uniform": ("QT_4bit_uniform", 3),
    "SQfp16": ("QT_fp16", 4),
    "SQ8_direct": ("QT_8bit_direct", 5),
    "SQ6": ("QT_6bit", 6),
    "SQbf16": ("QT_bf16", 7),
    "SQ8_direct_signed": ("QT_8bit_direct_signed", 8),
}

_SIZE_SUFFIX = {"": 1, "k": 1024, "M": 1024 * 1024}
_RE_PQ = re.compile(r"PQ(\d+)(?:x(\d+))?(np)?$")
_RE_PQFS = re.compile(r"PQ(\d+)x4fs(r?)(?:_(\d+))?$")
_RE_IVF = re.compile(r"IVF(\d+)([kM]?)(?:_HNSW(\d*))?$")
_RE_IVF_PAREN = re.compile(r"IVF(\d+)([kM]?)\((.*)\)$")
_RE_IMI = re.compile(r"IMI(\d+)x(\d+)$")  # inverted multi-index: MultiIndexQuantizer(d, M, nbits)
_RE_HNSW = re.compile(r"HNSW(\d*)(?:_(.+))?$")
_RE_QG = re.compile(r"QG(\d*)$")
_RE_REFINE = re.compile(r"Refine\((.*)\)$")
_IDMAPS = {"IDMap": "IndexIDMap", "IDMap2": "IndexIDMap2"}


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

    def check_pq(self, token, d, M, nbits):
        if M <= 0 or (self.check_dims and d % M != 0):
            self.fail(f"{token}: the dimension {d} must be a multiple of the number of sub-quantizers M={M}")
        if not 1 <= nbits <= 16:
            self.fail(f"{token}: nbits must be in 1..16")

    def pq_args(self, m, token, d):
        """(M, nbits, polysemous) of a PQ{M}[x{nbits}][np] match."""
        M, nbits = int(m.group(1)), int(m.group(2) or 8)
        self.check_pq(token, d, M, nbits)
        return M, nbits, m.group(3) is None

    def fastscan_args(self, m, token, d):
        """(M, by_residual, bbs) of a PQ{M}x4fs[r][_{bbs}] match."""
        M, by_residual, bbs = int(m.group(1)), bool(m.group(2)), int(m.group(3) or 32)
        self.check_pq(token, d, M, 4)
        if bbs <= 0 or bbs % 32:
            self.fail(f"{token}: the fast-scan block size must be a positive multiple of 32, got {bbs}")
        return M, by_residual, bbs

    # ---- the pieces ----
    def flat(self, d, metric):
        return self.cls("IndexFlat")(d, metric)

    def body(self, tokens, d, metric):
        """The main index (no transforms, no refine, no IDMap)."""
        t0, rest = tokens[0], tokens[1:]
        m = _RE_IVF.match(t0) or _RE_IVF_PAREN.match(t0)
        if m:
            return self.ivf(m, t0, rest, d, metric)
        m = _RE_IMI.match(t0)
        if m:
            M, nbits = int(m.group(1)), int(m.group(2))
            return self.ivf(m, t0, rest, d, metric, quantizer=self.cls("MultiIndexQuantizer")(d, M, nbits),
                            nlist=1 << (M * nbits))
        if len(rest) > 1 or (rest and not (_RE_HNSW.match(t0) or _RE_QG.match(t0))):
            self.fail(f"unknown index '{','.join(tokens)}': '{rest[-1]}' cannot follow '{t0}'")
        for rx, build in _BODIES:
            m = rx.match(t0)
            if m:
                return build(self, m, t0, rest, d, metric)
        self.fail(f"unknown index component '{t0}'")

    def ivf(self, m, t0, rest, d, metric, quantizer=None, nlist=None):
        if nlist is None:
            nlist = int(m.group(1)) * _SIZE_SUFFIX[m.group(2)]
        if nlist <= 0:
            self.fail("IVF needs at least one list")
        if len(rest) != 1:
            self.fail(f"{t0} must be followed by exactly one encoding: Flat, PQ{{M}}[x{{nbits}}], "
                      "PQ{M}x4fs or SQ8/SQfp16...")
        if quantizer is not None:
            pass
        elif m.re is _RE_IVF_PAREN:
            quantizer = self.build(d, _split(m.group(3), self), metric)
        elif m.group(3) is not None:
            quantizer = self.cls("IndexHNSWFlat")(d, int(m.group(3) or 32), metric)
        else:
            quantizer = self.flat(d, metric)
        enc = rest[0]
        for rx, build in _IVF_ENCODINGS:
            em = rx.match(enc)
            if em:
                index = build(self, em, enc, quantizer, d, nlist, metric)
                if metric == METRIC_INNER_PRODUCT and hasattr(index, "cp"):
                    index.cp.spherical = True  # as Faiss: unit-norm coarse centroids for IP
                return index
        self.fail(f"unknown IVF encoding '{enc}'")

    def transform(self, token, d_in):
        """(vector transform, d_out) for a prefix component, or None."""
        for rx, build in _TRANSFORMS:
            m = rx.match(token)
            if m:
                return build(self, m, token, d_in)
        return None

    def build(self, d, tokens, metric):
        if not tokens or any(t == "" for t in tokens):
            self.fail("empty component")
        idmap = None
        if tokens[0] in _IDMAPS:
            idmap, tokens = tokens[0], tokens[1:]
        if tokens and tokens[-1] in _IDMAPS:
            if idmap is not None:
                self.fail("IDMap given twice")
            idmap, tokens = tokens[-1], tokens[:-1]
        refine = None
        if tokens and (tokens[-1] == "RFlat" or _RE_REFINE.match(tokens[-1])):
            refine, tokens = tokens[-1], tokens[:-1]
        transforms = []
        d_cur = d
        while tokens:
            tr = self.transform(tokens[0], d_cur)
            if tr is None:
                break
            transforms.append(tr[0])
            d_cur = tr[1]
            tokens = tokens[1:]
        inner_idmap = None  # "PCA16,IDMap,SQ8": the ids map sits inside the transforms (as Faiss)
        if transforms and tokens and tokens[0] in _IDMAPS:
            if idmap is not None:
                self.fail("IDMap given twice")
            inner_idmap, tokens = tokens[0], tokens[1:]
        if not tokens:
            self.fail("no index after the prefixes")
        index = self.body(tokens, d_cur, metric)
        if inner_idmap is not None:
            index = self.cls(_IDMAPS[inner_idmap])(index)
        if transforms:
            index = self.pretransform(transforms, index)
        if refine is not None:
            m = _RE_REFINE.match(refine)
            inner = m.group(1) if m else "Flat"
            if inner == "Flat" and (m is None or getattr(self.ns, "IndexRefine", None) is None):
                index = self.cls("IndexRefineFlat")(index)
            else:
                refine_index = self.build(d, _split(inner, self), metric)
                index = self.cls("IndexRefine")(index, refine_index)
        if idmap is not None:
            index = self.cls(_IDMAPS[idmap])(index)
        return index

    def pretransform(self, transforms, index):
        """IndexPreTransform applying transforms (first first) before index."""
        pt = self.cls("IndexPreTransform")
        if hasattr(pt, "prepend_transform"):
            index = pt(transforms[-1], index)
            for vt in reversed(transforms[:-1]):
                index.prepend_transform(vt)
            return index
        for vt in reversed(transforms):  # nest one transform per level
            index = pt(vt, index)
        return index


def _set_polysemous(index, polysemous):
    """Faiss trains a polysemous code ordering unless 'np' is given; annvil
    never does (codes keep k-means order), the flag is kept for clients."""
    try:
        index.do_polysemous_training = polysemous
    except AttributeError:
        pass
    return index


# ---- the tables: one entry per kind of component ----------------------------------------
def _t_l2norm(b, m, token, d):
    return b.cls("NormalizationTransform")(d, 2.0), d


def _t_opq(b, m, token, d):
    M, d_out = int(m.group(1)), int(m.group(2) or d)
    if M <= 0 or d_out <= 0 or (b.check_dims and d_out % M != 0):
        b.fail(f"{token}: the output dimension {d_out} must be a positive multiple of M={M}")
    return b.cls("OPQMatrix")(d, M, d_out), d_out


def _t_pca(b, m, token, d):
    white, rot, d_out = bool(m.group(1)), bool(m.group(2)), int(m.group(3))
    if d_out <= 0 or (b.check_dims and d_out > d):
        b.fail(f"{token}: PCA can output 1 to d={d} dimensions, got {d_out}")
    return b.cls("PCAMatrix")(d, d_out, -0.5 if white else 0.0, rot), d_out


def _t_itq(b, m, token, d):
    d_out = int(m.group(1)) if m.group(1) else d
    if d_out <= 0 or (b.check_dims and d_out > d):
        b.fail(f"{token}: ITQ can output 1 to d={d} dimensions, got {d_out}")
    return b.cls("ITQTransform")(d, d_out, m.group(1) is not None), d_out


def _t_rr(b, m, token, d):
    d_out = int(m.group(1)) if m.group(1) else d
    if d_out <= 0:
        b.fail(f"{token}: the output dimension must be positive")
    return b.cls("RandomRotationMatrix")(d, d_out), d_out


def _t_pad(b, m, token, d):
    d_out = max(int(m.group(1)), d)
    return b.cls("RemapDimensionsTransform")(d, d_out, False), d_out


def _t_hr(b, m, token, d):
    seed = int(m.group(1)) if m.group(1) else 12345
    t = b.cls("HadamardRotation")(d, seed)
    d_out = 1
    while d_out < d:
        d_out *= 2
    return t, d_out


def _t_center(b, m, token, d):
    return b.cls("CenteringTransform")(d), d


# (regex, build(builder, match, token, d_in) -> (transform, d_out))
_TRANSFORMS = [
    (re.compile(r"L2[nN]orm$"), _t_l2norm),
    (re.compile(r"OPQ(\d+)(?:_(\d+))?$"), _t_opq),
    (re.compile(r"PCA(W?)(R?)(\d+)$"), _t_pca),
    (re.compile(r"ITQ(\d+)?$"), _t_itq),
    (re.compile(r"RR(\d+)?$"), _t_rr),
    (re.compile(r"Pad(\d+)$"), _t_pad),
    (re.compile(r"HR(\d+)?$"), _t_hr),
    (re.compile(r"Center$"), _t_center),
]


def _b_flat(b, m, token, rest, d, metric):
    return b.flat(d, metric)


def _b_pq(b, m, token, rest, d, metric):
    M, nbits, poly = b.pq_args(m, token, d)
    return _set_polysemous(b.cls("IndexPQ")(d, M, nbits, metric), poly)


def _b_pqfs(b, m, token, rest, d, metric):
    M, by_residual, bbs = b.fastscan_args(m, token, d)
    if by_residual:
        b.fail(f"{token}: 'r' (residual encoding) needs an IVF index")
    return b.cls("IndexPQFastScan")(d, M, 4, metric, bbs)


def _b_sq(b, m, token, rest, d, metric):
    return b.cls("IndexScalarQuantizer")(d, b.sq_type(token), metric)


def _b_hnsw(b, m, token, rest, d, metric):
    M = int(m.group(1) or 32)
    if M <= 0:
        b.fail("HNSW needs M >= 1")
    if m.group(2) is not None and rest:
        b.fail(f"{token} already names its storage; '{rest[0]}' cannot follow it")
    enc = m.group(2) or (rest[0] if rest else "Flat")
    for rx, build in _HNSW_STORAGES:
        sm = rx.match(enc)
        if sm:
            return build(b, sm, enc, d, M, metric)
    b.fail(f"unknown HNSW storage '{enc}'")


def _b_qg(b, m, token, rest, d, metric):
    # QG{R}[,PQ{m}[x4]]: annvil's quantized-graph index (IndexQG), R = out-degree
    R = int(m.group(1) or 32)
    if R < 4 or R % 2:
        b.fail(f"{token}: the out-degree R must be even and >= 4")
    pq_m = 0
    if rest:
        pm = _RE_PQ.match(rest[0])
        if not pm or (pm.group(2) is not None and int(pm.group(2)) != 4) or pm.group(3):
            b.fail(f"{token} takes its neighbour codes as PQ{{m}} or PQ{{m}}x4 (4-bit), got '{rest[0]}'")
        pq_m = int(pm.group(1))
        if pq_m <= 0:
            b.fail(f"{rest[0]}: needs at least one sub-quantizer")
    return b.cls("IndexQG")(d, R, pq_m, metric)


def _b_lsh(b, m, token, rest, d, metric):
    if metric != METRIC_L2:
        b.fail(f"{token}: IndexLSH supports METRIC_L2 only (as Faiss)")
    nbits = int(m.group(1)) if m.group(1) else d
    if nbits <= 0:
        b.fail(f"{token}: nbits must be positive")
    rotate, train_t = bool(m.group(2)), bool(m.group(3))
    if not rotate and b.check_dims and nbits > d:
        b.fail(f"{token}: without rotation (r) nbits={nbits} must not exceed d={d}")
    return b.cls("IndexLSH")(d, nbits, rotate, train_t)


def _b_lshmt(b, m, token, rest, d, metric):
    ntables, nbits = int(m.group(1)), int(m.group(2))
    if not 1 <= ntables <= 1024 or not 1 <= nbits <= 32:
        b.fail(f"{token}: needs 1..1024 tables of 1..32 bits")
    return b.cls("IndexLSHMultiTable")(d, ntables, nbits, metric)


# (regex, build(builder, match, token, rest, d, metric) -> index); `rest` holds
# at most one more component (only HNSW takes one)
_BODIES = [
    (re.compile(r"Flat$"), _b_flat),
    (_RE_PQ, _b_pq),
    (_RE_PQFS, _b_pqfs),
    (re.compile("(" + "|".join(_SQ_TYPES) + ")$"), _b_sq),
    (_RE_HNSW, _b_hnsw),
    (_RE_QG, _b_qg),
    (re.compile(r"LSHMT(\d+)x(\d+)$"), _b_lshmt),
    (re.compile(r"LSH(\d*)(r?)(t?)$"), _b_lsh),
]


def _h_flat(b, m, enc, d, M, metric):
    return b.cls("IndexHNSWFlat")(d, M, metric)


def _h_sq(b, m, enc, d, M, metric):
    return b.cls("IndexHNSWSQ")(d, b.sq_type(enc), M, metric)


def _h_pq(b, m, enc, d, M, metric):
    pq_m, nbits, poly = b.pq_args(m, enc, d)
    return b.cls("IndexHNSWPQ")(d, pq_m, M, nbits, metric)


# (regex, build(builder, match, token, d, M, metric) -> index)
_HNSW_STORAGES = [
    (re.compile(r"Flat$"), _h_flat),
    (re.compile("(" + "|".join(_SQ_TYPES) + ")$"), _h_sq),
    (_RE_PQ, _h_pq),
]


def _e_flat(b, m, enc, q, d, nlist, metric):
    return b.cls("IndexIVFFlat")(q, d, nlist, metric)


def _e_pq(b, m, enc, q, d, nlist, metric):
    M, nbits, poly = b.pq_args(m, enc, d)
    return _set_polysemous(b.cls("IndexIVFPQ")(q, d, nlist, M, nbits, metric), poly)


def _e_pqfs(b, m, enc, q, d, nlist, metric):
    M, by_residual, bbs = b.fastscan_args(m, enc, d)
    index = b.cls("IndexIVFPQFastScan")(q, d, nlist, M, 4, metric, bbs)
    if by_residual:
        index.by_residual = True
    return index


def _e_sq(b, m, enc, q, d, nlist, metric):
    return b.cls("IndexIVFScalarQuantizer")(q, d, nlist, b.sq_type(enc), metric)


# (regex, build(builder, match, token, quantizer, d, nlist, metric) -> index)
_IVF_ENCODINGS = [
    (re.compile(r"Flat$"), _e_flat),
    (_RE_PQ, _e_pq),
    (_RE_PQFS, _e_pqfs),
    (re.compile("(" + "|".join(_SQ_TYPES) + ")$"), _e_sq),
]


_ALL_CLASSES = (
    "IndexFlat", "IndexPQ", "IndexPQFastScan", "IndexScalarQuantizer", "IndexIVFFlat", "IndexIVFPQ",
    "IndexIVFPQFastScan", "IndexIVFScalarQuantizer", "IndexHNSWFlat", "IndexHNSWSQ", "IndexHNSWPQ",
    "IndexQG", "IndexPreTransform", "OPQMatrix", "NormalizationTransform", "IndexRefineFlat", "IndexRefine",
    "IndexIDMap", "IndexIDMap2", "PCAMatrix", "ITQTransform", "RandomRotationMatrix", "RemapDimensionsTransform",
    "HadamardRotation", "CenteringTransform", "IndexLSH", "IndexLSHMultiTable",
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
    supported = tuple(getattr(ns, "_FACTORY_METRICS", (METRIC_L2, METRIC_INNER_PRODUCT)))
    if int(metric) not in supported:
        raise InvalidArgumentError(
            f"index_factory: unsupported metric {metric!r}; use METRIC_L2 or METRIC_INNER_PRODUCT")
    b = _Builder(ns, description, check_dims)
    return b.build(d, _split(description, b), int(metric))


def index_factory(d: int, description: str, metric: int = METRIC_L2) -> Index:
    """Build an (untrained, empty) index from a Faiss factory string.

    d: vector dimension; description: e.g. "IVF1024,PQ16x4fs,RFlat";
    metric: METRIC_L2 or METRIC_INNER_PRODUCT.  Raises InvalidArgumentError
    for strings outside the supported grammar (listed in the message) or
    when this build lacks an index class the string needs."""
    return _build(d, description, metric, sys.modules[__package__])


class _AnyClass:
    """Stands in for every class, to check a description's grammar alone."""

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_FACTORY_METRICS", "prepend_transform"):
            raise AttributeError(name)
        return _AnyClass()

    def __setattr__(self, name, value):
        pass

    def __call__(self, *args, **kwargs):
        return _AnyClass()


def check_description(description: str, d: int | None = None) -> None:
    """Raise InvalidArgumentError when `description` is outside the factory
    grammar (whether or not this build has the classes it needs)."""
    _build(d or 1 << 12, description, METRIC_L2, _AnyClass(), check_dims=d is not None)


def supported_classes(ns: object = None) -> list[str]:
    """Names of the factory's index classes present in this build."""
    ns = ns or sys.modules[__package__]
    return [n for n in _ALL_CLASSES if getattr(ns, n, None) is not None]
