"""Command line: `python -m annvil bench|tune` (also the `annvil` script).

    annvil bench                                  # default run: text-like synthetic data, < 2 min
    annvil bench --dataset glove-100-angular.hdf5 --index "IVF1024,Flat:nprobe=1/4/16/64"
    annvil bench --config bench.toml --out results/
    annvil tune --dataset /data/wordnet-minilm-384 --target 0.95 --budget 120
"""
from __future__ import annotations

import argparse
import sys
import time

# unit-norm, clustered on a low-dimensional subspace plus noise, inner product:
# behaves like 384-d sentence embeddings (see bench.datasets._text_like)
DEFAULT_DATASET = "synthetic-text-50k-384-1000q"
TINY_DATASET = "synthetic-text-2k-32-100q"

_BENCH_DEFAULTS = {
    "dataset": DEFAULT_DATASET, "metric": None, "n_train": None, "n_test": None, "seed": 0, "k": 10,
    "libraries": "annvil,faiss,hnswlib,usearch", "threads": None, "latency_queries": 100,
    "out": "bench-results", "plot": True, "progress": True, "cache_dir": None,
}


def _add_data_args(p):
    p.add_argument("--dataset", "--data", dest="dataset", default=None, metavar="SPEC",
                   help="an ann-benchmarks .hdf5 file, a .fvecs/.bvecs file or TEXMEX directory, a directory "
                        "of train/test/neighbors .npy files, or a synthetic name like "
                        f"{DEFAULT_DATASET} (the default)")
    p.add_argument("--metric", default=None, choices=["l2", "ip", "angular", "cosine", "euclidean"],
                   help="override the dataset's metric")
    p.add_argument("--n-train", type=int, default=None, help="subsample the base vectors (seeded)")
    p.add_argument("--n-test", type=int, default=None, help="use the first N queries")
    p.add_argument("--seed", type=int, default=None, help="seed for synthetic data and sampling (0)")
    p.add_argument("--cache-dir", default=None, help="where computed ground truth is cached "
                   "(default $ANNVIL_CACHE or ~/.cache/annvil)")
    p.add_argument("--k", type=int, default=None, help="neighbours per query (10)")


def _parser():
    ap = argparse.ArgumentParser(prog="annvil", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", metavar="{bench,tune}")
    b = sub.add_parser("bench", help="benchmark annvil against Faiss, hnswlib and usearch",
                       description="Build each index configuration with every library that can run it "
                                   "and report recall@k, QPS, latency, build time and memory.")
    _add_data_args(b)
    b.add_argument("--config", help="TOML file with [bench] settings and [[index]] entries")
    b.add_argument("--tiny", action="store_true",
                   help=f"a seconds-long smoke run: the default configurations on {TINY_DATASET}")
    b.add_argument("--index", action="append", default=None, metavar="SPEC",
                   help="FACTORY[:name=v1/v2/...]..., e.g. 'IVF256,Flat:nprobe=1/4/16' or "
                        "'HNSW32:efConstruction=40:efSearch=16/64'; repeatable")
    b.add_argument("--libraries", default=None, help="comma-separated subset of annvil,faiss,hnswlib,usearch")
    b.add_argument("--threads", type=int, default=None, help="threads for every library (all cores)")
    b.add_argument("--latency-queries", type=int, default=None,
                   help="queries timed one by one for p50/p99 latency (100)")
    b.add_argument("--out", default=None, help="output directory (bench-results)")
    b.add_argument("--no-plot", dest="plot", action="store_false", default=None, help="skip the PNG")
    b.add_argument("--no-progress", dest="progress", action="store_false", default=None)

    t = sub.add_parser("tune", help="find the fastest index configuration reaching a recall target",
                       description="Search index families, build and search parameters with annvil.tune.")
    _add_data_args(t)
    t.add_argument("--target", type=float, default=0.95, help="target recall@k (0.95)")
    t.add_argument("--budget", type=float, default=300, help="time budget in seconds (300)")
    t.add_argument("--strategy", default="bayes", choices=["grid", "random", "bayes", "evolutionary"])
    t.add_argument("--families", default="flat,ivf,hnsw", help="comma-separated index families to search")
    t.add_argument("--n-trials", type=int, default=None, help="stop after this many trials")
    t.add_argument("--threads", type=int, default=None, help="OpenMP threads (all cores)")
    t.add_argument("--held-out", action="store_true",
                   help="use a held-out sample of the base vectors as queries instead of the dataset's")
    t.add_argument("--warm-start", default=None, metavar="JSON", help="try this earlier result's best/front first")
    t.add_argument("--resume", default=None, metavar="JSON",
                   help="reuse finished trials from this file and save progress to it")
    t.add_argument("--out", default="tune-result.json", help="where to save the result JSON")
    t.add_argument("--plot", default=None, metavar="PNG", help="also write a recall/QPS plot")
    t.add_argument("--report", default=None, metavar="HTML|DIR",
                   help="write a report: out.html (one page, figures inside) or a directory of PNGs, with the "
                        "recall/QPS front, the parameter importances and a recall/QPS slice per parameter")
    t.add_argument("--quiet", action="store_true")
    return ap


def _console():
    try:
        from rich.console import Console

        return Console(stderr=True).print
    except ImportError:
        return lambda *a, **k: print(*a, file=sys.stderr)


def _load(args, settings):
    from .bench import load_dataset

    return load_dataset(settings["dataset"], metric=settings["metric"], n_train=settings["n_train"],
                        n_test=settings["n_test"], seed=settings["seed"], cache_dir=settings["cache_dir"])


def cmd_bench(args):
    from .bench import (default_configs, load_toml_config, parse_index_spec, print_summary, print_table,
                        run_benchmark, summarize, write_results)

    settings = dict(_BENCH_DEFAULTS)
    configs = []
    if args.config:
        file_settings, configs = load_toml_config(args.config)
        file_settings = {k.replace("-", "_"): v for k, v in file_settings.items()}
        unknown = set(file_settings) - set(settings)
        if unknown:
            raise SystemExit(f"annvil bench: unknown [bench] setting(s) in {args.config}: {sorted(unknown)}")
        settings.update(file_settings)
    for key in settings:
        v = getattr(args, key, None)
        if v is not None:
            settings[key] = v
    if args.tiny and args.dataset is None:
        settings["dataset"] = TINY_DATASET
    if isinstance(settings["libraries"], str):
        settings["libraries"] = [s.strip() for s in settings["libraries"].split(",") if s.strip()]
    if args.index:
        configs = [parse_index_spec(s) for s in args.index]
    say = _console()
    t0 = time.perf_counter()
    ds = _load(args, settings)
    if not configs:
        configs = default_configs(ds.train.shape[0], ds.d)
    say(f"dataset {ds.describe()}; k={settings['k']}; configs: {', '.join(c.factory for c in configs)}")
    results = run_benchmark(ds, configs, k=settings["k"], libraries=settings["libraries"],
                            threads=settings["threads"], latency_queries=settings["latency_queries"],
                            progress=settings["progress"])
    title = f"{ds.name}: recall@{settings['k']} vs QPS ({results[0].threads if results else '?'} threads)"
    print_table(results, title=title)
    print_summary(summarize(results))
    meta = {"dataset": ds.name, "source": ds.source, "n_train": int(ds.train.shape[0]),
            "n_test": int(ds.test.shape[0]), "d": ds.d, "metric": ds.metric, "k": settings["k"],
            "configs": [c.__dict__ for c in configs], "seconds": time.perf_counter() - t0}
    paths = write_results(results, settings["out"], meta=meta, plot=settings["plot"], title=title)
    say("wrote " + ", ".join(paths.values()) + f" in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_tune(args):
    import annvil

    from .tuner import tune

    settings = {"dataset": args.dataset or DEFAULT_DATASET, "metric": args.metric, "n_train": args.n_train,
                "n_test": args.n_test, "seed": args.seed or 0, "cache_dir": args.cache_dir}
    k = args.k or 10
    say = _console()
    if args.threads:
        annvil.omp_set_num_threads(args.threads)
    ds = _load(args, settings)
    say(f"dataset {ds.describe()}; target recall@{k} >= {args.target}; budget {args.budget:g} s; "
        f"strategy {args.strategy}")
    if args.held_out:
        xq = gt = None
    else:
        xq, gt = ds.test, ds.ground_truth(k)
    res = tune(ds.train, xq, gt=gt, k=k, target_recall=args.target, budget_s=args.budget,
               metric=ds.metric_type, strategy=args.strategy, seed=settings["seed"],
               warm_start=args.warm_start, resume=args.resume,
               families=tuple(f.strip() for f in args.families.split(",") if f.strip()),
               n_trials=args.n_trials, verbose=False, progress=not args.quiet and sys.stderr.isatty())
    res.save(args.out)
    if args.plot:
        res.plot(args.plot)
    if args.report:
        res.report(args.report)
    _print_tune(res, say)
    say(f"saved {args.out}" + (f", {args.plot}" if args.plot else "") + (f", {args.report}" if args.report else ""))
    return 0 if res.target_reached else 3


def _print_tune(res, say):
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"Pareto front ({len(res.trials)} trials, {res.elapsed_s:.0f} s)")
        for c in ("index", "build", "params", "recall", "QPS", "B/vec", "build s"):
            t.add_column(c, justify="right" if c in ("recall", "QPS", "B/vec", "build s") else "left")
        for tr in res.front[:25]:
            t.add_row(tr.factory, tr.build_params, tr.params, f"{tr.recall:.4f}", f"{tr.qps:,.0f}",
                      f"{tr.bytes_per_vector:.1f}", f"{tr.build_s:.2f}")
        Console().print(t)
        if res.best is not None and res.best.recall_heldout is not None:
            Console().print(f"best: recall {res.best.recall:.4f} on the {res.nq} tuning queries, "
                            f"{res.best.recall_heldout:.4f} on the {res.nq_heldout} held-out ones")
    except ImportError:
        print(res.summary())
    say(("[bold green]" if res.target_reached else "[bold red]") + res.message.replace("[", "\\[")
        if "rich" in sys.modules else res.message)


def main(argv=None):
    ap = _parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 2
    from ._core import AnnvilError

    try:
        return cmd_bench(args) if args.command == "bench" else cmd_tune(args)
    except (AnnvilError, FileNotFoundError, ImportError) as e:
        print(f"annvil {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
