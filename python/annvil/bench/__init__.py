"""annvil.bench: dataset readers, the benchmark harness and its plots.

    from annvil.bench import load_dataset, run_benchmark, parse_index_spec
    ds = load_dataset("synthetic-clustered-20k-96")
    results = run_benchmark(ds, [parse_index_spec("IVF128,Flat:nprobe=1/4/16")], k=10)

Command line: `python -m annvil bench --help`.
"""
from .datasets import (  # noqa: F401
    Dataset, load_dataset, read_bvecs, read_fvecs, read_ivecs, synthetic, write_bvecs, write_fvecs,
    write_ivecs,
)
from .harness import (  # noqa: F401
    LIBRARIES, IndexConfig, Result, default_configs, load_toml_config, parse_index_spec, print_table,
    run_benchmark, write_results,
)

__all__ = ["Dataset", "load_dataset", "read_fvecs", "read_bvecs", "read_ivecs", "write_fvecs", "write_bvecs",
           "write_ivecs", "synthetic", "IndexConfig", "Result", "parse_index_spec", "load_toml_config",
           "default_configs", "run_benchmark", "write_results", "print_table", "LIBRARIES"]
