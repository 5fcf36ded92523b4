"""index_factory: the grammar is checked against Faiss's own factory by
building every string from Faiss's classes with our parser (so it runs with
only the foundation present), and annvil's objects are built for the strings
whose classes this build has."""
import numpy as np
import pytest

import annvil
from annvil.factory import _build, check_description

faiss = pytest.importorskip("faiss")

STRINGS = [
    "Flat", "IDMap,Flat", "IDMap2,Flat", "PQ8", "PQ8x4", "PQ8x10", "PQ8x4fs", "SQ8", "SQfp16", "SQ4",
    "IVF16,Flat", "IVF16,PQ8", "IVF16,PQ8x4", "IVF16,PQ8x4fs", "IVF16,SQ8", "IVF16,SQfp16",
    "IVF16_HNSW32,Flat", "OPQ8_32,IVF16,PQ8", "OPQ8,PQ8", "OPQ8_32,PQ8", "L2norm,Flat", "L2norm,IVF16,Flat",
    "IVF16,Flat,RFlat", "IVF16,PQ8,Refine(Flat)", "IVF16,Flat,Refine(PQ8)", "Flat,RFlat", "PQ8x4fs,RFlat",
    "IVF16,PQ8x4fs,RFlat", "OPQ8_32,IVF16,PQ8x4fs,RFlat", "IDMap2,IVF16,SQ8", "IDMap,OPQ8_32,IVF16,PQ8,RFlat",
    "HNSW", "HNSW16", "HNSW16,Flat", "HNSW16,SQ8", "HNSW16,PQ8", "HNSW16,PQ8x4", "IDMap,HNSW16",
    "HNSW16,PQ8,RFlat",
    # Faiss's newer grammar: 'np', k/M list counts, IDMap as a suffix, HNSW coarse quantizers,
    # quantizers built from a description, HNSW{M}_{storage}, fast-scan block size / residuals
    "PQ8np", "PQ8x10np", "IVF16,PQ8np", "IVF16,PQ8x4np", "HNSW16,PQ8np", "IVF1k,Flat", "IVF2k,PQ8",
    "Flat,IDMap", "Flat,IDMap2", "IVF16,Flat,IDMap", "IVF16,Flat,IDMap2", "IVF16,SQ8,IDMap2",
    "IVF16_HNSW,Flat", "IVF64_HNSW16,SQ8", "IVF16(PQ8),Flat", "IVF16(IVF4,SQ8,Refine(Flat)),Flat",
    "HNSW16_SQ8", "HNSW16_PQ8", "HNSW_Flat", "L2Norm,Flat", "PQ8x4fs_64", "IVF16,PQ8x4fs_64",
    "IVF16,PQ8x4fsr", "IVF16,PQ8x4fsr_64", "IVF16,Flat,Refine(SQ8)", "IVF16,PQ8,Refine(SQfp16)",
    "IDMap,PQ8x4fs,RFlat", "L2norm,IVF16,Flat,IDMap", "L2norm,IDMap,Flat", "OPQ8_32,IDMap2,IVF16,SQ8",
    # client strings (autofaiss, txtai)
    "OPQ16_64,IVF256_HNSW32,PQ16x8", "IVF100_HNSW32,PQ8x8", "HNSW15", "IVF16,SQ8,IDMap",
]

_keep = []


def _structure(ix, mod):
    """Class names, sizes and metric of an index tree, from Faiss or annvil."""
    if mod is faiss:
        _keep.append(ix)
        ix = faiss.downcast_index(ix)
        _keep.append(ix)
    name = type(ix).__name__.replace("IndexFlatL2", "IndexFlat").replace("IndexFlatIP", "IndexFlat")
    parts = [name, f"d={ix.d}", f"metric={ix.metric_type}"]
    for attr in ("index", "base_index", "quantizer", "refine_index"):
        sub = getattr(ix, attr, None)
        if sub is not None and not callable(sub):
            parts.append(f"{attr}=({_structure(sub, mod)})")
    if hasattr(ix, "nlist"):
        parts.append(f"nlist={ix.nlist}")
    if hasattr(ix, "pq"):
        parts.append(f"pq={ix.pq.M}x{ix.pq.nbits}")
    if hasattr(ix, "hnsw") and mod is faiss:
        parts.append(f"M={ix.hnsw.nb_neighbors(1)}")
    for attr in ("do_polysemous_training", "bbs", "by_residual"):
        if hasattr(ix, attr) and not (attr == "by_residual" and not hasattr(ix, "nlist")):
            parts.append(f"{attr}={getattr(ix, attr)}")
    if hasattr(ix, "nlist") and hasattr(ix, "cp"):
        parts.append(f"spherical={ix.cp.spherical}")
    return " ".join(parts)


@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("s", STRINGS)
def test_grammar_matches_faiss(s, metric):
    if s.startswith(("HNSW16,PQ", "HNSW16_PQ")) and metric == annvil.METRIC_INNER_PRODUCT:
        pytest.skip("Faiss's IndexHNSWPQ ignores the metric argument of index_factory")
    ref = _structure(faiss.index_factory(64, s, metric), faiss)
    ours = _structure(_build(64, s, metric, faiss), faiss)
    assert ours == ref


@pytest.mark.parametrize("s", STRINGS)
def test_annvil_builds_or_names_missing_class(s):
    try:
        ix = annvil.index_factory(64, s)
    except annvil.InvalidArgumentError as e:
        msg = str(e)
        # either a missing class, or a quantizer type this build does not implement (SQ4/SQ6)
        assert ("needs" in msg and "this build" in msg) or "unsupported scalar quantizer type" in msg \
            or "supports bbs=32 only" in msg, msg
        pytest.skip(f"this build lacks a class or type: {msg.splitlines()[0]}")
    assert isinstance(ix, annvil.Index)
    assert ix.d == 64
    ref = _structure(faiss.index_factory(64, s), faiss)
    # compare the top-level class (annvil's sub-objects need not mirror Faiss's storage
    # layout); Refine(Flat) may be built as IndexRefineFlat when IndexRefine is absent
    top = _structure(ix, annvil).split(" ")[0]
    assert top == ref.split(" ")[0] or (top, ref.split(" ")[0]) == ("IndexRefineFlat", "IndexRefine")


@pytest.mark.parametrize("metric", [annvil.METRIC_L2, annvil.METRIC_INNER_PRODUCT])
def test_flat_search_exact(metric):
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((300, 17)).astype(np.float32)
    xq = rng.standard_normal((11, 17)).astype(np.float32)
    ix = annvil.index_factory(17, "Flat", metric)
    assert type(ix).__name__ == "IndexFlat" and ix.metric_type == metric
    ix.add(xb)
    ref = faiss.index_factory(17, "Flat", metric)
    ref.add(xb)
    np.testing.assert_array_equal(ix.search(xq, 5)[1], ref.search(xq, 5)[1])


@pytest.mark.parametrize("s,cls", [("IDMap,Flat", "IndexIDMap"), ("IDMap2,Flat", "IndexIDMap2")])
def test_idmap(s, cls):
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((50, 8)).astype(np.float32)
    ix = annvil.index_factory(8, s)
    assert type(ix).__name__ == cls
    assert type(ix.index).__name__ == "IndexFlat"
    ids = np.arange(50) * 10 + 7
    ix.add_with_ids(xb, ids)
    _, I = ix.search(xb[:3], 1)
    np.testing.assert_array_equal(I[:, 0], ids[:3])


BAD = ["", "Foo", "IVF16", "IVF,Flat", "IVF16,Foo", "PQ7", "PQ8x5fs", "PQ8x20", "HNSW16,Flat,Flat",
       "IVF16,Flat,Refine(Flat", "Flat)", "IDMap", "L2norm", "OPQ3_64,Flat", "Flat,,RFlat", "RFlat",
       "IVF0,Flat", "HNSW0", "flat", "IDMap,Flat,IDMap2", "PQ8x4fs_48", "PQ8x4fsr", "IVF16k3,Flat",
       "HNSW16_SQ8,Flat", "IVF16(Foo),Flat", "IVF16,PQ8xnp"]


@pytest.mark.parametrize("s,piece", [("IVF16,FlatDedup", "FlatDedup"), ("NSG32,Flat", "NSG32"),
                                     ("IVF16,Foo", "Foo"), ("Bar", "Bar"), ("HNSW16,Baz", "Baz")])
def test_error_names_the_unsupported_piece(s, piece):
    with pytest.raises(annvil.InvalidArgumentError) as e:
        annvil.index_factory(32, s)
    assert f"'{piece}'" in str(e.value).splitlines()[0]
    assert isinstance(e.value, RuntimeError)  # Faiss raises RuntimeError for these


@pytest.mark.parametrize("s,nlist", [("IVF3k,Flat", 3072), ("IVF1M,Flat", 1 << 20), ("IVF2k_HNSW,Flat", 2048)])
def test_list_count_suffixes(s, nlist):
    assert annvil.index_factory(8, s).nlist == nlist
    check_description(s)


def test_suffix_idmap_wraps_everything():
    ix = annvil.index_factory(16, "IVF4,Flat,IDMap2")
    assert type(ix).__name__ == "IndexIDMap2" and type(ix.index).__name__ == "IndexIVFFlat"
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 16)).astype(np.float32)
    ix.train(x)
    ix.add_with_ids(x, np.arange(200) + 1000)
    _, I = ix.search(x[:5], 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(5) + 1000)


def test_ivf_hnsw_quantizer_searches_like_faiss():
    rng = np.random.default_rng(4)
    xt = rng.standard_normal((2000, 24)).astype(np.float32)
    ours = annvil.index_factory(24, "IVF32_HNSW8,Flat")
    ref = faiss.index_factory(24, "IVF32_HNSW8,Flat")
    assert type(ours.quantizer).__name__ == "IndexHNSWFlat"
    for ix in (ours, ref):
        ix.train(xt)
        ix.add(xt)
        ix.nprobe = 32  # every list: exact whatever the coarse assignment
    D, I = ours.search(xt[:20], 5)
    Dr, Ir = ref.search(xt[:20], 5)
    np.testing.assert_allclose(D, Dr, rtol=1e-4, atol=1e-4)


def test_polysemous_flag_as_faiss():
    for s in ("PQ8", "PQ8np", "IVF16,PQ8", "IVF16,PQ8np"):
        assert annvil.index_factory(16, s).do_polysemous_training == \
            faiss.index_factory(16, s).do_polysemous_training, s


@pytest.mark.parametrize("s", BAD)
def test_bad_descriptions(s):
    with pytest.raises(annvil.InvalidArgumentError, match="supported grammar"):
        annvil.index_factory(64, s)
    with pytest.raises(annvil.InvalidArgumentError):
        check_description(s, 64)


@pytest.mark.parametrize("d", [0, -3, 2.5, "64", None])
def test_bad_dimension(d):
    with pytest.raises(annvil.InvalidArgumentError, match="d must be"):
        annvil.index_factory(d, "Flat")


def test_bad_arguments():
    with pytest.raises(annvil.InvalidArgumentError, match="string"):
        annvil.index_factory(8, 123)
    with pytest.raises(annvil.InvalidArgumentError, match="metric"):
        annvil.index_factory(8, "Flat", 7)


def test_grammar_check_without_classes():
    # every grammar item parses without the classes (used to validate CLI input early)
    for s in STRINGS:
        check_description(s)
    check_description("PQ7")  # no dimension given: divisibility is not checked
