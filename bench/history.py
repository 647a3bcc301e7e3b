#!/usr/bin/env python3
"""Commands as the history grows: a home filled through one `wasmflow
serve` (`ab -k` POSTs of add.wat) up to each size given; at each, with
the server stopped, whole-process medians of R runs of `execution list
-n 20`, `execution get ID` (the first execution) and `run add.wat`, and
the time of the first command after the server (it may compact). The
peer is the smallest size, same run: what a command costs must not grow
with the history (issue #24 item 6: <= 1.5x from 10,000 to 1,000,000).

  bench/history.py WASMFLOW "10000 100000 1000000" [R]

With KEEP=1 the filled home is kept (its path printed) for profiling.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import wait_idle  # noqa: E402
from server_memory import prepare, start  # noqa: E402
from python import timed  # noqa: E402


def median_ms(cmd, env, runs):
    return statistics.median(timed(cmd, env)[0] for _ in range(runs)) * 1000


def main():
    wasmflow = sys.argv[1]
    sizes = [int(n) for n in sys.argv[2].split()]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    work, env, actions, token, body = prepare(wasmflow, "wf-bench-history-")
    add = os.path.join(actions, "add.wat")
    done, first, rows = 0, None, []
    for size in sizes:
        server, url = start(wasmflow, env, actions, 2, 50000)
        try:
            wait_idle(url, token)
            while done < size:
                n = min(20000, size - done)
                subprocess.run(["ab", "-q", "-k", "-c", "32", "-p", body, "-T", "application/json",
                                "-H", f"Authorization: Bearer {token}", "-n", str(n),
                                f"{url}/api/v1/executions"], check=True, capture_output=True)
                wait_idle(url, token)
                done += n
        finally:
            server.terminate()
            server.wait()
        # The first command after the server: it reads the log the server
        # wrote since its open, and compacts the live database if it grew.
        after_server = timed([wasmflow, "execution", "list", "-n", "20"], env)[0] * 1000
        if first is None:
            out = subprocess.run([wasmflow, "execution", "list", "-n", str(size), "--json"],
                                 env=env, check=True, capture_output=True, text=True).stdout
            first = json.loads(out)[-1]["id"]
        rows.append((size, after_server,
                     median_ms([wasmflow, "execution", "list", "-n", "20"], env, runs),
                     median_ms([wasmflow, "execution", "get", first], env, runs),
                     median_ms([wasmflow, "run", add, "-p", "a=1", "-p", "b=2"], env, runs)))
    print(f"medians of {runs} whole processes; {wasmflow}")
    print("| executions | first `execution list` after the server | `execution list -n 20` "
          "| `execution get ID` | `run add.wat` |")
    print("|---|---|---|---|---|")
    base = rows[0]
    for size, after_server, listing, get, run in rows:
        print(f"| {size:,} | {after_server:.0f} ms | {listing:.1f} ms ({listing / base[2]:.2f}x) | "
              f"{get:.1f} ms ({get / base[3]:.2f}x) | {run:.1f} ms ({run / base[4]:.2f}x) |")
    if os.environ.get("KEEP"):
        print(f"home kept: {env['WASMFLOW_HOME']}")
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
