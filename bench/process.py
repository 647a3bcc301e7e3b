#!/usr/bin/env python3
"""Whole-process time of one small action: wasmflow vs its peers, same run.

Runs each command N times, interleaved (A B C A B C ...) so drift in machine
load hits all of them alike, and prints medians, p90s and ratios.

  wasmflow run add.wasm       (cached compile; opens the store, writes and
                               fsyncs an execution record)
  wasmtime run --invoke       (the wasmtime CLI on the precompiled component)

Both get the same binary component, converted once from the WAT fixture.
  python3 -c                  (a Python subprocess doing the same addition:
                               StackStorm's per-action process model)
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {out.stderr.decode()}")
    return dt


def main():
    wasmflow, wasmtime, wat, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    # Further wasmflow binaries (an A/B of two builds): each gets a row and
    # its own WASMFLOW_HOME, interleaved with the rest.
    others = sys.argv[5:]
    work = tempfile.mkdtemp(prefix="wf-bench-")
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    component = os.path.join(work, "add.wasm")
    subprocess.run([os.path.join(root, "node_modules/.bin/jco"), "parse", wat, "-o", component],
                   check=True, capture_output=True)
    cwasm = os.path.join(work, "add.cwasm")
    subprocess.run([wasmtime, "compile", component, "-o", cwasm], check=True)
    peers = {
        "wasmflow run (cached)": [wasmflow, "run", component, "-p", "a=1", "-p", "b=2"],
        "wasmtime run (precompiled)": [wasmtime, "run", "--allow-precompiled", "--invoke", "run(1, 2)", cwasm],
        "python3 subprocess": [sys.executable, "-S", "-c", "print(1 + 2)"],
    }
    envs = {k: env for k in peers}
    for i, other in enumerate(others):
        name = f"wasmflow run ({os.path.basename(other)})"
        peers[name] = [other] + peers["wasmflow run (cached)"][1:]
        envs[name] = dict(env, WASMFLOW_HOME=os.path.join(work, f"home-{i}"))
    for name, cmd in peers.items():  # warm caches (wasmflow compiles here, once)
        timed(cmd, envs[name])
    samples = {k: [] for k in peers}
    for _ in range(n):
        for name, cmd in peers.items():
            samples[name].append(timed(cmd, envs[name]))
    med = {k: statistics.median(v) for k, v in samples.items()}
    p90 = {k: sorted(v)[int(0.9 * (len(v) - 1))] for k, v in samples.items()}
    base = med["wasmflow run (cached)"]
    rows = []
    print(f"{'command':<30}{'median':>10}{'p90':>10}{'vs wasmflow':>14}")
    for k in peers:
        ratio = med[k] / base
        rows.append({"command": k, "median_ms": med[k] * 1e3, "p90_ms": p90[k] * 1e3, "ratio_to_wasmflow": ratio})
        print(f"{k:<30}{med[k] * 1e3:>8.2f}ms{p90[k] * 1e3:>8.2f}ms{ratio:>13.2f}x")
    print(f"(n={n} interleaved runs each; ratio > 1 means slower than wasmflow)")
    print(f"target ratios: wasmflow/wasmtime = {base / med['wasmtime run (precompiled)']:.2f} (<= 1.0), "
          f"python/wasmflow = {med['python3 subprocess'] / base:.2f}")
    with open(os.path.join(os.path.dirname(__file__), "out", "process.json"), "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
