#!/usr/bin/env python3
"""The built-in core pack as users run it, beside what it stands for.

  bench/core_pack.py WASMFLOW [N]

Whole processes, interleaved, N runs each, medians (a fresh home, the core
pack written out and compiled by a first run that is not counted):
1. `wasmflow run core.echo -p message=hi` (records and fsyncs the
   execution) against `/usr/bin/python3 -c 'print("hi")'`.
2. `wasmflow run core.local -p cmd='echo hi' --allow-exec sh` (the shell
   runs confined) against `sh -c 'echo hi'`.
3. A 10-task chain of core.echo written with YAQL (`<% %>`), `wasmflow run
   chain.yaml`, against 10 `/usr/bin/python3 -c` processes one after
   another.
"""
import os
import statistics
import subprocess
import sys
import tempfile

# The whole-process timer of the Python benchmark beside this one.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python import timed  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"


def seconds(cmd, env):
    """One whole process's wall time (bench/python.py's `timed`)."""
    return timed(cmd, env)[0]


def chain(path, n):
    lines = ["version: 1.0", "tasks:"]
    for i in range(n):
        lines += [f"  t{i}:", f"    action: core.echo message=<% str({i}) %>"]
        if i + 1 < n:
            lines += ["    next:", f"      - do: t{i + 1}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    wasmflow = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    work = tempfile.mkdtemp(prefix="wf-core-bench-")
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"))
    flow = os.path.join(work, "chain.yaml")
    chain(flow, 10)
    scenarios = [
        ("core.echo, whole process",
         [wasmflow, "run", "core.echo", "-p", "message=hi"],
         [[SYSTEM_PYTHON, "-c", 'print("hi")']]),
        ("core.local (sh -c, confined), whole process",
         [wasmflow, "run", "core.local", "-p", "cmd=echo hi", "--allow-exec", "sh"],
         [["sh", "-c", "echo hi"]]),
        ("10 core.echo tasks in a YAQL chain, whole process",
         [wasmflow, "run", flow],
         [[SYSTEM_PYTHON, "-c", 'print("hi")']] * 10),
    ]
    for _, ours, _ in scenarios:
        seconds(ours, env)  # writes the pack out and compiles: not counted
    print("| scenario | wasmflow | peer, same run | ratio |")
    print("|---|---|---|---|")
    for name, ours, peer in scenarios:
        a, b = [], []
        for _ in range(n):
            a.append(seconds(ours, env))
            b.append(sum(seconds(p, env) for p in peer))
        ma, mb = statistics.median(a), statistics.median(b)
        peer_name = " ; ".join(sorted({" ".join(p[:1]) for p in peer}))
        print(f"| {name} | {ma * 1000:.1f} ms | {peer_name} x{len(peer)}: {mb * 1000:.1f} ms | {ma / mb:.2f}x |")


if __name__ == "__main__":
    main()
