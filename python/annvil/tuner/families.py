"""The index families annvil.tune searches, one class each.

A family says which classes it needs, which build parameters the sampler
chooses (each a categorical list, named "<family>_<param>"), which builds
make up the starting set for given data statistics, how a build maps to a
factory string, and its monotone search parameters ("knobs"): an optional
outer ladder (k_factor_rf) and one inner integer knob (nprobe, efSearch) that
the tuner bisects to the smallest value meeting the target.

To add a family (e.g. the quantized graph), write a subclass and add it to
FAMILIES with one line, or call register_family(cls) at import time.
"""
from __future__ import annotations

import math

from .._core import InvalidArgumentError

__all__ = ["Family", "FAMILIES", "register_family"]


def _pow2(x):
    return 1 << max(0, int(round(math.log2(max(1.0, x)))))


class Family:
    """Base class.  st: data statistics (n, d, k, metric, lid) and the
    user's search_space overrides (st["overrides"])."""

    name = ""
    classes: tuple = ()  # class names needed in the annvil (or faiss) namespace
    overrides: tuple = ()  # search_space keys this family understands

    def __init__(self, st, ns):
        self.st, self.ns = st, ns

    @classmethod
    def available(cls, ns):
        return all(getattr(ns, c, None) is not None for c in cls.classes)

    def space(self):
        """{param name: [values]}: the build parameters the sampler chooses."""
        return {}

    def start(self):
        """Build dicts (param name -> value) of the starting set, best guess first."""
        sp = self.space()
        return [{k: v[0] for k, v in sp.items()}]

    def factory(self, b):
        """(factory string, build parameter string) of build b."""
        raise NotImplementedError

    def knobs(self, b):
        """(outer ladder: list of {name: value} cheapest first, or [{}];
        inner knob: (name, lo, hi) or None)."""
        return [{}], None

    def _ov(self, key, default):
        v = self.st.get("overrides", {}).get(key)
        if v is None:
            return default
        vals = list(v) if isinstance(v, (list, tuple)) else [v]
        if not vals:
            raise InvalidArgumentError(f"search_space['{key}'] is empty")
        return vals


class FlatFamily(Family):
    """Exact search: the reference, and the fastest choice on small sets."""

    name = "flat"

    def factory(self, b):
        return "Flat", ""


class IVFFamily(Family):
    """IVF{nlist},{encoding}: small and large nlist around sqrt(n); encodings
    Flat, SQ8 and 4-bit PQ fast-scan (d/4 sub-quantizers) re-ranked by the
    exact vectors (RFlat).  Knobs: k_factor_rf (outer), nprobe (bisected)."""

    name = "ivf"
    classes = ("IndexIVFFlat",)
    overrides = ("ivf_nlist", "ivf_encodings", "k_factors")

    def __init__(self, st, ns):
        super().__init__(st, ns)
        n, d = st["n"], st["d"]
        root = math.sqrt(n)
        hi_cap = max(4, n // 39)  # at least ~39 training points per list
        self.small = min(hi_cap, max(4, _pow2(root)))
        self.large = min(hi_cap, max(self.small, _pow2(4 * root)))
        lo = max(4, _pow2(root / 2))
        nl = [1 << i for i in range(int(math.log2(lo)), int(math.log2(self.large)) + 1)]
        self.nlists = [int(x) for x in self._ov("ivf_nlist", nl or [self.small])]
        have = lambda *c: all(getattr(ns, x, None) is not None for x in c)  # noqa: E731
        self.pq = None
        enc = ["Flat"]
        if have("IndexIVFScalarQuantizer"):
            enc.append("SQ8")
        if have("IndexRefineFlat", "IndexIVFPQFastScan"):
            m = next((d // s for s in (4, 2, 1) if d % s == 0 and (d // s) % 2 == 0), None)
            if m:
                self.pq = f"PQ{m}x4fs,RFlat"
                enc.append(self.pq)
        ov = self._ov("ivf_encodings", None)
        if ov is not None:
            bad = [e for e in ov if e not in enc and not (isinstance(e, str) and e.endswith(",RFlat"))]
            if bad:
                raise InvalidArgumentError(
                    f"search_space['ivf_encodings']: {bad} not available; this build offers {enc}")
            enc = [str(e) for e in ov]
        self.encodings = enc
        self.k_factors = [int(x) for x in self._ov("k_factors", [2, 4, 8, 16, 32])]

    def space(self):
        return {"ivf_nlist": self.nlists, "ivf_enc": self.encodings}

    def start(self):
        near = lambda x: min(self.nlists, key=lambda v: abs(math.log2(v) - math.log2(x)))  # noqa: E731
        s, big = near(self.small), near(self.large)
        out = []
        if self.pq in self.encodings:
            out += [{"ivf_nlist": s, "ivf_enc": self.pq}, {"ivf_nlist": big, "ivf_enc": self.pq}]
        if "SQ8" in self.encodings:
            out.append({"ivf_nlist": big, "ivf_enc": "SQ8"})
        if not out:
            out.append({"ivf_nlist": s, "ivf_enc": self.encodings[0]})
        return out

    def factory(self, b):
        return f"IVF{int(b['ivf_nlist'])},{b['ivf_enc']}", ""

    def knobs(self, b):
        inner = ("nprobe", 1, int(b["ivf_nlist"]))
        if str(b["ivf_enc"]).endswith("RFlat"):
            return [{"k_factor_rf": kf} for kf in self.k_factors], inner
        return [{}], inner


class HNSWFamily(Family):
    """HNSW{M}[,SQ8] with efConstruction; knob: efSearch (bisected from k)."""

    name = "hnsw"
    classes = ("IndexHNSWFlat",)
    overrides = ("hnsw_M", "hnsw_efConstruction", "efSearch_max", "hnsw_storage")

    def __init__(self, st, ns):
        super().__init__(st, ns)
        self.M = [int(x) for x in self._ov("hnsw_M", [8, 16, 32, 48])]
        self.efc = [int(x) for x in self._ov("hnsw_efConstruction", [40, 80, 160])]
        st_ = ["Flat"] + (["SQ8"] if getattr(ns, "IndexHNSWSQ", None) is not None else [])
        self.storage = [str(x) for x in self._ov("hnsw_storage", st_)]
        self.ef_hi = int(st.get("overrides", {}).get("efSearch_max") or 1024)

    def space(self):
        return {"hnsw_M": self.M, "hnsw_efC": self.efc, "hnsw_storage": self.storage}

    def start(self):
        # data statistics: a higher intrinsic dimension wants more links
        lid = self.st.get("lid") or 20.0
        want = 16 if lid < 12 else 32 if lid < 40 else 48
        M = min(self.M, key=lambda m: abs(m - want))
        efc = min(self.efc, key=lambda e: abs(e - 80))
        out = [{"hnsw_M": M, "hnsw_efC": efc, "hnsw_storage": s} for s in self.storage]
        return out

    def factory(self, b):
        s = "" if b["hnsw_storage"] == "Flat" else "," + str(b["hnsw_storage"])
        return f"HNSW{int(b['hnsw_M'])}{s}", f"efConstruction={int(b['hnsw_efC'])}"

    def knobs(self, b):
        k = self.st["k"]
        return [{}], ("efSearch", k, max(k, self.ef_hi))


class QGFamily(HNSWFamily):
    """QG{R},PQ{m}x4 (IndexQG: a graph over 4-bit PQ neighbour blocks) with
    efConstruction; knob: efSearch (bisected from k)."""

    name = "qg"
    classes = ("IndexQG",)
    overrides = ("qg_R", "qg_pq_m", "hnsw_efConstruction", "efSearch_max")

    def __init__(self, st, ns):
        Family.__init__(self, st, ns)
        d = int(st["d"])
        self.R = [int(x) for x in self._ov("qg_R", [32, 64])]
        self.pq_m = [int(x) for x in self._ov("qg_pq_m", sorted({max(1, d // 8), max(1, d // 4)}))]
        self.efc = [int(x) for x in self._ov("hnsw_efConstruction", [40, 100])]
        self.ef_hi = int(st.get("overrides", {}).get("efSearch_max") or 1024)

    def space(self):
        return {"qg_R": self.R, "qg_pq_m": self.pq_m, "qg_efC": self.efc}

    def start(self):
        # the measured sweet spot on 384-d text embeddings: R=64, m=d/4
        return [{"qg_R": max(self.R), "qg_pq_m": max(self.pq_m), "qg_efC": max(self.efc)}]

    def factory(self, b):
        return f"QG{int(b['qg_R'])},PQ{int(b['qg_pq_m'])}x4", f"efConstruction={int(b['qg_efC'])}"


# the families annvil.tune knows, in the order of the starting set; add one line per new family
FAMILIES = {f.name: f for f in (IVFFamily, HNSWFamily, QGFamily, FlatFamily)}


def register_family(cls: type[Family]) -> type[Family]:
    """Make a Family subclass known to annvil.tune (families=(..., cls.name))."""
    if not (isinstance(cls, type) and issubclass(cls, Family)) or not cls.name:
        raise InvalidArgumentError("register_family needs a Family subclass with a name")
    FAMILIES[cls.name] = cls
    return cls
