#!/usr/bin/env python3
"""Whole-process A/B of one wasmflow command across binaries, interleaved.

  bench/ab.py RUNS "ARGS" BINARY [BINARY...]

Each binary gets a home and a compiled-component cache of its own (fresh
temporary directories), runs ARGS once to warm its cache (not timed), then
the binaries take turns, RUNS times each, so that the machine's drift
falls on all of them alike. Prints each binary's median, 25th percentile
and minimum. Example, a 40-task Python chain (bench/python.py writes one
such chain.yaml) on the last commit's binary and this one:

  python3 bench/ab.py 60 "run chain.yaml --json" /tmp/wf-before target/release/wasmflow
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    runs, args, binaries = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3:]
    work = tempfile.mkdtemp(prefix="wf-ab-")
    try:
        envs = {}
        for i, b in enumerate(binaries):
            home = os.path.join(work, f"home{i}")
            envs[b] = dict(os.environ, WASMFLOW_HOME=home,
                           WASMFLOW_CACHE_DIR=os.path.join(work, f"cache{i}"))
            out = subprocess.run([b] + args, env=envs[b], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{b} {' '.join(args)} failed: {out.stderr}")
        times = {b: [] for b in binaries}
        for _ in range(runs):
            for b in binaries:
                t = time.perf_counter()
                out = subprocess.run([b] + args, env=envs[b], capture_output=True, text=True)
                times[b].append(time.perf_counter() - t)
                if out.returncode != 0:  # a failure's time is no figure
                    sys.exit(f"{b} {' '.join(args)} failed: {out.stderr}")
        for b in binaries:
            xs = sorted(times[b])
            print(f"{b:<40} median {statistics.median(xs) * 1e3:7.1f} ms"
                  f"  p25 {xs[len(xs) // 4] * 1e3:7.1f}  min {xs[0] * 1e3:7.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
