"""annvil.bench: dataset readers, the benchmark harness and its plots.

    from annvil.bench import load_dataset, run_benchmark, parse_index_spec
    ds = load_dataset("synthetic-text-50k-384")
    results = run_benchmark(ds, [parse_index_spec("IVF128,Flat:nprobe=1/4/16")], k=10)

Command line: `python -m annvil bench --help`.
"""
from .datasets import (  # noqa: F401
    Dataset, load_dataset, read_bvecs, read_fvecs, read_ivecs, synthetic, write_bvecs, write_fvecs,
    write_ivecs,
)
from .configs import (  # noqa: F401
    LIBRARIES, TARGETS, IndexConfig, Result, default_configs, family_of, load_toml_config, parse_index_spec,
)
from .harness import run_benchmark  # noqa: F401
from .report import print_summary, print_table, summarize, write_results  # noqa: F401

__all__ = ["Dataset", "load_dataset", "read_fvecs", "read_bvecs", "read_ivecs", "write_fvecs", "write_bvecs",
           "write_ivecs", "synthetic", "IndexConfig", "Result", "parse_index_spec", "load_toml_config",
           "default_configs", "run_benchmark", "write_results", "print_table", "summarize", "print_summary",
           "family_of", "LIBRARIES", "TARGETS"]
