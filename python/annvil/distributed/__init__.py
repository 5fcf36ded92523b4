"""annvil.distributed: a sharded, replicated annvil index served by Ray actors.

    from annvil.distributed import ShardedIndex
    index = ShardedIndex(384, "IVF1024,Flat", n_shards=4, replicas=2, mode="ivf")

Needs Ray (`pip install annvil[distributed]`); `import annvil` alone never
imports Ray.  See docs/scale-out.md.
"""
try:
    import ray as _ray  # noqa: F401
except ImportError as _e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "annvil.distributed needs Ray, which is not installed: pip install annvil[distributed] "
        f"(or pip install 'ray>=2.9') [{_e}]") from _e

from ._sharded import ShardedIndex, shard_of_ids  # noqa: E402
from ._wal import WriteAheadLog  # noqa: E402

__all__ = ["ShardedIndex", "shard_of_ids", "WriteAheadLog"]
