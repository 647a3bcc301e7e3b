#!/usr/bin/env python3
"""A with-items fan-out of a Python action through `wasmflow serve`.

  bench/fanout_served.py WASMFLOW "1000 10000" [CONCURRENCY]

The trivial Python action of tests/fixtures/step (value + 1) over N items,
`concurrency: CONCURRENCY` (64 unless given), posted to one `wasmflow serve
--workers 2` on a fresh sled home; a 100-item fan-out first warms the
server's instances. Reported per N: the workflow's wall time from accept
(created_at) to end (ended_at), time per item, and the server's peak RSS
(VmHWM) after it. The peer, same run: one `/usr/bin/python3 -c` process
doing one item's work (median of 20), so the per-item figure reads as a
ratio against starting the system interpreter once per item, which is
what a runner of scripts pays.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python import PEER, ROOT, SYSTEM_PYTHON, api, timed, ts  # noqa: E402
from server_memory import start  # noqa: E402


def fanout_yaml(items, concurrency):
    return f"""version: 1
tasks:
  fan:
    action: step.wasm
    with-items: "{{{{ range({items}) | list }}}}"
    concurrency: {concurrency}
    input: {{ req: {{ name: "i", value: "{{{{ item }}}}" }} }}
    next: [{{ publish: {{ n: "{{{{ result | length }}}}", last: "{{{{ result[-1].value }}}}" }} }}]
output: {{ n: "{{{{ ctx.n }}}}", last: "{{{{ ctx.last }}}}" }}
"""


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024


def run_fanout(url, token, name, n):
    rec = api(url, token, "/api/v1/executions", {"action": name, "input": {}})
    while rec.get("status") in (None, "pending", "running"):
        time.sleep(0.05)
        rec = api(url, token, f"/api/v1/executions/{rec['id']}")
    assert rec["status"] == "succeeded", rec
    assert rec["result"] == {"n": n, "last": n}, rec["result"]
    return ts(rec["ended_at"]) - ts(rec["created_at"])


def main():
    wasmflow = os.path.abspath(sys.argv[1])
    sizes = [int(n) for n in sys.argv[2].split()]
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    work = tempfile.mkdtemp(prefix="wf-bench-fanout-served-")
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"),
               WASMFLOW_CACHE_DIR=os.path.join(work, "cache"))
    actions = os.path.join(work, "actions")
    os.makedirs(actions)
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/step/build.sh")], check=True,
                   capture_output=True)
    shutil.copy(os.path.join(ROOT, "tests/fixtures/step/step.wasm"), actions)
    for n in [100] + sizes:
        with open(os.path.join(actions, f"fan{n}.yaml"), "w") as f:
            f.write(fanout_yaml(n, concurrency))
    # Compile into the cache before the server starts (what `build` does).
    subprocess.run([wasmflow, "inspect", os.path.join(actions, "step.wasm")], env=env,
                   check=True, capture_output=True)
    req = json.dumps({"req": {"name": "i", "value": 1}})
    peer = statistics.median(timed([SYSTEM_PYTHON, "-c", PEER, req], env)[0] for _ in range(20))
    token = subprocess.run([wasmflow, "token", "create", "--name", "bench"], env=env,
                           capture_output=True, check=True, text=True).stdout.strip()
    # The queue's default capacity: a fan-out's tasks take action slots.
    server, url = start(wasmflow, env, actions, 2, 10_000)
    rows = []
    try:
        run_fanout(url, token, "fan100", 100)
        for n in sizes:
            wall = run_fanout(url, token, f"fan{n}", n)
            rows.append((n, wall, peak_rss_mib(server.pid)))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work)
    print(f"{wasmflow}; concurrency {concurrency}; "
          f"peer: one {SYSTEM_PYTHON} -c process, median {peer * 1e3:.1f} ms")
    print("| items | accept to end | per item | per item / one python3 -c | server peak RSS |")
    print("|---|---|---|---|---|")
    for n, wall, rss in rows:
        per = wall / n
        print(f"| {n:,} | {wall:.2f} s | {per * 1e3:.3f} ms | {per / peer:.3f}x | {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
