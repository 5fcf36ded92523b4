"""Ray plumbing of the sharded index: connecting to a cluster (failing fast
when it cannot be reached), the actor-death exceptions, a deadline-bounded
ray.get that re-raises an actor's own exception, placement-group readiness,
and the id -> shard hash of mode "id"."""
from __future__ import annotations

import os
import socket
import time
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .. import _core

__all__ = ["shard_of_ids"]

_FLT_MAX = float(np.finfo(np.float32).max)


def _ray():
    import ray
    return ray


def _actor_errors():
    import ray.exceptions as rex
    return (rex.RayActorError, rex.ActorUnavailableError) if hasattr(rex, "ActorUnavailableError") \
        else (rex.RayActorError,)


def shard_of_ids(ids: Any, n_shards: int) -> np.ndarray:
    """Shard of each id in mode "id": splitmix64(id) % n_shards (ids: int64 (n,))."""
    z = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_shards)).astype(np.int64)


def _check_reachable(address, timeout=3.0):
    """Fail fast (ConnectionError) when a Ray cluster address cannot be reached:
    ray.init would otherwise wait for a long time."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else "tcp://" + address)
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise _core.InvalidArgumentError(
            f"Ray address {address!r} is not host:port (or ray://host:port, or 'auto'); "
            "pass address=None for a local Ray instance")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address!r} ({e}); start one with `ray start --head` "
            "or pass address=None for a local Ray instance") from None


def _connect(address, cpus_needed):
    ray = _ray()
    if address is not None:
        if not isinstance(address, str):
            raise _core.InvalidTypeError(f"address must be a string or None, got {type(address).__name__}")
        _check_reachable(address)
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as e:
                raise ConnectionError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    elif not ray.is_initialized():
        ray.init(num_cpus=max(os.cpu_count() or 1, int(np.ceil(cpus_needed))),
                 include_dashboard=False, log_to_driver=False)
    return ray


def _get(ray, ref, deadline):
    """ray.get until the deadline; an exception raised inside the actor is re-raised
    as itself (an annvil error stays an annvil error), actor deaths pass through."""
    try:
        return ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
    except ray.exceptions.RayTaskError as e:
        if isinstance(e, _actor_errors()):
            raise
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise


class _Stale(Exception):
    """A replica answered with an older write number than the shard's."""


def _wait_ready(ray, pg, timeout):
    try:
        ray.get(pg.ready(), timeout=timeout)
        return True
    except ray.exceptions.GetTimeoutError:
        return False
