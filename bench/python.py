#!/usr/bin/env python3
"""Python actions as users run them, beside the system interpreter, same run.

  bench/python.py WASMFLOW [N] [COMPILES]

1. One trivial Python action (tests/fixtures/step: value + 1), whole
   process: `wasmflow run step.wasm` with its compile cached (opens the
   store, writes and fsyncs the record) against `/usr/bin/python3 -c`
   doing the same work (parse the JSON input, add one, print JSON).
   Interleaved, N runs each, medians.
2. A chain of 40 such tasks passing the value along: `wasmflow run
   chain.yaml` (a cold process, compile cached) against 40 `/usr/bin/python3
   -c` processes one after another; and the same chain through one
   `wasmflow serve`, accept (created_at) to end (ended_at) of the workflow
   record. Published figures for 40 tasks, quoted as context only (other
   machines, other tasks): Windmill 4.38 s (2.09 s on a dedicated worker),
   Temporal 2.97 s, Hatchet 1.22 s (windmill.dev/docs/misc/benchmarks/
   competitors, 2024).
3. First runs: compiling a Python component into an empty cache (the first
   one), then a second, different one (bench/disk.checksum.py: another
   world, the same componentize-py) into the same cache, which reuses the
   first one's compiled CPython module (and compiled functions); and the
   second one into an empty cache, for comparison. COMPILES rounds, fresh
   caches each, medians.

PARTS=chain_served (a comma-separated list of one_action, chain,
chain_served, first_runs) runs only those.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime

from server_memory import start

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PYTHON = "/usr/bin/python3"
PEER = ("import json, sys; r = json.loads(sys.argv[1])['req']; "
        "print(json.dumps({'name': r['name'], 'value': r['value'] + 1, 'runs': 1}))")


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def timed(cmd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr}")
    return dt, out.stdout


def build_components(wasmflow, work, second=True):
    step = os.path.join(work, "step.wasm")
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/step/build.sh")], check=True,
                   capture_output=True)
    shutil.copy(os.path.join(ROOT, "tests/fixtures/step/step.wasm"), step)
    if not second:
        return step, None
    # `wasmflow build` compiles what it built into a cache: not the bench's.
    out = subprocess.run([wasmflow, "--cache-dir", os.path.join(work, "build-cache"), "build",
                          os.path.join(ROOT, "bench/disk.checksum.py")],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"building bench/disk.checksum.py failed: {out.stderr}")
    return step, out.stdout.strip()


def chain_yaml(steps):
    tasks = []
    for i in range(steps):
        value = '"{{ ctx.v }}"' if i else "0"
        nxt = f"\n    next: [{{ publish: {{ v: \"{{{{ result.value }}}}\" }}, do: s{i + 1} }}]" \
            if i + 1 < steps else "\n    next: [{ publish: { v: \"{{ result.value }}\" } }]"
        tasks.append(f"  s{i}:\n    action: step.wasm\n    input: {{ req: {{ name: s{i}, value: {value} }} }}{nxt}")
    return "version: 1\nvars: { v: 0 }\ntasks:\n" + "\n".join(tasks) + "\noutput: { v: \"{{ ctx.v }}\" }\n"


def row(label, xs, base=None):
    med = statistics.median(xs)
    p90 = sorted(xs)[int(0.9 * (len(xs) - 1))]
    ratio = f"  {med / base:.2f}x" if base else ""
    print(f"  {label:<44} median {med * 1e3:8.1f} ms  p90 {p90 * 1e3:8.1f} ms{ratio}")
    return med


def one_action(wasmflow, step, env, n):
    req = {"req": {"name": "a", "value": 1}}
    input_file = os.path.join(os.path.dirname(step), "input.json")
    with open(input_file, "w") as f:
        json.dump(req, f)
    wf = [wasmflow, "run", step, "--input", input_file]
    py = [SYSTEM_PYTHON, "-c", PEER, json.dumps(req)]
    _, out = timed(wf, env)  # compile into the cache
    assert json.loads(out)["value"] == 2, out
    assert json.loads(timed(py, env)[1])["value"] == 2
    times = {"wasmflow run step.wasm (cached)": [], f"{SYSTEM_PYTHON} -c": []}
    for _ in range(n):
        times["wasmflow run step.wasm (cached)"].append(timed(wf, env)[0])
        times[f"{SYSTEM_PYTHON} -c"].append(timed(py, env)[0])
    print("one trivial Python action, whole process")
    base = statistics.median(times[f"{SYSTEM_PYTHON} -c"])
    return {label: row(label, xs, base) for label, xs in times.items()}


def chain(wasmflow, work, env, n):
    with open(os.path.join(work, "chain.yaml"), "w") as f:
        f.write(chain_yaml(40))
    wf = [wasmflow, "run", os.path.join(work, "chain.yaml"), "--json"]
    _, out = timed(wf, env)
    assert json.loads(out)["result"] == {"v": 40}, out
    times = {"wasmflow run chain.yaml (40 tasks)": [], "40 /usr/bin/python3 -c processes": []}
    for _ in range(n):
        dt, out = timed(wf, env)
        assert json.loads(out)["result"] == {"v": 40}
        times["wasmflow run chain.yaml (40 tasks)"].append(dt)
        t = time.perf_counter()
        v = 0
        for i in range(40):
            out = subprocess.run([SYSTEM_PYTHON, "-c", PEER, json.dumps({"req": {"name": f"s{i}", "value": v}})],
                                 capture_output=True, text=True, check=True).stdout
            v = json.loads(out)["value"]
        assert v == 40
        times["40 /usr/bin/python3 -c processes"].append(time.perf_counter() - t)
    print("40 Python tasks in a chain")
    base = statistics.median(times["40 /usr/bin/python3 -c processes"])
    return {label: row(label, xs, base) for label, xs in times.items()}


def api(url, token, path, body=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def chain_served(wasmflow, work, env, n):
    actions = os.path.join(work, "actions")
    os.makedirs(actions, exist_ok=True)
    shutil.copy(os.path.join(work, "step.wasm"), actions)
    shutil.copy(os.path.join(work, "chain.yaml"), actions)
    token = subprocess.run([wasmflow, "token", "create", "--name", "bench"], env=env,
                           capture_output=True, check=True, text=True).stdout.strip()
    server, url = start(wasmflow, env, actions, 2, 10_000)
    try:
        spans = []
        for i in range(n + 1):
            rec = api(url, token, "/api/v1/executions", {"action": "chain", "input": {}})
            while rec.get("status") in (None, "pending", "running"):
                time.sleep(0.01)
                rec = api(url, token, f"/api/v1/executions/{rec['id']}")
            assert rec["status"] == "succeeded", rec
            if i:  # the first one warms the server's instances
                spans.append(ts(rec["ended_at"]) - ts(rec["created_at"]))
    finally:
        server.terminate()
        server.wait()
    print("the same chain through `wasmflow serve` (accept to end)")
    return row("serve: chain (40 tasks)", spans)


def compile_once(wasmflow, cache, component):
    t = time.perf_counter()
    # The runtime's info line counts the functions taken from the cache
    # (the terminal line is shown only past a second).
    env = dict(os.environ, WASMFLOW_LOG="wasmflow_runtime=info")
    out = subprocess.run([wasmflow, "--cache-dir", cache, "inspect", component],
                         capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"compiling {component} failed: {out.stderr}")
    counts = re.search(r"reused=(\d+) compiled=(\d+)", out.stderr)
    if not counts:
        return dt, None
    reused, compiled = int(counts.group(1)), int(counts.group(2))
    return dt, (reused, reused + compiled)


def first_runs(wasmflow, step, second, work, k):
    first, warm, cold = [], [], []
    shared = None
    for i in range(k):
        a, b = os.path.join(work, f"cache-a{i}"), os.path.join(work, f"cache-b{i}")
        first.append(compile_once(wasmflow, a, step)[0])
        dt, shared = compile_once(wasmflow, a, second)
        warm.append(dt)
        cold.append(compile_once(wasmflow, b, second)[0])
        shutil.rmtree(a)
        shutil.rmtree(b)
    print("first runs: compiling into the cache (`wasmflow inspect`, whole process)")
    out = {"first": row("first Python component, empty cache", first),
           "second_warm": row("a second one, after the first", warm),
           "second_cold": row("the second one, empty cache", cold)}
    if shared:
        print(f"  the second one reused {shared[0]} of {shared[1]} functions")
        out["reused"], out["functions"] = shared
    return out


def main():
    wasmflow = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    work = tempfile.mkdtemp(prefix="wf-bench-py-")
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"))
    parts = os.environ.get("PARTS", "one_action,chain,chain_served,first_runs").split(",")
    try:
        step, second = build_components(wasmflow, work, "first_runs" in parts)
        runs = {"one_action": lambda: one_action(wasmflow, step, env, n),
                "chain": lambda: chain(wasmflow, work, env, max(3, n // 4)),
                "chain_served": lambda: chain_served(wasmflow, work, env, max(3, n // 4)),
                "first_runs": lambda: first_runs(wasmflow, step, second, work, k)}
        unknown = [p for p in parts if p not in runs]
        if unknown:
            sys.exit(f"PARTS: no part named {', '.join(unknown)} (parts: {', '.join(runs)})")
        if "chain_served" in parts and "chain" not in parts:
            with open(os.path.join(work, "chain.yaml"), "w") as f:
                f.write(chain_yaml(40))
        results = {part: runs[part]() for part in parts}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "out", "python.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
