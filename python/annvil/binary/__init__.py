"""annvil: binary indexes (Faiss's IndexBinary family) and Hamming utilities.

    index = annvil.IndexBinaryFlat(d)          # d bits, codes of d // 8 bytes
    index.add(codes)                            # uint8 (n, d // 8)
    D, I = index.search(queries, k)             # D int32 Hamming distances, I int64

Other indexes: IndexBinaryIVF(quantizer, d, nlist), IndexBinaryHNSW(d, M),
IndexBinaryHash(d, b), IndexBinaryMultiHash(d, nhash, b),
IndexBinaryFromFloat(float_index), IndexBinaryIDMap / IndexBinaryIDMap2,
IndexBinaryShards / IndexBinaryReplicas; index_binary_factory(d, "BIVF1024").
Files: write_index_binary / read_index_binary (annvil's format, see io.h).
"""
from __future__ import annotations

from .._core import (  # noqa: F401  (re-exported)
    IndexBinary,
    IndexBinaryFlat,
    IndexBinaryFromFloat,
    IndexBinaryHash,
    IndexBinaryHashStats,
    IndexBinaryHNSW,
    IndexBinaryIDMap,
    IndexBinaryIDMap2,
    IndexBinaryIVF,
    IndexBinaryMultiHash,
)
from . import index as _index  # noqa: F401  (attaches the methods)
from .factory import index_binary_factory
from .hamming import (
    binary_to_real,
    bitvec_shuffle,
    bitvecs2fvecs,
    crosshamming_count_thres,
    fvecs2bitvecs,
    generalized_hammings_knn_hc,
    hamming_count_thres,
    hamming_knn,
    hammings,
    hammings_knn,
    hammings_knn_hc,
    hammings_knn_mc,
    int_maxheap_array_t,
    knn_hamming,
    match_hamming_thres,
    pairwise_hamming,
    popcount64,
    real_to_binary,
)
from .index import as_codes  # noqa: F401
from .io import (
    clone_binary_index,
    deserialize_index_binary,
    downcast_IndexBinary,
    read_index_binary,
    serialize_index_binary,
    shard_binary_ivf_index_centroids,
    write_index_binary,
)
from .shards import IndexBinaryReplicas, IndexBinaryShards

# pickles of binary indexes name annvil.binary.deserialize_index_binary, as before the split
deserialize_index_binary.__module__ = __name__

__all__ = ["IndexBinary", "IndexBinaryFlat", "IndexBinaryIVF", "IndexBinaryHNSW", "IndexBinaryHash",
           "IndexBinaryMultiHash", "IndexBinaryHashStats", "IndexBinaryFromFloat", "IndexBinaryIDMap",
           "IndexBinaryIDMap2", "IndexBinaryShards", "IndexBinaryReplicas", "index_binary_factory",
           "write_index_binary", "read_index_binary", "serialize_index_binary", "deserialize_index_binary",
           "clone_binary_index", "downcast_IndexBinary", "knn_hamming", "hamming_knn", "pairwise_hamming",
           "hammings", "hammings_knn", "hammings_knn_hc", "hammings_knn_mc", "hamming_count_thres",
           "crosshamming_count_thres", "match_hamming_thres", "generalized_hammings_knn_hc",
           "int_maxheap_array_t", "bitvec_shuffle", "popcount64", "binary_to_real", "real_to_binary",
           "fvecs2bitvecs", "bitvecs2fvecs", "shard_binary_ivf_index_centroids"]
