#!/usr/bin/env python3
"""A rehearsal of a 50-task workflow (`wasmflow workflow test`), as the
issue asks: well under 10 ms.

  bench/rehearsal.py WASMFLOW [N]

One spec whose workflow chains 50 tasks (each publishing a value the next
one's input reads, with YAQL), all mocked. The figure is what the command
prints for the rehearsal itself (the scheduler over a scratch store, no
action run), median of N processes; the whole process is timed beside it.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    wasmflow = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    work = tempfile.mkdtemp(prefix="wf-rehearsal-bench-")
    lines = ["version: 1.0", "tasks:"]
    for i in range(50):
        value = "0" if i == 0 else "<% ctx(n) + 1 %>"
        lines += [f"  t{i}:", f"    action: ops.step n={value}"]
        if i < 49:
            lines += ["    next:", f"      - publish: n=<% int(str({i})) %>", f"        do: t{i + 1}"]
    with open(os.path.join(work, "chain.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    seq = ", ".join(f"t{i}" for i in range(50))
    with open(os.path.join(work, "spec.yaml"), "w") as f:
        f.write(f"workflow: chain.yaml\nexpected_task_sequence: [{seq}]\n")
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"))
    inside, whole = [], []
    for _ in range(n):
        t = time.perf_counter()
        out = subprocess.run([wasmflow, "workflow", "test", os.path.join(work, "spec.yaml")],
                             env=env, capture_output=True, text=True)
        whole.append(time.perf_counter() - t)
        if out.returncode != 0:
            sys.exit(out.stdout + out.stderr)
        inside.append(float(re.search(r"\(([\d.]+) ms\)", out.stdout).group(1)))
    print(f"| 50-task rehearsal | {statistics.median(inside):.2f} ms (the rehearsal) "
          f"| {statistics.median(whole) * 1000:.1f} ms (whole process) |")


if __name__ == "__main__":
    main()
