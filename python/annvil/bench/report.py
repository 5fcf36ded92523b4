"""The harness's output: tables (rich when installed), the summary of each
library's best QPS at the recall targets, and the CSV / JSON / plot files."""
from __future__ import annotations

import csv
import json
import os
import platform
import sys
from typing import Sequence, TextIO
from dataclasses import asdict


from .configs import TARGETS, Result

__all__ = ["write_results", "print_table", "summarize", "print_summary", "environment"]


# ---- output ---------------------------------------------------------------------
def _rate(v):
    return "n/a" if v is None else f"{v:,.0f}"


def print_table(results: Sequence[Result], title: str | None = None, file: TextIO | None = None) -> None:
    """A table of the results (rich when installed)."""
    cols = ["library", "index", "params", "recall", "QPS", "p50 ms", "p99 ms", "build s", "B/vec", "add/s",
            "remove/s"]
    rows = [[r.library, r.index + (f" ({r.build_params})" if r.build_params else ""), r.params,
             f"{r.recall:.4f}", f"{r.qps:,.0f}", f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.build_s:.2f}",
             f"{r.bytes_per_vector:.1f}", _rate(r.add_per_s), _rate(r.remove_per_s)] for r in results]
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for i, c in enumerate(cols):
            t.add_column(c, justify="right" if i >= 3 else "left")
        for row in rows:
            t.add_row(*row)
        con = Console(file=file)
        if not con.is_terminal:
            con = Console(file=file, width=160)  # files and pipes: do not squeeze to 80 columns
        con.print(t)
    except ImportError:
        out = file or sys.stdout
        if title:
            print(title, file=out)
        widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, widths)), file=out)
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=out)


def environment() -> dict:
    import annvil

    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
           "annvil": annvil.__version__, "simd": annvil.simd_level()}
    for mod in ("faiss", "hnswlib", "usearch"):
        try:
            m = __import__(mod)
            env[mod] = getattr(m, "__version__", "?")
        except ImportError:
            pass
    return env


def summarize(results: Sequence[Result], targets: Sequence[float] = TARGETS) -> list[dict]:
    """Each library's fastest setting reaching each recall target, and the
    ratio annvil QPS / that library's QPS (> 1: annvil is faster):
    {library: {"0.9": {"qps", "index", "params", "recall", "family", "annvil_ratio"} or None}}."""
    out = {}
    libs = sorted({r.library for r in results}, key=lambda s: (s != "annvil", s))
    for lib in libs:
        out[lib] = {}
        for t in targets:
            ok = [r for r in results if r.library == lib and r.recall >= t]
            b = max(ok, key=lambda r: r.qps, default=None)
            out[lib][f"{t:g}"] = None if b is None else {
                "qps": b.qps, "index": b.index, "params": b.params, "recall": b.recall, "family": b.family,
                "p99_ms": b.p99_ms}
    for t in targets:
        key = f"{t:g}"
        a = out.get("annvil", {}).get(key)
        for lib in libs:
            b = out[lib][key]
            if b is not None:
                b["annvil_ratio"] = (a["qps"] / b["qps"]) if a else None
    return out


def print_summary(summary: list[dict], file: TextIO | None = None, title: str | None = None) -> None:
    """The "best QPS at recall >= target" table of summarize()."""
    targets = sorted({t for v in summary.values() for t in v}, key=float)
    rows = []
    for lib, v in summary.items():
        row = [lib]
        for t in targets:
            b = v.get(t)
            if b is None:
                row += ["not reached", "", ""]
            else:
                ratio = b.get("annvil_ratio")
                row += [f"{b['qps']:,.0f}", f"{b['index']} {b['params']}".strip(),
                        "" if lib == "annvil" or ratio is None else f"{ratio:.2f}x"]
        rows.append(row)
    cols = ["library"]
    for t in targets:
        cols += [f"QPS @ recall>={t}", "at", "annvil / it"]
    title = title or "best QPS at each recall target (higher is better; ratio > 1: annvil faster)"
    try:
        from rich.console import Console
        from rich.table import Table

        tab = Table(title=title)
        for i, c in enumerate(cols):
            tab.add_column(c, justify="left" if i == 0 or c == "at" else "right")
        for row in rows:
            tab.add_row(*row)
        con = Console(file=file)
        if not con.is_terminal:
            con = Console(file=file, width=160)
        con.print(tab)
    except ImportError:
        out = file or sys.stdout
        print(title, file=out)
        for row in [cols] + rows:
            print("  ".join(str(x) for x in row), file=out)


def write_results(results: Sequence[Result], out_dir: str | os.PathLike, *, meta: dict | None = None,
                  plot: bool = True, title: str | None = None) -> dict:
    """results.json (meta, environment, summary, results), results.csv and
    (plot=True) recall_qps.png in out_dir; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    rows = [asdict(r) for r in results]
    paths["json"] = os.path.join(out_dir, "results.json")
    with open(paths["json"], "w") as f:
        json.dump({"meta": meta or {}, "environment": environment(), "summary": summarize(results),
                   "results": rows}, f, indent=1)
    paths["csv"] = os.path.join(out_dir, "results.csv")
    with open(paths["csv"], "w", newline="") as f:
        fields = list(Result.__dataclass_fields__)
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    if plot:
        from .plot import plot_recall_qps

        paths["png"] = plot_recall_qps(results, os.path.join(out_dir, "recall_qps.png"), title=title)
    return paths
