"""Faiss surface details that clients and Faiss's own tests touch (second
batch): small methods and attributes with Faiss's names and semantics, on top
of the native classes.  Nothing here computes results: it forwards to the
engine or records what Faiss records."""
from __future__ import annotations

from . import _core


# ---- IndexFlat: Faiss's cached-norm switches ------------------------------------------
# Faiss's IndexFlatL2 can cache the squared norms of the stored vectors
# (sync_l2norms) to speed up search; annvil's kernels compute the norms of the
# stored rows in the distance loop, so there is nothing to cache: both calls
# keep results exactly as they are, as in Faiss.
def _sync_l2norms(self):
    """Faiss's norm cache: nothing to do in annvil (results are unchanged)."""


def _clear_l2norms(self):
    """Faiss's norm cache: nothing to do in annvil (results are unchanged)."""


_core.IndexFlat.sync_l2norms = _sync_l2norms
_core.IndexFlat.clear_l2norms = _clear_l2norms
