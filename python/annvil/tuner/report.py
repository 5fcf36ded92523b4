"""Explaining an annvil.tune result: parameter importances, the recall/QPS
front plot, per-parameter slices, and the HTML (or PNG directory) report."""
from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core import InvalidArgumentError

if TYPE_CHECKING:
    from .result import TuneResult

__all__ = ["importances", "plot_front", "plot_importances", "plot_slices", "write_report"]

_FAMILY_COLORS = {"flat": "tab:gray", "ivf": "tab:blue", "hnsw": "tab:orange"}
_ABSENT = "-"  # value of a parameter its family does not have


def _rows(res, objective):
    """(list of {param: value}, list of objective values) to explain."""
    from ..autotune import parse_params

    if objective == "qps":
        recs = [r for r in res.builds if r.get("score") is not None and r.get("stage") == "full"]
        if len(recs) < 3:  # few full builds: the sample-stage scores explain too
            recs = [r for r in res.builds if r.get("score") is not None]
        rows = [{"family": r["family"], **r["build"]} for r in recs]
        vals = [float(r["score"]) for r in recs]
    elif objective == "recall":
        ts = [t for t in res.trials if t.stage == "full"]
        rows = []
        for t in ts:
            row = {"family": t.family, **{k: v for k, v in t.choice.items() if k != "family"}}
            row.update(parse_params(t.params) if t.params else {})
            rows.append(row)
        vals = [t.recall for t in ts]
    else:
        raise InvalidArgumentError(f"importances: objective must be 'qps' or 'recall', got '{objective}'")
    names = sorted({k for r in rows for k in r})
    rows = [{k: r.get(k, _ABSENT) for k in names} for r in rows]
    return rows, vals


def _eta_squared(rows, vals):
    """Main-effect variance decomposition: for each parameter, the variance of
    the per-value means of the objective (weighted by counts) over the total
    variance; normalised to sum to 1."""
    y = np.asarray(vals, dtype=np.float64)
    tot = float(np.var(y))
    out = {}
    for name in rows[0]:
        groups = {}
        for r, v in zip(rows, y):
            groups.setdefault(str(r[name]), []).append(v)
        between = sum(len(g) * (np.mean(g) - y.mean()) ** 2 for g in groups.values()) / len(y)
        out[name] = float(between / tot) if tot > 0 else 0.0
    return out


def _fanova(rows, vals, seed=0):
    """Optuna's fANOVA evaluator on an in-memory study made of the rows
    (parameters absent from a family take the value '-')."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = list(rows[0])
    choices = {n: sorted({str(r[n]) for r in rows}) for n in names}
    dists = {n: CategoricalDistribution(choices[n]) for n in names}
    study = optuna.create_study(direction="maximize")
    for r, v in zip(rows, vals):
        study.add_trial(optuna.trial.create_trial(params={n: str(r[n]) for n in names}, distributions=dists,
                                                  value=float(v)))
    ev = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    return dict(optuna.importance.get_param_importances(study, evaluator=ev, normalize=True))


def importances(res: TuneResult, objective: str = "qps") -> dict[str, float]:
    """See TuneResult.importances."""
    rows, vals = _rows(res, objective)
    if not rows:
        raise InvalidArgumentError("importances: the result has no scored builds to explain")
    names = list(rows[0])
    varying = [n for n in names if len({str(r[n]) for r in rows}) > 1]
    if not varying or len(rows) < 2 or float(np.var(vals)) == 0.0:
        return {n: 1.0 / len(names) for n in names}
    rows = [{n: r[n] for n in varying} for r in rows]
    imp = None
    if len(rows) >= 4:
        try:
            imp = _fanova(rows, vals)
        except ImportError:  # fANOVA needs scikit-learn
            imp = None
    if imp is None or not math.isfinite(sum(imp.values())) or sum(imp.values()) <= 0:
        imp = _eta_squared(rows, vals)
    tot = sum(imp.values())
    if tot <= 0:
        return {n: 1.0 / len(varying) for n in varying}
    imp = {n: float(v) / tot for n, v in imp.items()}
    return dict(sorted(imp.items(), key=lambda kv: -kv[1]))


# ---- figures ---------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_front(res: TuneResult, path: str | os.PathLike, title: str | None = None) -> Any:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    _draw_front(res, ax, title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _draw_front(res, ax, title=None):
    full = [t for t in res.trials if t.stage == "full"]
    for fam in sorted({t.family for t in full}):
        ts = [t for t in full if t.family == fam and not t.timed]  # one run each, during bisection
        ax.scatter([t.recall for t in ts], [t.qps for t in ts], s=10, alpha=0.25, color=_FAMILY_COLORS.get(fam))
        ts = [t for t in full if t.family == fam and t.timed]  # median of interleaved runs
        ax.scatter([t.recall for t in ts], [t.qps for t in ts], s=30, alpha=0.9, color=_FAMILY_COLORS.get(fam),
                   edgecolors="black", linewidths=0.4, label=f"{fam} (outlined: timed at the target)")
    fr = res.recall_qps_front()
    if fr:
        ax.step([t.recall for t in fr], [t.qps for t in fr], where="post", color="black", lw=1,
                label="Pareto front")
    ax.axvline(res.target_recall, color="red", ls="--", lw=1, label=f"target {res.target_recall}")
    b = res.best
    if b is not None:
        lab = f"best: {b.factory} {b.params}"
        ax.scatter([b.recall], [b.qps], marker="*", s=180, color="red", zorder=5, label=lab)
        if b.recall_heldout is not None:
            ax.scatter([b.recall_heldout], [b.qps], marker="*", s=120, facecolors="none", edgecolors="red",
                       zorder=5, label=f"best on held-out queries ({b.recall_heldout:.3f})")
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{res.k} (tuning queries)")
    ax.set_ylabel("queries per second (batch)")
    ax.set_title(title or f"annvil.tune ({res.strategy}): {len(res.builds)} builds, {len(full)} full-size points")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def plot_importances(res: TuneResult, path: str | os.PathLike | None = None, ax: Any = None) -> Any:
    plt = _plt()
    own = ax is None
    if own:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    else:
        axes = ax
    for a, obj, lab in zip(axes, ("qps", "recall"), ("score: log10 QPS at the target", "recall")):
        try:
            imp = res.importances(obj)
        except InvalidArgumentError:
            imp = {}
        names = list(imp)[::-1]
        a.barh(names, [imp[n] for n in names], color="tab:blue")
        a.set_xlim(0, 1)
        a.set_title(f"importance for {lab}", fontsize=9)
        for i, n in enumerate(names):
            a.text(imp[n] + 0.01, i, f"{imp[n]:.2f}", va="center", fontsize=8)
    if own:
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path
    return None


def plot_slices(res: TuneResult, path: str | os.PathLike) -> Any:
    """For each parameter: recall (top) and QPS (bottom) of every full-size
    point against the parameter's value, coloured by family."""
    from ..autotune import parse_params

    plt = _plt()
    full = [t for t in res.trials if t.stage == "full"]
    rows = []
    for t in full:
        row = {k: v for k, v in t.choice.items() if k != "family"}
        row.update(parse_params(t.params) if t.params else {})
        rows.append(row)
    names = sorted({k for r in rows for k in r})
    if not names:
        names = ["(none)"]
    fig, axes = plt.subplots(2, len(names), figsize=(max(4, 2.6 * len(names)), 5.2), dpi=100, squeeze=False)
    for j, name in enumerate(names):
        vals = sorted({_fmt(r[name]) for r in rows if name in r}, key=_sort_key)
        pos = {v: i for i, v in enumerate(vals)}
        for t, r in zip(full, rows):
            if name not in r:
                continue
            x = pos[_fmt(r[name])] + np.random.default_rng(t.number).uniform(-0.15, 0.15)
            c = _FAMILY_COLORS.get(t.family)
            axes[0, j].scatter(x, t.recall, s=10, alpha=0.6, color=c)
            axes[1, j].scatter(x, t.qps, s=10, alpha=0.6, color=c)
        for i in (0, 1):
            axes[i, j].set_xlim(-0.5, len(vals) - 0.5)
            axes[i, j].set_xticks(range(len(vals)))
            axes[i, j].set_xticklabels(vals, rotation=45, fontsize=7, ha="right")
            axes[i, j].grid(True, alpha=0.3)
        axes[0, j].axhline(res.target_recall, color="red", ls="--", lw=0.8)
        axes[1, j].set_yscale("log")
        axes[0, j].set_title(name, fontsize=9)
    axes[0, 0].set_ylabel("recall")
    axes[1, 0].set_ylabel("QPS")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(v):
    if isinstance(v, (int, float, np.integer, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _sort_key(v):
    try:
        return (0, float(v), "")
    except ValueError:
        return (1, 0.0, v)


def write_report(res: TuneResult, path: str | os.PathLike) -> str | os.PathLike:
    path = os.fspath(path)
    if path.lower().endswith((".html", ".htm")):
        figs = {}
        for name, fn in (("front", lambda p: plot_front(res, p)), ("importances", lambda p: plot_importances(res, p)),
                         ("slices", lambda p: plot_slices(res, p))):
            buf = io.BytesIO()
            fn(buf)
            figs[name] = base64.b64encode(buf.getvalue()).decode()
        b = res.best
        rows = "".join(
            f"<tr><td>{html.escape(t.factory)}</td><td>{html.escape(t.build_params)}</td>"
            f"<td>{html.escape(t.params)}</td><td>{t.recall:.4f}</td><td>{t.qps:,.0f}</td>"
            f"<td>{t.bytes_per_vector:.1f}</td><td>{t.build_s:.2f}</td></tr>" for t in res.front[:30])
        builds = "".join(
            f"<tr><td>{html.escape(r['family'])}</td><td>{html.escape(str(r['build']))}</td><td>{r['stage']}</td>"
            f"<td>{'pruned: ' + html.escape(r.get('why', '')) if r.get('pruned') else ''}</td>"
            f"<td>{'' if r.get('params') is None else html.escape(r['params'])}</td>"
            f"<td>{'' if r.get('qps') is None else format(r['qps'], ',.0f')}</td>"
            f"<td>{'' if r.get('recall_max') is None else format(r['recall_max'], '.4f')}</td></tr>"
            for r in res.builds)
        imp = res.importances("qps") if res.builds else {}
        st = ", ".join(f"{k}={v}" for k, v in res.stats.items())
        best = "none" if b is None else html.escape(str(b))
        doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>annvil tune report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}img{{max-width:100%}}</style></head><body>
<h1>annvil.tune: target recall@{res.k} &ge; {res.target_recall}</h1>
<p><b>{'reached' if res.target_reached else 'NOT reached'}</b>: {best}</p>
<p>{html.escape(res.message)}</p>
<p>data: {html.escape(st)}; {len(res.builds)} builds, {len(res.trials)} measured points,
{res.elapsed_s:.1f} s, strategy {res.strategy}.</p>
<h2>Recall / QPS front</h2><img src="data:image/png;base64,{figs['front']}">
<h2>Parameter importances</h2><p>{html.escape(', '.join(f'{k} {v:.2f}' for k, v in imp.items()))}</p>
<img src="data:image/png;base64,{figs['importances']}">
<h2>Recall and QPS per parameter value</h2><img src="data:image/png;base64,{figs['slices']}">
<h2>Pareto front (recall, QPS, memory, build time)</h2>
<table><tr><th>index</th><th>build</th><th>search</th><th>recall</th><th>QPS</th><th>B/vector</th><th>build s</th></tr>
{rows}</table>
<h2>Builds</h2><table><tr><th>family</th><th>build</th><th>stage</th><th>pruned</th><th>at target</th><th>QPS</th>
<th>max recall</th></tr>{builds}</table></body></html>"""
        with open(path, "w") as f:
            f.write(doc)
        return path
    os.makedirs(path, exist_ok=True)
    plot_front(res, os.path.join(path, "front.png"))
    plot_importances(res, os.path.join(path, "importances.png"))
    plot_slices(res, os.path.join(path, "slices.png"))
    return path
