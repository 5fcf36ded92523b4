"""ShardedIndex (annvil.distributed, on a local Ray instance) against one in-process index.

    python bench/bench_distributed.py --part scale      # QPS, p50/p99 vs shards (1,2,4) x replicas (1,2)
    python bench/bench_distributed.py --part kill --trials 20   # randomised kill trials: lost writes
    python bench/bench_distributed.py --part capacity   # single-node IVF-PQ fast-scan + refine on WordNet MiniLM
    python bench/bench_distributed.py                   # all three (small sizes)

scale: Flat (exact, mode "id") and IVF (mode "ivf") on random data; a batch of
nq queries for throughput and single-query calls for latency.  The in-process
baselines (annvil and Faiss) use all --threads threads; the shard actors share
the same threads (threads // shards each, at least 1), so the difference is
the cost of the Ray path: the object store round trip of queries and results,
the fan-out and the top-k merge.  The overhead line reports it per query and
relative to the single index's time at batch nq with 2 shards.

kill: a background thread kills a random shard actor at random moments (one at
a time: it waits for Ray to restart it) while batches are added and removed;
after each trial every acknowledged id must be stored exactly once.

capacity: the single-node numbers behind docs/scale-out.md.
"""
import argparse
import os
import random
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load_wordnet, random_data, set_faiss_coretype  # noqa: E402

set_faiss_coretype()
import faiss  # noqa: E402

import annvil  # noqa: E402
from annvil.eval import intersection_recall, median_time  # noqa: E402


def ray_start(cpus):
    import ray
    if not ray.is_initialized():
        t = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        print(f"ray.init: {time.perf_counter() - t:.1f} s")
    return ray


def latencies(search, xq, n):
    out = []
    for i in range(n):
        t = time.perf_counter()
        search(xq[i:i + 1])
        out.append(time.perf_counter() - t)
    out = np.array(out) * 1e3
    return float(np.percentile(out, 50)), float(np.percentile(out, 99))


def part_scale(args):
    from annvil.distributed import ShardedIndex
    ray_start(args.threads)
    xb, xq = random_data(args.nb, args.d, args.nq, seed=1)
    k = 10
    annvil.omp_set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    for factory, mode in (("Flat", "id"), (f"IVF{args.nlist},Flat", "ivf")):
        print(f"\n== {factory}, mode={mode}: nb={args.nb} d={args.d}, batch {args.nq}, k={k}, "
              f"{args.threads} threads ==")
        ours = annvil.index_factory(args.d, factory)
        peer = faiss.index_factory(args.d, factory)
        if mode == "ivf":
            ours.train(xb)
            peer.train(xb)
            ours.nprobe = peer.nprobe = args.nprobe
        ours.add(xb)
        peer.add(xb)
        Dgt, gt = faiss.IndexFlatL2(args.d), None
        Dgt.add(xb)
        gt = Dgt.search(xq, k)[1]
        t_ours = median_time(lambda ours=ours: ours.search(xq, k), repeats=args.repeats)
        t_peer = median_time(lambda peer=peer: peer.search(xq, k), repeats=args.repeats)
        l_ours = latencies(lambda q, ours=ours: ours.search(q, k), xq, args.lat)
        l_peer = latencies(lambda q, peer=peer: peer.search(q, k), xq, args.lat)
        r_single = intersection_recall(ours.search(xq, k)[1], gt, k)
        print(f"{'config':<28}{'QPS':>10}{'vs annvil':>10}{'p50 ms':>9}{'p99 ms':>9}{'recall@10':>11}")
        print(f"{'faiss in-process':<28}{args.nq / t_peer:>10.0f}{t_ours / t_peer:>10.2f}"
              f"{l_peer[0]:>9.2f}{l_peer[1]:>9.2f}{intersection_recall(peer.search(xq, k)[1], gt, k):>11.3f}")
        print(f"{'annvil in-process':<28}{args.nq / t_ours:>10.0f}{1.0:>10.2f}{l_ours[0]:>9.2f}{l_ours[1]:>9.2f}"
              f"{r_single:>11.3f}")
        for shards in (1, 2, 4):
            for replicas in (1, 2):
                threads = max(1, args.threads // shards)
                t0 = time.perf_counter()
                idx = ShardedIndex(args.d, factory, shards, replicas=replicas, mode=mode, threads=threads,
                                   wal_sync=True)
                try:
                    if mode == "ivf":
                        idx.train(xb)
                        idx.nprobe = args.nprobe
                    idx.add(xb)
                    setup = time.perf_counter() - t0
                    t = median_time(lambda idx=idx: idx.search(xq, k), repeats=args.repeats)
                    lat = latencies(lambda q, idx=idx: idx.search(q, k), xq, args.lat)
                    Id = idx.search(xq, k)[1]
                    rec = intersection_recall(Id, gt, k)
                    name = f"ray {shards} shard x {replicas} rep"
                    print(f"{name:<28}{args.nq / t:>10.0f}{t_ours / t:>10.2f}{lat[0]:>9.2f}{lat[1]:>9.2f}"
                          f"{rec:>11.3f}   (setup {setup:.1f} s)", flush=True)
                    # the Ray path alone: wall time of a batch minus the slowest shard's own
                    # time inside index.search (queries and results through the object store,
                    # fan-out, merge)
                    hops = []
                    for _ in range(args.repeats):
                        before = [sum(r["search_seconds"] for r in st["replicas"]) for st in idx.stats()]
                        t1 = time.perf_counter()
                        idx.search(xq, k)
                        wall = time.perf_counter() - t1
                        after = [sum(r["search_seconds"] for r in st["replicas"]) for st in idx.stats()]
                        hops.append(wall - max(a - b for a, b in zip(after, before)))
                    hop = float(np.median(hops))
                    print(f"   Ray path (wall - slowest shard's search) at batch {args.nq}: {hop * 1e3:.2f} ms "
                          f"= {hop / args.nq * 1e6:.1f} us/query = {100 * hop / t_ours:.1f}% of the single "
                          f"index's search time{' (target < 20% at 2 shards)' if shards == 2 else ''}")
                    if shards == 2 and replicas == 1:
                        over = t - t_ours
                        print(f"   end to end at batch {args.nq}, 2 shards vs the single index: "
                              f"{over / args.nq * 1e6:+.1f} "
                              f"us/query ({100 * over / t_ours:+.1f}%; negative: the shards ran faster); batch-1 "
                              f"p50 latency {lat[0] - l_ours[0]:+.2f} ms")
                        if mode == "ivf":
                            print(f"   recall@10 vs the single IVF index at nprobe={args.nprobe}: "
                                  f"{rec:.4f} vs {r_single:.4f} (diff {rec - r_single:+.4f}, target |diff| <= 0.005)")
                finally:
                    idx.close()


def kill_trial(ray, idx, rng, n_batches, batch, d):
    acked_ids, acked_x, kills = [], [], []
    stop = threading.Event()
    actors = [a for row in idx.actors() for a in row]

    def wait_alive(a):
        while True:
            try:
                ray.get(a.ping.remote(), timeout=5)
                return
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                time.sleep(0.1)

    def killer():
        while not stop.is_set():
            time.sleep(rng.uniform(0.0, 0.3))
            if stop.is_set():
                break
            v = actors[rng.randrange(len(actors))]
            ray.kill(v, no_restart=False)
            kills.append(v)
            wait_alive(v)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    try:
        for _ in range(n_batches):
            x = np.random.default_rng(rng.randrange(1 << 30)).standard_normal((batch, d)).astype("float32")
            ids = np.array(rng.sample(range(1 << 40), batch), dtype=np.int64)
            idx.add_with_ids(x, ids)
            acked_ids.append(ids)
            acked_x.append(x)
            if rng.random() < 0.3:
                gone = ids[:rng.randrange(1, 20)]
                idx.remove_ids(gone)
                acked_ids[-1], acked_x[-1] = ids[gone.size:], x[gone.size:]
    finally:
        stop.set()
        th.join()
    last = actors[rng.randrange(len(actors))]
    ray.kill(last, no_restart=False)  # and once more after the last acknowledged write
    kills.append(last)
    return np.concatenate(acked_ids), np.concatenate(acked_x), len(kills)


def part_kill(args):
    from annvil.distributed import ShardedIndex
    ray = ray_start(args.threads)
    rng = random.Random(args.seed)
    d = 16
    total_lost = total_dup = total_kills = total_acked = 0
    print(f"\n== kill trials: {args.trials} trials, Flat, 2 shards, replicas alternating 1 / 2 ==")
    indexes = {r: ShardedIndex(d, "Flat", 2, replicas=r, num_cpus_per_replica=args.threads / 6) for r in (1, 2)}
    try:
        for trial in range(args.trials):
            replicas = 1 + trial % 2
            idx = indexes[replicas]
            w0, t0 = idx.write_retries, time.perf_counter()
            ids, x, kills = kill_trial(ray, idx, rng, args.batches, 200, d)
            stored = idx.ids()
            want = np.sort(ids)
            lost = np.setdiff1d(want, stored).size
            dup = stored.size - np.unique(stored).size
            extra = np.setdiff1d(stored, want).size
            found = idx.reconstruct_batch(ids[:32])
            ok = lost == 0 and dup == 0 and extra == 0 and np.array_equal(found, x[:32])
            total_lost += lost
            total_dup += dup
            total_kills += kills
            total_acked += ids.size
            print(f"trial {trial:2d}: replicas={replicas} kills={kills} writes retried={idx.write_retries - w0} "
                  f"acked ids={ids.size} lost={lost} duplicated={dup} unexpected={extra} "
                  f"{'OK' if ok else 'FAIL'} ({time.perf_counter() - t0:.1f} s)", flush=True)
            idx.remove_ids(ids)
    finally:
        for idx in indexes.values():
            idx.close()
    print(f"total: {args.trials} trials, {total_kills} kills, {total_acked} acknowledged ids, "
          f"{total_lost} lost, {total_dup} duplicated")


def part_capacity(args):
    """IVF-PQ fast-scan (+ SQ8 refine) on WordNet MiniLM-384: recall@10 and QPS on this node."""
    try:
        xb, xq, gt = load_wordnet()
        what = "WordNet MiniLM-384"
    except OSError:
        xb, xq = random_data(100000, 384, 1000, seed=3)
        flat = faiss.IndexFlatL2(384)
        flat.add(xb)
        gt = flat.search(xq, 10)[1]
        what = "random 384-d (WordNet data not found)"
    xq = xq[:args.cap_nq]
    gt = gt[:args.cap_nq]
    annvil.omp_set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    print(f"\n== capacity inputs: {what}, nb={len(xb)}, nq={len(xq)}, {args.threads} threads ==")
    for desc in args.cap_factories.split(";"):
        t = time.perf_counter()
        ours = annvil.index_factory(xb.shape[1], desc)
        ours.train(xb[:args.cap_train])
        t_train = time.perf_counter() - t
        t = time.perf_counter()
        ours.add(xb)
        t_add = time.perf_counter() - t
        print(f"{desc}: train {t_train:.1f} s ({args.cap_train} vectors), add {t_add:.1f} s "
              f"({len(xb) / t_add:.0f} vectors/s)")
        ivf = annvil.extract_index_ivf(ours)
        for nprobe in (8, 16, 32, 64):
            for kf in ((1, 4, 16) if hasattr(ours, "k_factor") else (None,)):
                params = annvil.SearchParametersIVF(nprobe=nprobe)
                if kf is not None:
                    params = annvil.IndexRefineSearchParameters(k_factor=kf, base_index_params=params)
                ts = median_time(lambda ours=ours, params=params: ours.search(xq, 10, params=params), repeats=3)
                rec = intersection_recall(ours.search(xq, 10, params=params)[1], gt, 10)
                scanned = nprobe / ivf.nlist * len(xb)
                print(f"   nprobe={nprobe:<3} k_factor={kf!s:<5} recall@10={rec:.3f}  QPS={len(xq) / ts:8.0f}  "
                      f"codes scanned/query={scanned:8.0f}  codes/s/core={scanned * len(xq) / ts / args.threads:.3g}",
                      flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="scale,kill,capacity")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--nb", type=int, default=50000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--nlist", type=int, default=256)
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lat", type=int, default=100, help="single-query calls for p50/p99")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--cap-nq", type=int, default=1000)
    ap.add_argument("--cap-train", type=int, default=50000)
    ap.add_argument("--cap-factories", default="IVF1024,PQ48x4fs,Refine(SQ8);IVF1024,PQ96x4fs,Refine(SQ8)")
    args = ap.parse_args()
    parts = args.part.split(",")
    if "capacity" in parts:
        part_capacity(args)
    if "scale" in parts:
        part_scale(args)
    if "kill" in parts:
        part_kill(args)


if __name__ == "__main__":
    main()
