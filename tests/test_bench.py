"""annvil.bench: dataset readers on small files written here, the harness,
its output files, and the `python -m annvil bench|tune` command line."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import annvil
from annvil.bench import (IndexConfig, Result, family_of, load_dataset, load_toml_config, parse_index_spec,
                          read_bvecs, read_fvecs, read_ivecs, run_benchmark, summarize, write_results)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(annvil.__file__)))


def _vecs_bytes(rows, fmt):
    out = b""
    for r in rows:
        out += struct.pack("<i", len(r)) + struct.pack(f"<{len(r)}{fmt}", *r)
    return out


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    return rng.standard_normal((200, 8)).astype(np.float32), rng.standard_normal((20, 8)).astype(np.float32)


# ---- readers ------------------------------------------------------------------
def test_vecs_readers(tmp_path):
    f = [[1.5, -2.0, 3.25], [0.0, 1.0, 2.0]]
    (tmp_path / "a.fvecs").write_bytes(_vecs_bytes(f, "f"))
    np.testing.assert_array_equal(read_fvecs(tmp_path / "a.fvecs"), np.array(f, np.float32))
    i = [[7, 8], [-1, 2], [3, 4]]
    (tmp_path / "a.ivecs").write_bytes(_vecs_bytes(i, "i"))
    np.testing.assert_array_equal(read_ivecs(tmp_path / "a.ivecs"), np.array(i, np.int32))
    b = [[0, 255, 3, 4]]
    (tmp_path / "a.bvecs").write_bytes(_vecs_bytes(b, "B"))
    np.testing.assert_array_equal(read_bvecs(tmp_path / "a.bvecs", mmap=True), np.array(b, np.uint8))


def test_vecs_bad_files(tmp_path):
    (tmp_path / "t.fvecs").write_bytes(_vecs_bytes([[1.0, 2.0]], "f")[:-2])
    with pytest.raises(annvil.InvalidArgumentError, match="truncated|multiple"):
        read_fvecs(tmp_path / "t.fvecs")
    (tmp_path / "m.fvecs").write_bytes(_vecs_bytes([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]], "f")
                                       + _vecs_bytes([[5.0, 6.0]], "f"))
    with pytest.raises(annvil.InvalidArgumentError):
        read_fvecs(tmp_path / "m.fvecs")
    (tmp_path / "n.fvecs").write_bytes(struct.pack("<i", -4) + b"\0" * 12)
    with pytest.raises(annvil.InvalidArgumentError, match="dimension"):
        read_fvecs(tmp_path / "n.fvecs")
    with pytest.raises(FileNotFoundError):
        read_fvecs(tmp_path / "missing.fvecs")


def test_texmex_directory(tmp_path, small):
    xb, xq = small
    d = tmp_path / "sift"
    d.mkdir()
    (d / "sift_base.fvecs").write_bytes(_vecs_bytes(xb.tolist(), "f"))
    (d / "sift_query.fvecs").write_bytes(_vecs_bytes(xq.tolist(), "f"))
    _, gt = annvil.knn(xq, xb, 5)
    (d / "sift_groundtruth.ivecs").write_bytes(_vecs_bytes(gt.tolist(), "i"))
    for spec in (d, d / "sift_base.fvecs"):
        ds = load_dataset(spec, cache_dir=str(tmp_path / "cache"))
        np.testing.assert_array_equal(ds.train, xb)
        np.testing.assert_array_equal(ds.test, xq)
        assert ds.metric == "l2"
        np.testing.assert_array_equal(ds.ground_truth(5), gt)


def test_hdf5_reader(tmp_path, small):
    h5py = pytest.importorskip("h5py")
    xb, xq = small
    _, gt = annvil.knn(xq, xb, 10)
    p = tmp_path / "toy-8-euclidean.hdf5"
    with h5py.File(p, "w") as f:
        f.attrs["distance"] = "euclidean"
        f["train"], f["test"], f["neighbors"] = xb, xq, gt.astype(np.int32)
        f["distances"] = np.zeros(gt.shape, np.float32)
    ds = load_dataset(p)
    assert ds.name == "toy-8-euclidean" and ds.metric == "l2" and ds.d == 8
    np.testing.assert_array_equal(ds.train, xb)
    np.testing.assert_array_equal(ds.ground_truth(10), gt)
    p2 = tmp_path / "toy-angular.hdf5"
    with h5py.File(p2, "w") as f:
        f.attrs["distance"] = "angular"
        f["train"], f["test"] = xb * 3, xq
    ds = load_dataset(p2, cache_dir=str(tmp_path))
    assert ds.metric == "angular" and ds.metric_type == annvil.METRIC_INNER_PRODUCT
    np.testing.assert_allclose(np.linalg.norm(ds.train, axis=1), 1, rtol=1e-5)
    gt2 = ds.ground_truth(3)  # computed on the normalised vectors
    np.testing.assert_array_equal(gt2, annvil.knn(ds.test, ds.train, 3, annvil.METRIC_INNER_PRODUCT)[1])
    p3 = tmp_path / "bad.hdf5"
    with h5py.File(p3, "w") as f:
        f["train"] = xb
    with pytest.raises(annvil.InvalidArgumentError, match="missing"):
        load_dataset(p3)
    p4 = tmp_path / "jac.hdf5"
    with h5py.File(p4, "w") as f:
        f.attrs["distance"] = "jaccard"
        f["train"], f["test"] = xb, xq
    with pytest.raises(annvil.InvalidArgumentError, match="jaccard"):
        load_dataset(p4)


def test_npy_dir(tmp_path, small):
    xb, xq = small
    xb = xb / np.linalg.norm(xb, axis=1, keepdims=True)
    xq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    D, I = annvil.knn(xq, xb, 10, annvil.METRIC_INNER_PRODUCT)
    d = tmp_path / "ds"
    d.mkdir()
    np.save(d / "train.f16.npy", xb.astype(np.float16))
    np.save(d / "test.f16.npy", xq.astype(np.float16))
    np.save(d / "neighbors.i32.npy", I.astype(np.int32))
    np.save(d / "distances.f32.npy", D)
    ds = load_dataset(d)
    assert ds.metric == "ip"  # inferred: the stored distances decrease along each row
    assert ds.train.dtype == np.float32 and ds.train.shape == (200, 8)
    np.testing.assert_array_equal(ds.ground_truth(10), I)
    (d / "dataset.json").write_text(json.dumps({"metric": "euclidean"}))
    assert load_dataset(d).metric == "l2"
    assert load_dataset(d, metric="ip").metric == "ip"
    sub = load_dataset(d, n_train=100, n_test=5, cache_dir=str(tmp_path / "c"))
    assert sub.train.shape == (100, 8) and sub.test.shape == (5, 8)
    gt = sub.ground_truth(4)  # neighbours recomputed for the subsample
    np.testing.assert_array_equal(gt, annvil.knn(sub.test, sub.train, 4, annvil.METRIC_INNER_PRODUCT)[1])


def test_ground_truth_cache(tmp_path, monkeypatch):
    ds = load_dataset("synthetic-gaussian-500-8-10q", cache_dir=str(tmp_path))
    gt = ds.ground_truth(5)
    assert len(list(tmp_path.glob("gt-*.npy"))) == 1
    ds2 = load_dataset("synthetic-gaussian-500-8-10q", cache_dir=str(tmp_path))
    monkeypatch.setattr(annvil, "knn", lambda *a, **k: pytest.fail("ground truth was recomputed"))
    np.testing.assert_array_equal(ds2.ground_truth(5), gt)


def test_synthetic():
    a = load_dataset("synthetic-clustered-2k-16-50q", seed=1)
    b = load_dataset("synthetic-clustered-2k-16-50q", seed=1)
    c = load_dataset("synthetic-clustered-2k-16-50q", seed=2)
    assert a.train.shape == (2000, 16) and a.test.shape == (50, 16)
    np.testing.assert_array_equal(a.train, b.train)
    assert not np.array_equal(a.train, c.train)
    assert load_dataset("synthetic-gaussian-300-4-ip").metric == "ip"
    t = load_dataset("synthetic-text-3k-48-20q")  # text-like: unit norm, inner product by default
    assert t.metric == "ip" and t.train.shape == (3000, 48)
    np.testing.assert_allclose(np.linalg.norm(t.train, axis=1), 1, rtol=1e-5)
    assert load_dataset("synthetic-text-1k-8-l2").metric == "l2"
    for bad in ("synthetic-foo-1k-8", "synthetic-clustered-0-8"):
        with pytest.raises(annvil.InvalidArgumentError, match="synthetic"):
            load_dataset(bad)


def test_bad_datasets(tmp_path, small):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_dataset(tmp_path / "nope.hdf5")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(annvil.InvalidArgumentError, match="format"):
        load_dataset(tmp_path / "x.txt")
    xb, xq = small
    d = tmp_path / "mismatch"
    d.mkdir()
    np.save(d / "train.npy", xb)
    np.save(d / "test.npy", xq[:, :5])
    with pytest.raises(annvil.InvalidArgumentError, match="dimension"):
        load_dataset(d)
    np.save(d / "test.npy", xq)
    np.save(d / "neighbors.npy", np.full((20, 3), 999))
    with pytest.raises(annvil.InvalidArgumentError, match="outside"):
        load_dataset(d)
    (d / "neighbors.npy").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(annvil.InvalidArgumentError, match="no base"):
        load_dataset(empty)


# ---- configs and the harness -------------------------------------------------------
def test_index_specs_and_toml(tmp_path):
    c = parse_index_spec("IVF64,Flat:nprobe=1/4:k_factor_rf=2")
    assert c.factory == "IVF64,Flat" and c.search == ["nprobe=1,k_factor_rf=2", "nprobe=4,k_factor_rf=2"]
    c = parse_index_spec("HNSW32:efConstruction=80:efSearch=16/32")
    assert c.build == {"efConstruction": 80.0} and c.search == ["efSearch=16", "efSearch=32"]
    assert parse_index_spec("Flat").search == [""]
    for bad in ("Foo", "Flat:nprobe", "IVF16,Flat:nprobe=a/b", ":nprobe=1", "HNSW32:efConstruction=1/2"):
        with pytest.raises(annvil.InvalidArgumentError):
            parse_index_spec(bad)
    p = tmp_path / "b.toml"
    p.write_text('[bench]\ndataset = "synthetic-gaussian-500-8"\nk = 5\n'
                 '[[index]]\nfactory = "Flat"\n'
                 '[[index]]\nfactory = "IVF16,Flat"\nnprobe = [1, 2]\n')
    settings, cfgs = load_toml_config(p)
    assert settings == {"dataset": "synthetic-gaussian-500-8", "k": 5}
    assert [c.factory for c in cfgs] == ["Flat", "IVF16,Flat"] and cfgs[1].search == ["nprobe=1", "nprobe=2"]
    p.write_text('[[index]]\nfactory = "Nope"\n')
    with pytest.raises(annvil.InvalidArgumentError):
        load_toml_config(p)
    p.write_text("[[index]\n")
    with pytest.raises(annvil.InvalidArgumentError, match="TOML"):
        load_toml_config(p)
    with pytest.raises(FileNotFoundError):
        load_toml_config(tmp_path / "none.toml")


def test_run_benchmark_and_outputs(tmp_path):
    ds = load_dataset("synthetic-clustered-2k-16-40q", cache_dir=str(tmp_path))
    libs = ["annvil"] + (["faiss"] if _has("faiss") else [])
    cfgs = [IndexConfig("Flat"), parse_index_spec("IVF16,Flat:nprobe=1/16")]
    res = run_benchmark(ds, cfgs, k=5, libraries=libs, threads=1, latency_queries=5, progress=False,
                        log=lambda m: None)
    flat = [r for r in res if r.index == "Flat"]
    assert {r.library for r in flat} == set(libs)
    for r in flat:
        assert r.recall == 1.0 and r.qps > 0 and r.p99_ms >= r.p50_ms > 0
        assert r.bytes_per_vector >= 16 * 4 and r.threads == 1
    ivf = [r for r in res if r.index == "IVF16,Flat"]
    if _has("faiss"):
        faiss_ivf = [r for r in ivf if r.library == "faiss"]
        assert len(faiss_ivf) == 2 and faiss_ivf[1].recall >= faiss_ivf[0].recall
    assert bool([r for r in ivf if r.library == "annvil"]) == (getattr(annvil, "IndexIVFFlat", None) is not None)
    paths = write_results(res, str(tmp_path / "out"), meta={"x": 1})
    data = json.loads(open(paths["json"]).read())
    assert len(data["results"]) == len(res) and data["meta"] == {"x": 1}
    assert open(paths["csv"]).read().startswith("library,index,")
    assert os.path.getsize(paths["png"]) > 1000
    with pytest.raises(annvil.InvalidArgumentError, match="library"):
        run_benchmark(ds, cfgs, libraries=["nope"], progress=False)


def _has(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def test_family_labels_and_summary():
    assert [family_of(f) for f in ("Flat", "HNSW32", "HNSW32,SQ8", "IVF256,PQ96x4fs,RFlat", "IVF1024,SQ8",
                                   "IVF64,Flat")] == ["Flat", "HNSW", "HNSW-SQ8", "IVF-PQfs+refine", "IVF-SQ8",
                                                      "IVF-Flat"]

    def r(lib, recall, qps):
        return Result(lib, "HNSW32", "", f"efSearch={int(qps)}", 10, recall, qps, 1.0, 2.0, 1.0, 100.0, 1, 10,
                      "HNSW")

    res = [r("annvil", 0.91, 300), r("annvil", 0.96, 200), r("annvil", 0.85, 900), r("faiss", 0.92, 150),
           r("faiss", 0.97, 100), r("hnswlib", 0.89, 1000)]
    s = summarize(res)
    assert s["annvil"]["0.9"]["qps"] == 300 and s["annvil"]["0.95"]["qps"] == 200
    assert s["faiss"]["0.9"]["annvil_ratio"] == pytest.approx(2.0)
    assert s["faiss"]["0.95"]["annvil_ratio"] == pytest.approx(2.0)
    assert s["hnswlib"]["0.9"] is None  # never reaches the target


# ---- command line ---------------------------------------------------------------
def _cli(*args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["ANNVIL_CACHE"] = str(cwd / "cache")
    return subprocess.run([sys.executable, "-m", "annvil", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_bench(tmp_path):
    r = _cli("bench", "--dataset", "synthetic-clustered-2k-16-30q", "--libraries", "annvil,faiss",
             "--latency-queries", "5", "--threads", "1", "--no-progress", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for f in ("results.json", "results.csv", "recall_qps.png"):
        assert (tmp_path / "out" / f).exists()
    assert "recall" in r.stdout and "annvil" in r.stdout


def test_cli_bench_toml(tmp_path):
    (tmp_path / "b.toml").write_text(
        '[bench]\ndataset = "synthetic-gaussian-1k-8-20q"\nk = 5\nlibraries = ["annvil"]\n'
        'latency-queries = 3\nprogress = false\nplot = false\nout = "o"\n[[index]]\nfactory = "Flat"\n')
    r = _cli("bench", "--config", "b.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [x["library"] for x in res["results"]] == ["annvil"] and res["meta"]["k"] == 5
    assert not (tmp_path / "o" / "recall_qps.png").exists()


def test_cli_default_bench_has_every_installed_library(tmp_path):
    # the default configurations and libraries on the tiny text-like set
    r = _cli("bench", "--tiny", "--threads", "1", "--latency-queries", "5", "--no-progress", "--out", "out",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    installed = {lib for lib in ("annvil", "faiss", "hnswlib", "usearch") if _has(lib)}
    assert {x["library"] for x in data["results"]} == installed
    assert set(data["summary"]) == installed and data["meta"]["metric"] == "ip"
    fams = {x["family"] for x in data["results"] if x["library"] == "annvil"}
    want = {"Flat", "HNSW"} | ({"HNSW-SQ8"} if getattr(annvil, "IndexHNSWSQ", None) else set())
    assert want <= fams, fams
    for x in data["results"]:
        assert x["qps"] > 0 and x["p99_ms"] >= x["p50_ms"] > 0 and x["add_per_s"] > 0 and x["build_s"] > 0
        assert x["bytes_per_vector"] > 0
    assert any(x["remove_per_s"] for x in data["results"] if x["library"] == "annvil")
    assert data["summary"]["annvil"]["0.9"] is not None
    assert "annvil / it" in r.stdout and (tmp_path / "out" / "recall_qps.png").stat().st_size > 10000


def test_cli_tune(tmp_path):
    r = _cli("tune", "--dataset", "synthetic-clustered-2k-16-30q", "--budget", "10", "--strategy", "grid",
             "--families", "flat", "--target", "0.9", "--out", "t.json", "--plot", "t.png", "--report", "r.html",
             "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "t.json").read_text())
    assert d["target_reached"] and d["best"]["factory"] == "Flat" and d["best"]["recall_heldout"] == 1.0
    assert (tmp_path / "t.png").exists()
    assert "data:image/png;base64," in (tmp_path / "r.html").read_text()


def test_cli_errors(tmp_path):
    r = _cli("bench", "--dataset", str(tmp_path / "missing.hdf5"), "--no-progress", cwd=tmp_path)
    assert r.returncode == 2 and "not found" in r.stderr
    r = _cli("bench", "--index", "Bogus,Thing", "--no-progress", cwd=tmp_path)
    assert r.returncode == 2 and "supported grammar" in r.stderr
    r = _cli("tune", "--dataset", "synthetic-gaussian-300-4", "--strategy", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = _cli(cwd=tmp_path)
    assert r.returncode == 2 and "bench" in r.stdout
