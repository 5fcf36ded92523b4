"""Recall-vs-QPS plot in the style of ann-benchmarks: one line per library
through its Pareto front (the settings that no other setting of the same
library beats on both recall and QPS), the index family of each front point
as its marker, every other measured point faint behind, and the recall
targets of the summary as dashed lines with each library's best QPS there."""
from __future__ import annotations

import os
from typing import Any, Sequence

from ..eval import pareto_front

__all__ = ["plot_recall_qps", "pareto_points"]

# one colour per library (annvil first, in a strong colour), one marker per family
_LIB_COLORS = {"annvil": "#d62728", "faiss": "#1f77b4", "hnswlib": "#2ca02c", "usearch": "#9467bd"}
_FAMILY_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]


def pareto_points(points: Any) -> list:
    """(recall, qps) pairs -> the Pareto-optimal ones sorted by recall."""
    if not points:
        return []
    keep = pareto_front(points, [True, True])
    return sorted({tuple(points[i]) for i in keep})


def _front(rs):
    """Pareto-optimal results of one library, by increasing recall."""
    if not rs:
        return []
    keep = pareto_front([(r.recall, r.qps) for r in rs], [True, True])
    return sorted((rs[i] for i in keep), key=lambda r: (r.recall, r.qps))


def plot_recall_qps(results: Sequence[Any], path: str | os.PathLike, *, title: str | None = None,
                    targets: Sequence[float] | None = None) -> str | os.PathLike:
    """Write a PNG of recall@k (x) against batch QPS (y, log) to path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from .configs import TARGETS, family_of

    targets = TARGETS if targets is None else targets
    fig, ax = plt.subplots(figsize=(10, 6.2), dpi=110)
    libs = sorted({r.library for r in results}, key=lambda s: (s != "annvil", s))
    fams = sorted({r.family or family_of(r.index) for r in results})
    marker = {f: _FAMILY_MARKERS[i % len(_FAMILY_MARKERS)] for i, f in enumerate(fams)}
    fronts = {}
    for i, lib in enumerate(libs):
        rs = [r for r in results if r.library == lib]
        color = _LIB_COLORS.get(lib, f"C{i + 4}")
        for r in rs:  # every point, faint
            ax.scatter(r.recall, r.qps, s=14, alpha=0.18, color=color, marker=marker[r.family or family_of(r.index)],
                       linewidths=0)
        fr = _front(rs)
        fronts[lib] = fr
        if not fr:
            continue
        ax.plot([r.recall for r in fr], [r.qps for r in fr], "-", lw=2.2 if lib == "annvil" else 1.6, color=color,
                zorder=3)
        for r in fr:
            ax.scatter(r.recall, r.qps, s=46, color=color, marker=marker[r.family or family_of(r.index)],
                       edgecolors="white", linewidths=0.6, zorder=4)
    # the recall targets, and each library's best QPS there
    for t in targets:
        ax.axvline(t, color="0.35", ls="--", lw=0.9, zorder=1)
        ax.text(t, 0.99, f" recall {t:g}", transform=ax.get_xaxis_transform(), va="top", ha="left",
                fontsize=8, color="0.3")
    recalls = [r.recall for fr in fronts.values() for r in fr] or [0.0, 1.0]
    lo = max(0.0, min(min(recalls), min(targets) - 0.05) - 0.01)
    ax.set_xlim(lo, 1.0 + (1.0 - lo) * 0.02)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator

    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_locator(LogLocator(subs=(2, 3, 5)))
    ax.yaxis.set_minor_formatter(fmt)
    ax.tick_params(axis="y", which="minor", labelsize=7)
    k = results[0].k if results else 10
    ax.set_xlabel(f"recall@{k}  (fraction of the true {k} nearest neighbours found; right is better)")
    ax.set_ylabel("queries per second (batch, log scale; up is better)")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title(title or "recall vs QPS", fontsize=11)
    # legend 1: libraries (line colour), with the best QPS at the first target
    handles = []
    for i, lib in enumerate(libs):
        notes = []
        for t in targets:
            ok = [r for r in fronts.get(lib, []) if r.recall >= t]
            best = max(ok, key=lambda r: r.qps, default=None)
            notes.append(f">={t:g}: {best.qps:,.0f} ({best.family or family_of(best.index)})" if best
                         else f">={t:g}: not reached")
        handles.append(Line2D([], [], color=_LIB_COLORS.get(lib, f"C{i + 4}"), lw=2,
                              label=f"{lib}   best QPS at recall " + ", ".join(notes)))
    leg1 = ax.legend(handles=handles, title="library (line = its Pareto front)", fontsize=8, title_fontsize=8,
                     loc="lower left", framealpha=0.9)
    ax.add_artist(leg1)
    # legend 2: families (marker)
    fh = [Line2D([], [], ls="", marker=marker[f], color="0.3", ms=7, label=f) for f in fams]
    ax.legend(handles=fh, title="index family (marker)", fontsize=8, title_fontsize=8, loc="upper right",
              framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
