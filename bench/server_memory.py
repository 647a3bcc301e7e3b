#!/usr/bin/env python3
"""The server's memory as its history grows: ROUNDS rounds of BATCH
POST /api/v1/executions of a trivial action (add.wasm, `ab -k`), each
waited out, with the server's resident memory (VmRSS) read after every
round. A server's memory must level off (a cache capacity), not grow with
every execution it has run. Peer, same run: the same server restarted on
the same home, its RSS at rest (what the history costs before any work).

  bench/server_memory.py WASMFLOW [BATCH] [ROUNDS] [WORKERS]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# The API helpers of the load benchmark beside this one.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import wait_idle  # noqa: E402


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start(wasmflow, env, actions, workers, capacity):
    server = subprocess.Popen([wasmflow, "serve", "--listen", "127.0.0.1:0", "--actions", actions,
                               "--workers", str(workers), "--queue-capacity", str(capacity)],
                              env=env, stderr=subprocess.PIPE, text=True)
    for line in server.stderr:
        m = re.search(r"serving (http://\S+)", line)
        if m:
            return server, m.group(1)
    sys.exit(f"the server did not start: {server.stderr.read()}")


def prepare(wasmflow, prefix):
    """A fresh home with an API token and an `--actions` directory holding
    add.wat, and the body of one POST of it: (work, env, actions, token,
    body)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = tempfile.mkdtemp(prefix=prefix)
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"))
    actions = os.path.join(work, "actions")
    os.makedirs(actions)
    shutil.copy(os.path.join(root, "tests/fixtures/wat/add.wat"), os.path.join(actions, "add.wat"))
    token = subprocess.run([wasmflow, "token", "create", "--name", "bench"], env=env,
                           capture_output=True, check=True, text=True).stdout.strip()
    body = os.path.join(work, "body.json")
    with open(body, "w") as f:
        f.write('{"action": "add", "input": {"a": 1, "b": 2}}')
    return work, env, actions, token, body


def main():
    wasmflow = sys.argv[1]
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    work, env, actions, token, body = prepare(wasmflow, "wf-bench-mem-")
    server, url = start(wasmflow, env, actions, workers, batch + 1000)
    rows = []
    try:
        wait_idle(url, token)
        rows.append((0, rss_mib(server.pid), 0.0))
        ab = ["ab", "-q", "-k", "-c", "32", "-p", body, "-T", "application/json",
              "-H", f"Authorization: Bearer {token}", "-n", str(batch), f"{url}/api/v1/executions"]
        for r in range(1, rounds + 1):
            t = time.perf_counter()
            out = subprocess.run(ab, check=True, capture_output=True, text=True).stdout
            failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
            assert failed == 0 and "Non-2xx" not in out, out
            wait_idle(url, token)
            rows.append((r * batch, rss_mib(server.pid), batch / (time.perf_counter() - t)))
    finally:
        server.terminate()
        server.wait()
    server, url = start(wasmflow, env, actions, workers, batch + 1000)
    try:
        wait_idle(url, token)
        time.sleep(0.5)
        restarted = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait()
    shutil.rmtree(work, ignore_errors=True)

    print(f"{'executions':>11}{'server RSS':>12}{'round /s':>10}")
    for n, rss, per_s in rows:
        print(f"{n:>11,}{rss:>10.0f}MiB{per_s:>10.0f}")
    print(f"restarted on the same home, at rest: {restarted:.0f} MiB")
    growth = rows[-1][1] - rows[len(rows) // 2][1]
    print(f"growth over the second half ({rows[len(rows) // 2][0]:,} -> {rows[-1][0]:,}): {growth:+.0f} MiB")


if __name__ == "__main__":
    main()
