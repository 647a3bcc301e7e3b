#!/usr/bin/env python3
"""The server under a bounded loopback load: N POST /api/v1/executions of a
trivial action (add.wasm) from a second process (ab, keep-alive, fixed
request count), with W workers.

Reported: accept throughput and p99 latency as ab sees them; sustained
executions/s from the first accept to the last end (records' created_at
and ended_at); accept-to-start latency p50/p99 (started_at - created_at,
the time from the durable accept to the guest being instantiated). Peer,
same run: the same action as separate `wasmflow run` processes, two at a
time (one per core), in executions/s.

  bench/server.py WASMFLOW N [CONCURRENCY] [WORKERS]
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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def api(url, token, path):
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    wasmflow, n = sys.argv[1], int(sys.argv[2])
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = tempfile.mkdtemp(prefix="wf-bench-srv-")
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"))
    actions = os.path.join(work, "actions")
    os.makedirs(actions)
    component = os.path.join(actions, "add.wasm")
    subprocess.run([os.path.join(root, "node_modules/.bin/jco"), "parse",
                    os.path.join(root, "tests/fixtures/wat/add.wat"), "-o", component],
                   check=True, capture_output=True)
    token = subprocess.run([wasmflow, "token", "create", "--name", "bench"], env=env,
                           capture_output=True, check=True, text=True).stdout.strip()
    server = subprocess.Popen([wasmflow, "serve", "--listen", "127.0.0.1:0", "--actions", actions,
                               "--workers", str(workers), "--queue-capacity", str(n + 1000)],
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        m = re.search(r"serving (http://\S+)", line)
        if not m:
            sys.exit(f"the server did not start: {line}{server.stderr.read()}")
        url = m.group(1)
        body = os.path.join(work, "body.json")
        with open(body, "w") as f:
            f.write('{"action": "add", "input": {"a": 1, "b": 2}}')
        ab = ["ab", "-q", "-k", "-c", str(conc), "-p", body, "-T", "application/json",
              "-H", f"Authorization: Bearer {token}"]
        subprocess.run(ab + ["-n", "200", f"{url}/api/v1/executions"], check=True, capture_output=True)
        wait_idle(url, token)
        out = subprocess.run(ab + ["-n", str(n), f"{url}/api/v1/executions"],
                             check=True, capture_output=True, text=True).stdout
        wait_idle(url, token)
        rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
        p99 = float(re.search(r"\s99%\s+(\d+)", out).group(1))
        failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
        non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
        records = all_records(url, token)[:n]  # newest first: this load's
        created = [ts(r["created_at"]) for r in records]
        started = [ts(r["started_at"]) for r in records]
        ended = [ts(r["ended_at"]) for r in records]
        waits = [(s - c) * 1e3 for c, s in zip(created, started)]
        sustained = len(records) / (max(ended) - min(created))
        assert all(r["status"] == "succeeded" for r in records)
    finally:
        server.terminate()
        server.wait()

    # Peer: one process per execution, two at a time (each on a home of
    # its own: a store is one process's).
    k = 100

    def processes(i):
        home = dict(env, WASMFLOW_HOME=os.path.join(work, f"peer{i}"))
        for _ in range(k):
            subprocess.run([wasmflow, "run", component, "-p", "a=1", "-p", "b=2"],
                           env=home, capture_output=True, check=True)

    processes(0)  # compile into each home's cache first
    processes(1)
    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(processes, range(2)))
    peer = 2 * k / (time.perf_counter() - t)
    shutil.rmtree(work, ignore_errors=True)

    print(f"POST /api/v1/executions x{n}, {conc} connections (ab -k), {workers} workers:")
    print(f"  accepted {rps:.0f}/s, p99 {p99:.0f} ms, failed {failed}, non-2xx {non2xx.group(1) if non2xx else 0}")
    print(f"  sustained {sustained:.0f} executions/s accept-to-end (target >= 2,000); "
          f"`wasmflow run` processes x2: {peer:.0f}/s; ratio {sustained / peer:.1f}x")
    print(f"  accept-to-start p50 {statistics.median(waits):.2f} ms, p99 {pct(waits, 99):.2f} ms (target p50 < 5 ms)")
    os.makedirs(os.path.join(root, "bench", "out"), exist_ok=True)
    with open(os.path.join(root, "bench", "out", "server.json"), "w") as f:
        json.dump({"n": n, "connections": conc, "workers": workers, "accepted_per_s": rps, "accept_p99_ms": p99,
                   "sustained_per_s": sustained, "process_peer_per_s": peer,
                   "accept_to_start_p50_ms": statistics.median(waits), "accept_to_start_p99_ms": pct(waits, 99)},
                  f, indent=2)


def wait_idle(url, token):
    while True:
        q = api(url, token, "/api/v1/queue")
        if not q["pending"] and not q["running"]:
            return
        time.sleep(0.05)


def all_records(url, token):
    out, before = [], ""
    while True:
        page = api(url, token, f"/api/v1/executions?limit=500&before={before}")
        out += page["executions"]
        before = page.get("next_before")
        if not before:
            return out


if __name__ == "__main__":
    main()
