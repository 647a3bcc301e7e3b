#!/usr/bin/env python3
"""`execution list` in a home full of workflow tasks: 20 top-level actions,
then W workflows of N items each (a with-items fan-out of add.wat, every
item its own task record): a page of 20 top-level records reaches past
every task record to the actions. The top-level listing
(`execution list -n 20`, the default) and the listing of everything
(`--all -n 20`), whole processes, for each binary given (an A/B of two
builds, interleaved, same home, same run), medians of R runs.

  bench/listing.py W N R WASMFLOW [OTHER_WASMFLOW...]

The home is written with the first binary; any later one opens it as it
is (a build that indexes top-level records does so at its first open,
which is not timed).
"""
import os
import statistics
import subprocess
import sys
import tempfile

# The whole-process timer of the Python benchmark beside this one.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python import timed  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADD = os.path.join(ROOT, "tests/fixtures/wat/add.wat")


def main():
    workflows, items, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    binaries = sys.argv[4:]
    home = tempfile.mkdtemp(prefix="wf-listing-")
    env = dict(os.environ, WASMFLOW_HOME=home)
    flow = os.path.join(home, "fan.yaml")
    with open(flow, "w") as f:
        f.write(f"""version: 1
tasks:
  fan:
    action: {ADD}
    with-items: "{{{{ range({items}) | list }}}}"
    concurrency: 64
    input: {{ a: "{{{{ item }}}}", b: 1 }}
""")
    for n in range(20):
        subprocess.run([binaries[0], "run", ADD, "-p", f"a={n}", "-p", "b=1"], env=env,
                       check=True, capture_output=True)
    for _ in range(workflows):
        subprocess.run([binaries[0], "run", flow], env=env, check=True, capture_output=True)
    for b in binaries:  # a first open, untimed
        subprocess.run([b, "execution", "list", "-n", "1"], env=env, check=True, capture_output=True)
    times = {(b, a): [] for b in binaries for a in ("top", "all")}
    for _ in range(rounds):
        for b in binaries:
            for what, extra in (("top", []), ("all", ["--all"])):
                dt, _ = timed([b, "execution", "list", "-n", "20", *extra], env)
                times[(b, what)].append(dt)
    print(f"{workflows} workflows x {items} items ({workflows * items} task records), "
          f"20 top-level actions before them; medians of {rounds}")
    print("| binary | `execution list -n 20` | `--all -n 20` |")
    print("|---|---|---|")
    for b in binaries:
        top = statistics.median(times[(b, "top")]) * 1000
        everything = statistics.median(times[(b, "all")]) * 1000
        print(f"| {b} | {top:.1f} ms | {everything:.1f} ms |")


if __name__ == "__main__":
    main()
