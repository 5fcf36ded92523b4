"""Index files are untrusted input: mutated files, read through every loader
(in memory, from a file, memory-mapped with and without verification), must
either load and answer searches or raise annvil's IndexFileError (or another
annvil error), never crash.  The mmap path without verification is the one
that matters most: its checksum is not read, so every id, link and offset
must be range-checked at load time."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annvil

D = 16
FACTORY = ["Flat", "IDMap,Flat", "IDMap2,Flat", "HNSW8", "HNSW8_SQ8", "HNSW8_PQ4", "SQ8", "PQ4",
           "IVF4,Flat", "IVF4,PQ4", "IVF4,SQ8", "IVF4,PQ8x4fs", "IVF4,Flat,RFlat", "OPQ4,Flat", "L2norm,HNSW8",
           "QG32,PQ4x4", "PQ8x4fs", "LSH"]

_rng = np.random.default_rng(7)
_X = _rng.random((300, D), dtype="float32")
_Q = _rng.random((3, D), dtype="float32")


def _blob(name):
    idx = annvil.index_factory(D, name)
    if not idx.is_trained:
        idx.train(_X)
    if "IDMap" in name:
        idx.add_with_ids(_X, np.arange(len(_X), dtype="int64") * 5 + 1)
    else:
        idx.add(_X)
    return bytes(annvil.serialize_index(idx))


_BLOBS = {name: _blob(name) for name in FACTORY}


def _exercise(idx):
    D_, I_ = idx.search(_Q, 5)
    assert D_.shape == (3, 5) and I_.shape == (3, 5)
    n = idx.ntotal
    if n:
        try:
            idx.reconstruct(0)
        except annvil.AnnvilError:
            pass


def _load_all(data, path):
    """Every loader; each either raises an annvil error or gives a usable index."""
    with open(path, "wb") as f:
        f.write(data)
    loaders = [
        lambda: annvil.deserialize_index(np.frombuffer(data, dtype="uint8")),
        lambda: annvil.read_index(path),
        lambda: annvil.read_index(path, mmap=True),                 # no checksum pass
        lambda: annvil.read_index(path, mmap=True, verify=True),
    ]
    for load in loaders:
        try:
            idx = load()
        except annvil.AnnvilError:
            continue
        try:
            _exercise(idx)
        except annvil.AnnvilError:
            pass


@pytest.mark.parametrize("name", FACTORY)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_file_never_crashes(name, data, tmp_path_factory):
    blob = bytearray(_BLOBS[name])
    # mutations: bit flips, 4-byte word overwrites (ids, links, counts), truncation
    nmut = data.draw(st.integers(1, 4))
    for _ in range(nmut):
        if len(blob) < 8:
            break
        kind = data.draw(st.sampled_from(["flip", "word", "truncate"]))
        if kind == "flip":
            pos = data.draw(st.integers(0, len(blob) - 1))
            blob[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "word":
            pos = data.draw(st.integers(0, len(blob) - 4))
            val = data.draw(st.sampled_from([-2, -1, 0, 1, 2**31 - 1, -2**31, 50_000_000, 300, 301]))
            blob[pos:pos + 4] = int(val).to_bytes(4, "little", signed=True)
        else:
            blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    path = os.path.join(tmp_path_factory.mktemp("fuzz"), "m.idx")
    _load_all(bytes(blob), path)


@pytest.mark.parametrize("name", ["HNSW8", "HNSW8_SQ8", "HNSW8_PQ4"])
def test_every_hnsw_link_word_is_checked_on_mmap(name, tmp_path):
    """Overwrite each level-0 link of node 0 with an out-of-range id: a mapped
    load without verification must reject the file (it used to segfault)."""
    idx = annvil.deserialize_index(np.frombuffer(_BLOBS[name], dtype="uint8"))
    nb = idx.hnsw.get_neighbors(0, 0).astype("<i4").tobytes()
    blob = bytearray(_BLOBS[name])
    off = bytes(blob).find(nb)
    assert off > 0
    path = str(tmp_path / "bad.idx")
    for j in range(len(nb) // 4):
        b = bytearray(blob)
        b[off + 4 * j:off + 4 * j + 4] = (50_000_000).to_bytes(4, "little")
        with open(path, "wb") as f:
            f.write(b)
        with pytest.raises(annvil.IndexFileError, match="link out of range"):
            annvil.read_index(path, mmap=True)
        with pytest.raises(annvil.IndexFileError):
            annvil.read_index(path)
