#!/usr/bin/env python3
"""Scheduler overhead: a 10-step chain and a 1,000-item with-items fan-out of
a trivial action (add.wasm), end to end through `wasmflow run FILE.yaml`,
each task a durable child execution.

Per-step overhead = (workflow wall time - time spent inside the actions) /
steps, with action time read from the child records. Peak RSS is the
process's maximum resident set. Peer, same run: the same steps as separate
`wasmflow run add.wasm` processes (a shell-script chain), and the chain's
p50 against it.

  bench/workflow.py WASMFLOW N
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def run(cmd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.decode()}")
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dt, out.stdout, rss_kib


def chain_yaml(component, steps):
    tasks = []
    for i in range(steps):
        nxt = f"\n    next: [{{ publish: {{ v: \"{{{{ result }}}}\" }}, do: s{i + 1} }}]" if i + 1 < steps else \
            "\n    next: [{ publish: { v: \"{{ result }}\" } }]"
        a = '"{{ ctx.v }}"' if i else "0"
        tasks.append(f"  s{i}:\n    action: {component}\n    input: {{ a: {a}, b: 1 }}{nxt}")
    return "version: 1\nvars: { v: 0 }\ntasks:\n" + "\n".join(tasks) + "\noutput: { v: \"{{ ctx.v }}\" }\n"


def fanout_yaml(component, items):
    return f"""version: 1
tasks:
  fan:
    action: {component}
    with-items: "{{{{ range({items}) | list }}}}"
    concurrency: 64
    input: {{ a: "{{{{ item }}}}", b: 1 }}
    next: [{{ publish: {{ n: "{{{{ result | length }}}}" }} }}]
output: {{ n: "{{{{ ctx.n }}}}" }}
"""


def overhead(wasmflow, env, wf_id, steps):
    tree = json.loads(subprocess.run([wasmflow, "execution", "get", wf_id, "--tree", "--json"],
                                     env=env, capture_output=True, check=True).stdout)
    total = ts(tree["ended_at"]) - ts(tree["started_at"])
    kids = tree["children"]
    assert len(kids) == steps, f"{len(kids)} children, wanted {steps}"
    inside = sum(ts(k["ended_at"]) - ts(k["started_at"]) for k in kids)
    return total, inside


def main():
    wasmflow, n = sys.argv[1], int(sys.argv[2])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = tempfile.mkdtemp(prefix="wf-bench-wf-")
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"))
    component = os.path.join(work, "add.wasm")
    subprocess.run([os.path.join(root, "node_modules/.bin/jco"), "parse",
                    os.path.join(root, "tests/fixtures/wat/add.wat"), "-o", component],
                   check=True, capture_output=True)
    chain = os.path.join(work, "chain.yaml")
    with open(chain, "w") as f:
        f.write(chain_yaml(component, 10))
    fan = os.path.join(work, "fanout.yaml")
    with open(fan, "w") as f:
        f.write(fanout_yaml(component, 1000))

    run([wasmflow, "run", chain, "--json"], env)  # compile into the cache
    chain_total, per_step, shell = [], [], []
    for _ in range(n):
        dt, out, _ = run([wasmflow, "run", chain, "--json"], env)
        rec = json.loads(out)
        assert rec["result"] == {"v": 10}, rec["result"]
        total, inside = overhead(wasmflow, env, rec["id"], 10)
        chain_total.append(dt)
        per_step.append((total - inside) / 10)
        t = time.perf_counter()
        v = 0
        for _ in range(10):
            _, out, _ = run([wasmflow, "run", component, "-p", f"a={v}", "-p", "b=1"], env)
            v = int(out)
        shell.append(time.perf_counter() - t)
    p50 = statistics.median(per_step)
    p90 = sorted(per_step)[int(0.9 * (len(per_step) - 1))]
    print(f"10-step chain, whole process: {statistics.median(chain_total) * 1e3:.1f} ms median "
          f"(10 separate `wasmflow run` processes: {statistics.median(shell) * 1e3:.1f} ms, "
          f"ratio {statistics.median(shell) / statistics.median(chain_total):.1f}x)")
    print(f"  per-step scheduler overhead: p50 {p50 * 1e3:.3f} ms, p90 {p90 * 1e3:.3f} ms (target p50 < 1 ms)")

    # Peak RSS of the fan-out alone: measure it in a fresh child of its own.
    fan_runs, fan_steps = [], []
    rss = 0
    for _ in range(max(3, n // 5)):
        probe = subprocess.run([sys.executable, "-c", f"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
out = subprocess.run({[wasmflow, "run", fan, "--json"]!r}, capture_output=True)
dt = time.perf_counter() - t
if out.returncode: sys.exit(out.stderr.decode())
print(json.dumps({{"dt": dt, "rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "rec": json.loads(out.stdout)}}))
"""], env=env, capture_output=True, check=True)
        res = json.loads(probe.stdout)
        assert res["rec"]["result"] == {"n": 1000}, res["rec"]["result"]
        total, inside = overhead(wasmflow, env, res["rec"]["id"], 1000)
        fan_runs.append(res["dt"])
        fan_steps.append(total / 1000)
        rss = max(rss, res["rss"])
    print(f"1,000-item fan-out (concurrency 64): {statistics.median(fan_runs) * 1e3:.0f} ms median whole process, "
          f"{statistics.median(fan_steps) * 1e3:.3f} ms per item wall; peak RSS {rss / 1024:.1f} MiB (target < 100 MiB)")
    os.makedirs(os.path.join(root, "bench", "out"), exist_ok=True)
    with open(os.path.join(root, "bench", "out", "workflow.json"), "w") as f:
        json.dump({"chain_ms": statistics.median(chain_total) * 1e3, "shell_chain_ms": statistics.median(shell) * 1e3,
                   "per_step_overhead_p50_ms": p50 * 1e3, "per_step_overhead_p90_ms": p90 * 1e3,
                   "fanout_ms": statistics.median(fan_runs) * 1e3, "fanout_peak_rss_mib": rss / 1024}, f, indent=2)


if __name__ == "__main__":
    main()
