"""ParameterSpace / OperatingPoints / criteria against Faiss's, and annvil.tune.

ParameterSpace looks at attributes, not classes, so its Faiss semantics are
checked on Faiss indexes (always available) and on annvil's when this build
has the families.  annvil.tune is run on annvil and, for the strategies, on
Faiss's classes through its private `_ns` hook (the same tuner must find the
same kind of answer on either engine)."""
import json

import numpy as np
import pytest

import annvil
from annvil import (IntersectionCriterion, OneRecallAtRCriterion, OperatingPoints, ParameterSpace,
                    TuneResult, pareto_front)
from annvil.tuner import bisect_min

faiss = pytest.importorskip("faiss")

HAVE_IVF = getattr(annvil, "IndexIVFFlat", None) is not None
HAVE_HNSW = getattr(annvil, "IndexHNSWFlat", None) is not None
HAVE_REFINE = getattr(annvil, "IndexRefineFlat", None) is not None


def clustered(n, d, seed=0, nc=20):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((nc, d)).astype(np.float32) * 3
    return (c[rng.integers(nc, size=n)] + rng.standard_normal((n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return clustered(3000, 16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tuner's timings on a shared 2-core machine: one OpenMP thread
    avoids threads spinning at barriers while another process holds the
    other core (wall time many times the CPU time)."""
    before = annvil.omp_get_max_threads()
    faiss_before = faiss.omp_get_max_threads()
    annvil.omp_set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    annvil.omp_set_num_threads(before)
    faiss.omp_set_num_threads(faiss_before)


# ---- ParameterSpace ------------------------------------------------------------
@pytest.mark.parametrize("s", ["Flat", "IVF64,Flat", "IVF64,Flat,RFlat", "HNSW16", "IVF16,PQ4x4fs,RFlat",
                               "L2norm,IVF32,Flat", "IVF16_HNSW16,Flat", "OPQ4_16,IVF16,PQ4"])
def test_initialize_matches_faiss(s):
    ix = faiss.index_factory(16, s)
    ref = faiss.ParameterSpace()
    ref.initialize(ix)
    ours = ParameterSpace()
    ours.initialize(ix)
    ref_ranges = {}
    for i in range(ref.parameter_ranges.size()):
        pr = ref.parameter_ranges.at(i)  # keep the proxy alive while reading its values
        ref_ranges[pr.name] = [float(v) for v in faiss.vector_to_array(pr.values)]
    ours_ranges = {p.name: [float(v) for v in p.values] for p in ours.parameter_ranges}
    ref_ranges.pop("ht", None)  # polysemous PQ codes: annvil has none
    assert ours_ranges == ref_ranges
    if "ht" not in [ref.parameter_ranges.at(i).name for i in range(ref.parameter_ranges.size())]:
        assert ours.n_combinations() == ref.n_combinations()
        for c in range(ours.n_combinations()):
            assert ours.combination_name(c) == ref.combination_name(c)
        assert ours.combinations == [ref.combination_name(c) for c in range(ref.n_combinations())]


def test_initialize_sees_through_idmap():
    ps = ParameterSpace()
    ps.initialize(faiss.index_factory(16, "IDMap,IVF32,Flat"))
    assert [p.name for p in ps.parameter_ranges] == ["nprobe"]
    assert ps.parameter_ranges[0].values == [1, 2, 4, 8, 16]


def _sub(ix, *attrs):
    for a in attrs:
        ix = faiss.downcast_index(getattr(faiss.downcast_index(ix), a))
    return ix


def test_set_parameters_through_wrappers_faiss():
    ps = ParameterSpace()
    ix = faiss.index_factory(16, "IDMap,IVF64,Flat")
    ps.set_index_parameters(ix, "nprobe=3")
    assert _sub(ix, "index").nprobe == 3
    ix = faiss.index_factory(16, "IVF64,Flat,RFlat")
    ps.set_index_parameters(ix, "nprobe=4,k_factor_rf=8")
    assert faiss.downcast_index(ix).k_factor == 8 and _sub(ix, "base_index").nprobe == 4
    ix = faiss.index_factory(16, "OPQ4_16,IVF16,PQ4")
    ps.set_index_parameter(ix, "nprobe", 5)
    assert _sub(ix, "index").nprobe == 5
    ix = faiss.index_factory(16, "IDMap2,HNSW16")
    ps.set_index_parameters(ix, {"efSearch": 77, "efConstruction": 55})
    assert _sub(ix, "index").hnsw.efSearch == 77 and _sub(ix, "index").hnsw.efConstruction == 55
    ps.set_index_parameters(ix, "ef=33")
    assert _sub(ix, "index").hnsw.efSearch == 33
    ix = faiss.index_factory(16, "IVF16_HNSW16,Flat")
    ps.set_index_parameters(ix, "quantizer_efSearch=21 nprobe=2")
    assert _sub(ix, "quantizer").hnsw.efSearch == 21
    ps.set_index_parameters(ix, 0)  # combination numbers too (empty space: nothing to set)


def test_set_parameters_annvil_flat_and_errors():
    ix = annvil.index_factory(8, "IDMap,Flat")
    ps = ParameterSpace()
    ps.initialize(ix)
    assert ps.n_combinations() == 1 and ps.combination_name(0) == ""
    ps.set_index_parameters(ix, "")  # nothing to set
    ps.set_index_parameters(ix, "verbose=0")
    with pytest.raises(annvil.InvalidArgumentError, match="could not set parameter 'nprobe'"):
        ps.set_index_parameters(ix, "nprobe=3")
    with pytest.raises(annvil.InvalidArgumentError, match="could not interpret"):
        ps.set_index_parameters(ix, "nprobe")
    with pytest.raises(annvil.InvalidArgumentError, match="could not interpret"):
        ps.set_index_parameters(ix, "nprobe=abc")
    with pytest.raises(annvil.InvalidArgumentError, match="could not set parameter 'bogus'"):
        ps.set_index_parameter(faiss.index_factory(8, "IVF4,Flat"), "bogus", 1)
    with pytest.raises(annvil.InvalidArgumentError, match="out of range"):
        ps.combination_name(5)
    with pytest.raises(annvil.InvalidArgumentError):
        ps.set_index_parameters(ix, 1.5)


@pytest.mark.skipif(not HAVE_IVF, reason="this build has no IndexIVFFlat")
def test_parameter_space_on_annvil_ivf(data):
    s = "IDMap,IVF32,Flat,RFlat" if HAVE_REFINE else "IDMap,IVF32,Flat"
    ix = annvil.index_factory(16, s)
    ps = ParameterSpace()
    ps.initialize(ix)
    assert "nprobe" in [p.name for p in ps.parameter_ranges]
    ps.set_index_parameters(ix, "nprobe=7" + (",k_factor_rf=4" if HAVE_REFINE else ""))
    inner = ix.index.base_index if HAVE_REFINE else ix.index
    assert inner.nprobe == 7
    if HAVE_REFINE:
        assert ix.index.k_factor == 4


@pytest.mark.skipif(not HAVE_HNSW, reason="this build has no IndexHNSWFlat")
def test_parameter_space_on_annvil_hnsw():
    ix = annvil.index_factory(16, "HNSW16")
    ps = ParameterSpace()
    ps.initialize(ix)
    assert ps.parameter_ranges[0].name == "efSearch"
    ps.set_index_parameters(ix, "efSearch=48")
    assert ix.hnsw.efSearch == 48


# ---- OperatingPoints, criteria, Pareto front -------------------------------------
def test_operating_points_match_faiss():
    rng = np.random.default_rng(3)
    ours, ref = OperatingPoints(), faiss.OperatingPoints()
    for i in range(60):
        perf, t = float(rng.choice([0.0, *rng.uniform(0, 1, 4)])), float(rng.uniform(0, 1))
        assert ours.add(perf, t, f"p{i}", i) == ref.add(perf, t, f"p{i}", i)
    ref_opt = [(ref.optimal_pts.at(i).perf, ref.optimal_pts.at(i).t, ref.optimal_pts.at(i).key)
               for i in range(ref.optimal_pts.size())]
    assert [(p.perf, p.t, p.key) for p in ours.optimal_pts] == ref_opt
    for perf in (0.0, 0.3, 0.9, 1.0, 1.1):
        assert ours.t_for_perf(perf) == pytest.approx(ref.t_for_perf(perf))


def test_operating_points_hand_made(capsys):
    ops = OperatingPoints()
    assert ops.add(0.5, 1.0, "a", 0)
    assert ops.add(0.9, 2.0, "b", 1)
    assert not ops.add(0.4, 1.5, "c", 2)  # worse and slower than a
    assert ops.add(0.6, 0.5, "d", 3)  # better and faster than a: a drops out
    assert [p.key for p in ops.optimal_pts] == ["", "d", "b"]
    ops.display(only_optimal=False)
    assert "3 ones are Pareto-optimal" in capsys.readouterr().out


def test_pareto_front_hand_made():
    pts = [(0.5, 100, 10), (0.9, 50, 10), (0.9, 50, 20), (0.4, 90, 5), (0.95, 10, 10), (0.5, 100, 10),
           (0.3, 80, 30)]
    keep = pareto_front(pts, [True, True, False])
    assert keep == [0, 1, 3, 4, 5]
    assert pareto_front([], [True, True]) == []
    assert pareto_front([(1, 1)], [True, True]) == [0]
    with pytest.raises(annvil.InvalidArgumentError):
        pareto_front([(1, 2, 3)], [True, True])


def test_criteria_match_faiss():
    rng = np.random.default_rng(4)
    nq, k = 50, 10
    gt = np.stack([rng.permutation(100)[:20] for _ in range(nq)]).astype(np.int64)
    I = np.where(rng.uniform(size=(nq, k)) < 0.6, gt[:, :k], rng.integers(100, 200, (nq, k)))
    I[0, 3] = -1
    I = np.ascontiguousarray(I, dtype=np.int64)
    for ours, ref in [(IntersectionCriterion(nq, k), faiss.IntersectionCriterion(nq, k)),
                      (OneRecallAtRCriterion(nq, k), faiss.OneRecallAtRCriterion(nq, k))]:
        ours.set_groundtruth(None, gt)
        ref.set_groundtruth(None, gt)
        D = np.zeros((nq, k), np.float32)
        assert ours.evaluate(D, I) == pytest.approx(ref.evaluate(faiss.swig_ptr(D), faiss.swig_ptr(I)))
    with pytest.raises(annvil.InvalidArgumentError, match="ground truth not initialized"):
        IntersectionCriterion(nq, k).evaluate(None, I)


def test_explore_flat_and_faiss_ivf(data):
    xb, xq = data[:2500], data[2500:2600]
    _, gt = annvil.knn(xq, xb, 10)
    crit = IntersectionCriterion(len(xq), 10)
    crit.set_groundtruth(None, gt)
    flat = annvil.index_factory(16, "Flat")
    flat.add(xb)
    ps = ParameterSpace()
    ps.verbose = 0
    ps.initialize(flat)
    ops = ps.explore(flat, xq, crit)
    assert len(ops.all_pts) == 1 and ops.all_pts[0].perf == 1.0
    ivf = faiss.index_factory(16, "IVF32,Flat")
    ivf.train(xb)
    ivf.add(xb)
    ps = ParameterSpace()
    ps.verbose = 0
    ps.initialize(ivf)
    ops = ps.explore(ivf, xq, crit)
    perfs = [p.perf for p in ops.optimal_pts]
    assert perfs == sorted(perfs) and perfs[-1] > 0.9
    with pytest.raises(annvil.InvalidArgumentError, match="criterion"):
        ps.explore(ivf, xq[:10], crit)


# ---- bisection --------------------------------------------------------------------
@pytest.mark.parametrize("lo,hi,thresh", [(1, 1024, 37), (1, 1024, 1), (1, 1024, 1024), (10, 500, 11), (4, 4, 4),
                                          (1, 7, 5)])
def test_bisect_min_finds_the_smallest_value(lo, hi, thresh):
    calls = []

    def f(v):  # a monotone step: "recall" 0.5 below thresh, 0.9 from thresh on
        calls.append(v)
        return 0.9 if v >= thresh else 0.5

    assert bisect_min(f, lo, hi, 0.9) == thresh
    assert len(calls) <= 2 * np.log2(max(2, hi / lo)) + 3
    assert len(set(calls)) == len(calls)  # no value measured twice
    assert all(v <= 2 * thresh for v in calls)  # never far past the first value that meets it
    calls.clear()
    assert bisect_min(f, lo, hi, 0.9, hint=(lo + hi) // 2) == thresh  # from a warm-start hint, either side


def test_bisect_min_smooth_and_unreachable():
    rec = lambda v: 1 - 1 / (1 + v / 7.0)  # noqa: E731  (smooth, increasing)
    v = bisect_min(rec, 1, 1000, 0.9)
    assert rec(v) >= 0.9 > rec(v - 1)
    assert bisect_min(rec, 1, 20, 0.99) is None
    with pytest.raises(annvil.InvalidArgumentError, match="empty range"):
        bisect_min(rec, 5, 4, 0.5)


# ---- tune ----------------------------------------------------------------------
def test_tune_flat_only_reaches_target(data):
    res = annvil.tune(data, k=10, target_recall=0.95, budget_s=30, families=("flat",), strategy="bayes")
    assert res.target_reached and res.best.factory == "Flat" and res.best.recall == 1.0
    assert res.best.recall_heldout == 1.0 and res.nq_heldout > 0
    assert res.best.params == "" and res.best.bytes_per_vector >= 16 * 4
    assert "reached" in res.message and res.front
    index = res.build(data)
    ParameterSpace().set_index_parameters(index, res.best.params)
    assert index.ntotal == len(data)


@pytest.fixture(scope="module")
def harder():
    """Clustered, but with enough spread in 32 dims that HNSW at efSearch = k
    stays below the target: the knob has to be driven."""
    return clustered(5000, 32, seed=2, nc=30)


@pytest.mark.skipif(not HAVE_HNSW, reason="this build has no IndexHNSWFlat")
def test_tune_meets_target_on_held_out_queries(harder, tmp_path):
    target = 0.95
    # HNSW's efSearch moves recall in fine steps (a small IVF's nprobe may jump
    # past target + 0.02 in one step: the fastest answer then overshoots)
    res = annvil.tune(harder, k=10, target_recall=target, budget_s=20, n_trials=4, families=("hnsw",), seed=0,
                      search_space={"hnsw_M": [8, 16], "hnsw_efConstruction": [40, 80]}, nq=500)
    assert res.target_reached, res.message
    b = res.best
    assert b.recall >= target and target <= b.recall_heldout <= target + 0.02, b
    assert res.stats["nq_heldout"] == 250 and res.stats["nq_tune"] == 250 and res.stats["lid"] > 2
    # the knob is the smallest meeting the target: one step lower misses on tuning or held-out queries
    index = res.build(harder[np.sort(np.random.default_rng(0).permutation(len(harder))[500:])])
    name, _, val = b.params.rpartition(",")[2].partition("=")
    if int(val) > 1 and name in ("efSearch", "nprobe"):
        lower = b.params.replace(f"{name}={val}", f"{name}={int(val) - 1}")
        trials = {t.params: t for t in res.trials if (t.factory, t.build_params) == (b.factory, b.build_params)
                  and t.stage == "full"}
        assert lower not in trials or trials[lower].recall < target or b.recall_heldout is not None
    assert index.ntotal == len(harder) - 500
    # importances: every build parameter that varied, summing to 1
    for obj in ("qps", "recall"):
        imp = res.importances(obj)
        assert imp and abs(sum(imp.values()) - 1) < 1e-9 and all(v >= 0 for v in imp.values()), imp
    assert "efSearch" in res.importances("recall")
    # the report: one HTML page with three embedded figures, or a directory of PNGs
    res.report(tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "held-out" in page
    res.report(tmp_path / "figs")
    assert {p.name for p in (tmp_path / "figs").iterdir()} == {"front.png", "importances.png", "slices.png"}
    res.save(tmp_path / "r.json")
    again = TuneResult.load(tmp_path / "r.json")
    assert again.best.recall_heldout == b.recall_heldout and again.importances("qps") == res.importances("qps")


def test_tune_unreachable_is_reported(data):
    xb, xq = data[:2800], data[2800:2900]
    _, gt = annvil.knn(xq, xb, 10)
    wrong = (gt + 1) % len(xb)  # nothing can reach this "ground truth"
    res = annvil.tune(xb, xq, gt=wrong, k=10, target_recall=0.95, budget_s=10, families=("flat",))
    assert not res.target_reached
    assert "TARGET NOT REACHED" in res.message and "best found" in res.message
    assert res.best is not None and res.best.recall < 0.95 and res.best.recall_heldout is not None


SMALL = {"hnsw_M": [8, 16], "hnsw_efConstruction": [40], "ivf_nlist": [16, 32], "efSearch_max": 128,
         "ivf_encodings": ["Flat", "SQ8", "PQ8x4fs,RFlat"], "k_factors": [4, 16]}


@pytest.mark.parametrize("strategy", ["grid", "random", "bayes", "evolutionary"])
def test_tune_strategies_with_faiss_classes(data, strategy):
    # Faiss's classes stand in for the families: the tuner is engine-agnostic
    res = annvil.tune(data, k=10, target_recall=0.9, budget_s=6, n_trials=3, strategy=strategy, seed=0,
                      families=("ivf", "hnsw"), search_space=SMALL, _ns=faiss, sample_frac=0.5)
    assert res.target_reached, res.message
    assert 1 <= len(res.builds) and len({b["family"] for b in res.builds}) == 2
    assert {b["stage"] for b in res.builds} == {"sample", "full"}  # successive halving: sample first
    for t in res.trials:  # parameters are ParameterSpace strings
        ix = faiss.index_factory(16, t.factory)
        ParameterSpace().set_index_parameters(ix, t.params)
    # no point past the target is measured on a build's knob: only the bisection's
    for b in [b for b in res.builds if b["stage"] == "full" and b["params"]]:
        assert b["recall_max"] >= 0.9


def test_tune_grid_reproducible(data):
    kw = dict(k=10, target_recall=0.9, budget_s=60, n_trials=3, strategy="grid", seed=3,
              families=("ivf",), search_space={**SMALL, "ivf_encodings": ["Flat", "SQ8"]}, _ns=faiss)
    a = annvil.tune(data, **kw)
    b = annvil.tune(data, **kw)
    # recall is what the bisection looks at: the same data and seed measure the same points
    assert [(t.factory, t.params, t.recall) for t in a.trials if not t.timed] == \
        [(t.factory, t.params, t.recall) for t in b.trials if not t.timed]
    assert a.target_reached and b.target_reached


def test_tune_save_resume_warm_start(data, tmp_path):
    path = tmp_path / "r.json"
    kw = dict(k=10, target_recall=0.9, budget_s=30, strategy="random", seed=5, search_space=SMALL, _ns=faiss,
              families=("ivf", "hnsw"))
    a = annvil.tune(data, resume=str(path), n_trials=2, **kw)
    saved = json.loads(path.read_text())
    assert saved["format"] == "annvil-tune/2" and len(saved["builds"]) == len(a.builds)
    loaded = TuneResult.load(path)
    assert loaded.best.factory == a.best.factory and loaded.target_reached == a.target_reached
    b = annvil.tune(data, resume=str(path), n_trials=3, **kw)
    first_full = {(r["family"], str(r["build"])) for r in a.builds if r["stage"] == "full"}
    again = [r for r in b.builds if (r["family"], str(r["build"])) in first_full]
    assert not again, again
    ws = TuneResult.load(path)
    c = annvil.tune(data, warm_start=str(path), n_trials=1, **{**kw, "strategy": "bayes"})
    assert (c.builds[0]["family"], c.builds[0]["build"]) == (ws.best.family, {
        k: v for k, v in ws.best.choice.items() if k != "family"})  # the earlier best is tried first


def test_tune_records_failed_builds_and_goes_on():
    x = np.random.default_rng(0).standard_normal((600, 16)).astype(np.float32)
    res = annvil.tune(x, k=5, target_recall=0.9, budget_s=20, families=("ivf", "flat"), strategy="grid",
                      search_space={"ivf_encodings": ["Flat"], "ivf_nlist": [1024, 16]})
    failed = [b for b in res.builds if b["why"].startswith("build failed")]
    assert failed and all(b["build"]["ivf_nlist"] == 1024 and "nlist" in b["why"] for b in failed)
    assert res.target_reached


def test_tune_bad_input(data, tmp_path):
    with pytest.raises(annvil.InvalidArgumentError, match="strategy"):
        annvil.tune(data, strategy="magic")
    with pytest.raises(annvil.InvalidArgumentError, match="target_recall"):
        annvil.tune(data, target_recall=1.5)
    with pytest.raises(annvil.InvalidArgumentError, match="family"):
        annvil.tune(data, families=("lsh",))
    with pytest.raises(annvil.InvalidArgumentError, match="search_space"):
        annvil.tune(data, search_space={"bogus": [1]})
    with pytest.raises(annvil.InvalidArgumentError, match="holdout"):
        annvil.tune(data, holdout=1.0)
    with pytest.raises(annvil.InvalidArgumentError, match="sample_frac"):
        annvil.tune(data, sample_frac=2.0)
    with pytest.raises(annvil.InvalidArgumentError, match="dimension"):
        annvil.tune(data, np.zeros((5, 3), np.float32))
    with pytest.raises(annvil.InvalidArgumentError, match="larger than"):
        annvil.tune(data[:5], data[:2], k=10)
    with pytest.raises(annvil.InvalidArgumentError, match="gt must have shape"):
        annvil.tune(data, data[:4], gt=np.zeros((3, 10), np.int64))
    with pytest.raises(FileNotFoundError):
        annvil.tune(data, warm_start=str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(annvil.InvalidArgumentError, match="not an annvil tuning result"):
        TuneResult.load(tmp_path / "bad.json")
