"""Peak memory of building and serialising indexes, annvil against Faiss.

Each measurement runs in a fresh child process, so its peak resident set
(ru_maxrss) belongs to that one operation:

- add / add4: an HNSW index (M=16) built from n x d random vectors, in one
  add or in four.  Reported as
  (peak - baseline) / (final - baseline), where baseline is the RSS before the
  input exists and final the RSS after the build with the input still alive:
  1.0 means the build needed nothing beyond the input and the final index.
- serialize / pickle / pickle5 / pickle5-oob: peak extra memory of serialize_index and
  pickle.dumps (protocol 4, 5 in band, 5 with buffer_callback)
  over the index itself, in multiples of the serialised size.

    python bench/bench_memory.py                 # 200k x 128
    python bench/bench_memory.py --n 500000      # the size of issue 9's report
"""
import argparse
import json
import os
import subprocess
import sys

from common import set_faiss_coretype

CHILD = r"""
import json, pickle, resource, sys
import numpy as np
lib, op, n, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if lib == "faiss":
    import faiss as m
else:
    import annvil as m
m.omp_set_num_threads(2)

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

def peak():
    # VmHWM: the peak RSS since the start or the last reset_peak()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

base = rss()
x = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
idx = m.IndexHNSWFlat(d, 16)
if op in ("add", "add4"):
    for part in np.array_split(x, 1 if op == "add" else 4):
        idx.add(part)
    final = rss()
    print(json.dumps({"base": base, "final": final, "peak": peak(), "input": x.nbytes}))
    sys.exit()
idx.add(x)
del x
before = rss()
reset_peak()
p0 = peak()
if op == "serialize":
    out = m.serialize_index(idx)
    size = out.nbytes
elif op == "pickle5-oob":  # protocol 5, the index image handed over out of band
    bufs = []
    out = pickle.dumps(idx, protocol=5, buffer_callback=bufs.append)
    size = len(out) + sum(memoryview(b).nbytes for b in bufs)
else:
    out = pickle.dumps(idx, protocol=5 if op == "pickle5" else 4)
    size = len(out)
print(json.dumps({"before": before, "peak0": p0, "peak": peak(), "after": rss(), "size": size}))
"""


def run(lib, op, n, d):
    env = dict(os.environ)
    if lib == "faiss":
        set_faiss_coretype()
        env["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    out = subprocess.run([sys.executable, "-c", CHILD, lib, op, str(n), str(d)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=128)
    args = ap.parse_args()
    mb = 1 / 2**20
    print(f"HNSW M=16, {args.n} x {args.d} float32, 2 threads")
    for op, lib in [(o, l) for o in ("add", "add4") for l in ("annvil", "faiss")]:
        r = run(lib, op, args.n, args.d)
        grown = r["final"] - r["base"]
        over = r["peak"] - r["final"]
        print(f"  {op:10s} {lib:7s} input+index {grown * mb:8.1f} MB, peak above that {over * mb:7.1f} MB,"
              f" peak / (input+index) = {(r['peak'] - r['base']) / grown:.3f}")
    # the peak is reset (/proc/self/clear_refs) after the build, so it is
    # the serialisation's own: output included, "1.00 copies" is the floor
    for op in ("serialize", "pickle", "pickle5", "pickle5-oob"):
        for lib in ("annvil", "faiss"):
            r = run(lib, op, args.n, args.d)
            extra = r["peak"] - r["before"]
            note = ""
            print(f"  {op:10s} {lib:7s} size {r['size'] * mb:8.1f} MB, extra peak {extra * mb:8.1f} MB"
                  f" = {extra / r['size']:.2f} copies{note}")


if __name__ == "__main__":
    main()
