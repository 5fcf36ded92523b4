"""Recall-vs-QPS plot in the style of ann-benchmarks: every measured point
per library, and a line through that library's Pareto front (the settings
that no other setting of the same library beats on both recall and QPS)."""
from __future__ import annotations

__all__ = ["plot_recall_qps", "pareto_points"]


def pareto_points(points):
    """(recall, qps) pairs -> the Pareto-optimal ones sorted by recall."""
    from ..tune import pareto_front

    if not points:
        return []
    keep = pareto_front(points, [True, True])
    return sorted({tuple(points[i]) for i in keep})


def plot_recall_qps(results, path, *, title=None):
    """Write a PNG of recall@k (x) against batch QPS (y, log) to path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    libs = sorted({r.library for r in results}, key=lambda s: (s != "annvil", s))
    markers = {"annvil": "o", "faiss": "s", "hnswlib": "^", "usearch": "D"}
    for i, lib in enumerate(libs):
        rs = [r for r in results if r.library == lib]
        color = f"C{i}"
        ax.scatter([r.recall for r in rs], [r.qps for r in rs], s=16, alpha=0.35, color=color,
                   marker=markers.get(lib, "o"))
        front = pareto_points([(r.recall, r.qps) for r in rs])
        if front:
            ax.plot([p[0] for p in front], [p[1] for p in front], "-", marker=markers.get(lib, "o"),
                    ms=5, lw=1.5, color=color, label=f"{lib} ({len(rs)} runs)")
    k = results[0].k if results else 10
    ax.set_xlabel(f"recall@{k}")
    ax.set_ylabel("queries per second (batch, log scale)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "recall vs QPS (lines: Pareto fronts)")
    if libs:
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
