"""annvil: meta indexes and Faiss's ivflib helpers.

IndexShards / IndexReplicas / IndexShardsIVF hold other indexes in process
(see cpp/index_shards.h); the members of a threaded meta index are searched
on the threads of the OpenMP pool, one member per thread.

    shards = annvil.IndexShards(d, True)          # threaded, successive ids
    for part in parts:
        sub = annvil.IndexFlatL2(d); sub.add(part); shards.add_shard(sub)
    D, I = shards.search(xq, 10)

The ivflib functions (search_with_parameters, merge_into, search_centroid,
get_invlist_range, shard_ivf_index_centroids...) and the IndexIVF methods
Faiss exposes to them (add_core, copy_subset_to, update_vectors,
search_and_return_codes) are here too.
"""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import as_ids, as_matrix, check_int, check_k
from ._core import (  # noqa: F401
    IndexIVF,
    IndexReplicas,
    IndexShards,
    IndexShardsIVF,
    InvalidArgumentError,
    InvalidTypeError,
    InvertedLists,
    MultiIndexQuantizer,
    MultiIndexQuantizer2,
)
from .compat import ptr_array

__all__ = ["MultiIndexQuantizer", "MultiIndexQuantizer2", "IndexShards", "IndexReplicas", "IndexShardsIVF",
           "ArrayInvertedLists", "downcast_InvertedLists",
           "check_compatible_for_merge", "merge_into", "search_centroid", "search_and_return_centroids",
           "get_invlist_range", "set_invlist_range", "search_with_parameters", "range_search_with_parameters",
           "shard_ivf_index_centroids", "matrix_bucket_sort_inplace", "memcpy"]

# Faiss's InvertedLists::subset_type_t
IndexIVF.SUBSET_TYPE_ID_RANGE = 0
IndexIVF.SUBSET_TYPE_ID_MOD = 1
IndexIVF.SUBSET_TYPE_ELEMENT_RANGE = 2
IndexIVF.SUBSET_TYPE_INVLIST_FRACTION = 3
IndexIVF.SUBSET_TYPE_INVLIST = 4


# ---- inverted lists -------------------------------------------------------------------
ArrayInvertedLists = InvertedLists  # annvil's inverted lists are Faiss's array form


def downcast_InvertedLists(il):
    """Identity: annvil's inverted lists have one concrete type."""
    return il


def _il_release(self, list_no, ptr):
    """Faiss's release_ids / release_codes: nothing to release (get_* return copies)."""


def _il_add_entries(self, list_no, n_entry, ids, codes=None):
    """Append entries to list list_no: add_entries(list_no, ids, codes) with
    arrays, or Faiss's add_entries(list_no, n, swig_ptr(ids), swig_ptr(codes))."""
    if codes is None:  # (list_no, ids, codes)
        ids, codes = n_entry, ids
        n_entry = len(np.asarray(ids).reshape(-1))
    n = check_int(n_entry, "n_entry", minimum=0)
    ida = np.ascontiguousarray(ptr_array(ids, np.int64, n, "ids"))
    ca = np.ascontiguousarray(ptr_array(codes, np.uint8, n * self.code_size, "codes"))
    return self._add_entries(check_int(list_no, "list_no", minimum=0), ida, ca)


def _il_add_entry(self, list_no, theid, code):
    return _il_add_entries(self, list_no, 1, np.array([theid], np.int64), code)


def _il_permute(self, perm):
    """New list i = old list perm[i] (perm: nlist int64, a permutation).
    On the lists of an index, prefer index.permute_invlists (keeps its direct map)."""
    self._permute_invlists(np.ascontiguousarray(ptr_array(perm, np.int64, self.nlist, "perm")))


InvertedLists.release_ids = _il_release
InvertedLists.release_codes = _il_release
InvertedLists.add_entries = _il_add_entries
InvertedLists.add_entry = _il_add_entry
InvertedLists.permute_invlists = _il_permute


# ---- IndexIVF methods -----------------------------------------------------------------------
def _ivf_add_core(self, n, x, xids, precomputed_idx, *args):
    """Add n vectors with precomputed list numbers (Faiss's add_core; arrays
    or swig_ptr(array) accepted; xids None: sequential ids)."""
    n = check_int(n, "n", minimum=0)
    xa = as_matrix(ptr_array(x, np.float32, n * self.d, "x").reshape(n, self.d), self.d, "x")
    ids = None if xids is None else np.ascontiguousarray(ptr_array(xids, np.int64, n, "xids"))
    lists = np.ascontiguousarray(ptr_array(precomputed_idx, np.int64, n, "precomputed_idx"))
    self._add_core(xa, ids, lists)


def _ivf_add_preassigned(self, x, list_nos, ids=None):
    """Add vectors x (n, d) to the given lists (list_nos: n; -1: skip)."""
    x = as_matrix(x, self.d, "x")
    lists = as_ids(list_nos, x.shape[0])
    self._add_core(x, None if ids is None else as_ids(ids, x.shape[0]), lists)


def _ivf_copy_subset_to(self, other, subset_type, a1, a2):
    """Copy the entries selected by subset_type (SUBSET_TYPE_*: 0 ids in [a1, a2),
    1 id % a1 == a2, 2 the share [a1, a2) of ntotal, 3 part a2 of a1 of each list,
    4 lists [a1, a2)) to other, an empty clone; returns how many were copied."""
    if not isinstance(other, IndexIVF):
        raise InvalidTypeError(f"copy_subset_to needs an IndexIVF destination, got {type(other).__name__}")
    return int(self._copy_subset_to(other, int(subset_type), int(a1), int(a2)))


def _ivf_update_vectors(self, keys, x):
    """Replace the vectors with ids keys (n) by x (n, d); needs a direct map."""
    x = as_matrix(x, self.d, "x")
    self._update_vectors(as_ids(keys, x.shape[0]), x)


def _ivf_search_and_return_codes(self, x, k, *, include_listnos=False, params=None):
    """search(), plus the stored code of each result: (D, I, codes (n, k,
    code_size [+ list number bytes when include_listnos, sa_decode's layout]))."""
    x = as_matrix(x, self.d, "queries")
    k = check_k(k)
    return self._search_and_return_codes(x, k, bool(include_listnos), params)


def _ivf_permute_invlists(self, perm):
    """New list i = old list perm[i]; the direct map follows.  Pair it with
    quantizer.permute_entries(perm) to keep centroids and lists matched."""
    self._permute_invlists(np.ascontiguousarray(ptr_array(perm, np.int64, self.nlist, "perm")))


def _ivf_replace_invlists(self, il, own=False):
    """Faiss's replace_invlists: the lists of il (same nlist and code size) become the index's."""
    if not isinstance(il, InvertedLists):
        raise InvalidTypeError(f"replace_invlists needs InvertedLists, got {type(il).__name__}")
    self._set_invlist_range(0, self.nlist, il)


IndexIVF.add_core = _ivf_add_core
IndexIVF.add_preassigned = _ivf_add_preassigned
IndexIVF.copy_subset_to = _ivf_copy_subset_to
IndexIVF.update_vectors = _ivf_update_vectors
IndexIVF.search_and_return_codes = _ivf_search_and_return_codes
IndexIVF.permute_invlists = _ivf_permute_invlists
IndexIVF.replace_invlists = _ivf_replace_invlists


# ---- ivflib ----------------------------------------------------------------------------------
def _ivf_of(index):
    from .ivf import extract_index_ivf
    return extract_index_ivf(index)


def _pretransform(index, x):
    """x through the transforms of an IndexPreTransform (else unchanged)."""
    x = as_matrix(x, index.d, "x")
    if type(index).__name__ == "IndexPreTransform":
        return index.apply(x) if hasattr(index, "apply") else index.apply_py(x)
    return x


def check_compatible_for_merge(index0, index1):
    """Raise unless the IVF indexes inside index0 and index1 can be merged."""
    ivf0, ivf1 = _ivf_of(index0), _ivf_of(index1)
    if type(index0).__name__ == "IndexPreTransform" or type(index1).__name__ == "IndexPreTransform":
        if type(index0) is not type(index1):
            raise InvalidArgumentError("cannot merge an IndexPreTransform with an index without transforms")
    ivf0.check_compatible_for_merge(ivf1)


def merge_into(index0, index1, shift_ids):
    """Move the entries of the IVF inside index1 into the one inside index0
    (ids shifted by index0.ntotal when shift_ids); index1 ends empty."""
    check_compatible_for_merge(index0, index1)
    ivf0, ivf1 = _ivf_of(index0), _ivf_of(index1)
    ivf0.merge_from(ivf1, ivf0.ntotal if shift_ids else 0)


def search_centroid(index, x):
    """The list (nearest centroid) of each vector of x: int64 (n,)."""
    ivf = _ivf_of(index)
    x = _pretransform(index, x)
    _, I = ivf.quantizer.search(x, 1)
    return I.ravel()


def search_and_return_centroids(index, x, k, params=None):
    """search(), plus the lists: (D, I, query_centroid_ids (n,) the nearest
    list of each query, result_centroid_ids (n, k) the list of each result, -1
    for missing results)."""
    ivf = _ivf_of(index)
    xt = _pretransform(index, x)
    D, I = index.search(x, k, params=params)
    _, qc = ivf.quantizer.search(xt, 1)
    lists, _ = ivf._locate_results(xt, np.ascontiguousarray(I, np.int64), params)
    return D, I, qc.ravel(), lists


def get_invlist_range(index, i0, i1):
    """A copy of the lists [i0, i1) of the IVF in index (as lists 0 .. i1-i0-1)."""
    return _ivf_of(index)._get_invlist_range(int(i0), int(i1))


def set_invlist_range(index, i0, i1, src):
    """Replace the lists [i0, i1) of the IVF in index by the lists of src."""
    _ivf_of(index)._set_invlist_range(int(i0), int(i1), src)


def _stats_delta(fn):
    st = _core.indexIVF_stats
    before = (st.ndis, st.quantization_time, st.search_time)
    out = fn()
    return out, {"ndis": st.ndis - before[0], "pre_transform_ms": 0.0,
                 "coarse_quantizer_ms": st.quantization_time - before[1],
                 "invlist_scan_ms": max(0.0, (st.search_time - before[2]) - (st.quantization_time - before[1]))}


def _default_params(index, params):
    if params:
        return params
    ivf = _ivf_of(index)
    return _core.SearchParametersIVF(nprobe=int(ivf.nprobe), max_codes=int(ivf.max_codes))


def search_with_parameters(index, x, k, params=None, output_stats=False):
    """index.search with params (default: the IVF's nprobe / max_codes);
    output_stats=True also returns {'ndis', 'pre_transform_ms',
    'coarse_quantizer_ms', 'invlist_scan_ms'} of this call."""
    params = _default_params(index, params)
    (D, I), stats = _stats_delta(lambda: index.search(x, k, params=params))
    return (D, I, stats) if output_stats else (D, I)


def range_search_with_parameters(index, x, radius, params=None, output_stats=False):
    """index.range_search with params; output_stats as search_with_parameters."""
    params = _default_params(index, params)
    (lims, D, I), stats = _stats_delta(lambda: index.range_search(x, radius, params=params))
    return (lims, D, I, stats) if output_stats else (lims, D, I)


def shard_ivf_index_centroids(index, shard_count=20, filename_template="shard.%d.index",
                              sharding_function=None, generate_ids=False):
    """Faiss's ivflib.shard_ivf_index_centroids: split the centroids of
    index.quantizer over shard_count copies of the (empty) IVF index: centroid
    i goes to shard sharding_function(i, shard_count) (default i %
    shard_count), shard j is written to filename_template % j.  With
    generate_ids each shard's quantizer is an IndexIDMap2 that keeps the
    centroids' original numbers."""
    from . import IndexIDMap2, clone_index, write_index
    if not isinstance(index, IndexIVF):
        raise InvalidTypeError(f"expected an IndexIVF, got {type(index).__name__}")
    shard_count = check_int(shard_count, "shard_count", minimum=1)
    if "%d" not in str(filename_template):
        raise InvalidArgumentError("filename_template must contain %d (the shard number)")
    q = index.quantizer
    if q.ntotal == 0:
        raise InvalidArgumentError("the quantizer holds no centroids: add them before sharding")
    cent = q.reconstruct_n(0, q.ntotal)
    if sharding_function is None:
        shard_of = np.arange(q.ntotal) % shard_count
    else:
        fn = sharding_function if callable(sharding_function) else sharding_function.__call__
        shard_of = np.array([int(fn(i, shard_count)) for i in range(q.ntotal)], dtype=np.int64)
        if shard_of.size and (shard_of.min() < 0 or shard_of.max() >= shard_count):
            raise InvalidArgumentError("sharding_function returned a shard number out of [0, shard_count)")
    for j in range(shard_count):
        ids = np.nonzero(shard_of == j)[0].astype(np.int64)
        shard = clone_index(index)
        sub = shard.quantizer
        sub.reset()
        if generate_ids:
            wrapped = IndexIDMap2(sub)
            wrapped.add_with_ids(cent[ids], ids)
            shard.quantizer = wrapped
        else:
            sub.add(cent[ids])
        write_index(shard, filename_template % j)


# ---- small utilities contrib uses ----------------------------------------------------------------
def matrix_bucket_sort_inplace(tab, nbucket=None, nt=0):
    """Bucket sort of an int matrix (values in [0, nbucket)), in place: on
    return tab.ravel()[lims[b]:lims[b + 1]] holds the row numbers of the
    entries equal to b (rows ascending); returns lims (nbucket + 1 int64)."""
    if not isinstance(tab, np.ndarray) or tab.dtype not in (np.int32, np.int64) or tab.ndim != 2 \
            or not tab.flags.c_contiguous:
        raise InvalidTypeError("tab must be a C-contiguous 2-D int32 or int64 array (it is sorted in place)")
    nrow, ncol = tab.shape
    flat = tab.reshape(-1)
    if nbucket is None:
        nbucket = int(flat.max()) + 1 if flat.size else 0
    nbucket = check_int(nbucket, "nbucket", minimum=0)
    if flat.size and (flat.min() < 0 or flat.max() >= nbucket):
        raise InvalidArgumentError(f"tab holds values outside [0, nbucket={nbucket})")
    order = np.argsort(flat, kind="stable")
    lims = np.zeros(nbucket + 1, np.int64)
    lims[1:] = np.cumsum(np.bincount(flat, minlength=nbucket))
    flat[:] = (order // max(ncol, 1)).astype(tab.dtype)
    return lims


def memcpy(dest, src, nbytes):
    """Faiss's memcpy between buffers (numpy arrays or swig_ptr(array)): the
    first nbytes of src are copied into dest."""
    nbytes = check_int(nbytes, "nbytes", minimum=0)
    d = ptr_array(dest, None, None, "dest", writable=True)
    s = ptr_array(src, None, None, "src")
    db = d.view(np.uint8) if d.flags.c_contiguous else None
    if db is None:
        raise InvalidArgumentError("dest must be C-contiguous")
    sb = np.ascontiguousarray(s).view(np.uint8)
    if nbytes > db.size or nbytes > sb.size:
        raise InvalidArgumentError(f"memcpy of {nbytes} bytes: dest holds {db.size}, src {sb.size}")
    db[:nbytes] = sb[:nbytes]


def _flat_permute_entries(self, perm):
    """Reorder the stored vectors: new vector i = old vector perm[i] (perm: ntotal int64)."""
    self._permute_entries(np.ascontiguousarray(ptr_array(perm, np.int64, self.ntotal, "perm")))


_core.IndexFlat.permute_entries = _flat_permute_entries
_core.IndexHNSW.permute_entries = _flat_permute_entries  # IndexHNSWFlat: vectors and graph relabelled


# ---- range search results in Faiss's pointer form ---------------------------------------------
class RangeSearchResult:
    """Faiss's RangeSearchResult: lims (nq + 1), distances and labels, as numpy
    arrays (rev_swig_ptr(res.lims, nq + 1) reads them as in Faiss)."""

    def __init__(self, nq, alloc_lims=True):
        self.nq = check_int(nq, "nq", minimum=0)
        self.lims = np.zeros(self.nq + 1, np.int64)
        self.distances = np.zeros(0, np.float32)
        self.labels = np.zeros(0, np.int64)

    def _set(self, lims, D, I):
        self.lims, self.distances, self.labels = lims, D, I


def _ivf_range_search_preassigned_c(self, n, x, radius, assign, centroid_dis, result, store_pairs=False,
                                    params=None, stats=None):
    """Faiss's pointer-level range_search_preassigned: results go to result (a RangeSearchResult)."""
    n = check_int(n, "n", minimum=0)
    xa = ptr_array(x, np.float32, n * self.d, "x").reshape(n, self.d)
    np_ = self.nprobe if params is None or not getattr(params, "nprobe", 0) else params.nprobe
    a = ptr_array(assign, np.int64, None, "assign")
    np_ = a.size // max(n, 1) if n else np_
    a = a[:n * np_].reshape(n, np_)
    cd = None if centroid_dis is None else ptr_array(centroid_dis, np.float32, n * np_, "centroid_dis").reshape(n, np_)
    if store_pairs:
        raise InvalidArgumentError("store_pairs is not supported: results are ids")
    lims, D, I = self.range_search_preassigned(xa, radius, a, cd, params)
    if not isinstance(result, RangeSearchResult):
        raise InvalidTypeError("result must be a RangeSearchResult")
    result._set(lims, D, I)


IndexIVF.range_search_preassigned_c = _ivf_range_search_preassigned_c
__all__ += ["RangeSearchResult"]


# Faiss's Level1Quantizer::quantizer_trains_alone: 0 k-means with the quantizer
# as assignment index, 1 the quantizer trains itself (a MultiIndexQuantizer),
# 2 k-means on a flat index, then the centroids added to the quantizer.
# annvil picks 1 for a MultiIndexQuantizer and k-means otherwise (results of
# 0 and 2 are the same centroids); the value set is kept and reported.
def _get_qta(self):
    if "_quantizer_trains_alone" in self.__dict__:
        return self.__dict__["_quantizer_trains_alone"]
    return 1 if isinstance(self.quantizer, MultiIndexQuantizer) else 0


def _set_qta(self, v):
    v = check_int(v, "quantizer_trains_alone")
    if v not in (0, 1, 2):
        raise InvalidArgumentError(f"quantizer_trains_alone must be 0, 1 or 2, got {v}")
    self.__dict__["_quantizer_trains_alone"] = v


IndexIVF.quantizer_trains_alone = property(_get_qta, _set_qta)


class CodeSet:
    """Faiss's CodeSet: a set of d-byte codes.  insert(codes (n, d) uint8)
    adds them and returns a bool (n,) array, True where a code was not in the
    set before (the first of duplicates within the batch counts as new)."""

    def __init__(self, d):
        self.d = check_int(d, "d", minimum=1)
        self._s = set()

    def insert(self, codes, inserted=None):
        c = np.ascontiguousarray(codes)
        if c.dtype != np.uint8:
            raise InvalidTypeError(f"codes must be uint8, got {c.dtype}")
        c = c.reshape(-1, self.d) if c.size % self.d == 0 else None
        if c is None:
            raise InvalidArgumentError(f"codes must hold n * d = n * {self.d} bytes")
        out = np.zeros(len(c), bool)
        s = self._s
        for i, row in enumerate(c):
            key = row.tobytes()
            if key not in s:
                s.add(key)
                out[i] = True
        if inserted is not None:
            ptr_array(inserted, None, len(c), "inserted", writable=True)[:] = out
            return inserted
        return out

    def __len__(self):
        return len(self._s)


__all__ += ["CodeSet"]
