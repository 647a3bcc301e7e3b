#!/usr/bin/env python3
"""Many processes on one PostgreSQL store, beside sled's single process, in
the same run on this machine.

1. Throughput: N POST /api/v1/executions of a trivial action (add.wasm),
   from ab (keep-alive, 32 connections), then executions/s from the first
   accept to the last end (records' created_at and ended_at) and
   accept-to-start latency p50/p99 (started_at - created_at: the durable
   accept, the claim, the instantiation). Shapes:
     sled    `serve --workers 2`, one process (the peer);
     pg      `serve --workers 2`, one process on PostgreSQL;
     pg+K    `serve --workers 0` and K `wasmflow worker --concurrency 2`.
2. Workflows fanning out, with 1 and with 3 worker processes (2 slots
   each): 1,000 items of add.wasm (concurrency 32: per-item overhead), and
   200 items of a step sleeping 50 ms (concurrency 32: work that spreads
   over the workers); wall time (created_at to ended_at) and per item.
3. Takeover: a worker running a 3 s step (Python) is killed with SIGKILL;
   how long until another worker starts it again (lease 2 s, heartbeat
   0.5 s).

A private cluster (initdb as `postgres` via runuser, loopback port, fsync
on: the durable path) is made in a temp dir and removed at the end.

  bench/workers.py WASMFLOW [N]
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Action slots of each process (`serve --workers`, `worker --concurrency`).
SLOTS = int(os.environ.get("SLOTS", "2"))


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def api(url, token, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


class Cluster:
    """A private PostgreSQL cluster for this run."""

    def __init__(self, work):
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        data = os.path.join(self.dir, "data")
        self.pg("initdb", "-D", data, "-U", "wasmflow", "--auth=trust", "-E", "UTF8", "--locale=C")
        self.pg("pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300",
                "start")
        self.data = data
        self.n = 0

    def pg(self, tool, *args):
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(self.bin, tool), *args],
                       check=True, capture_output=True)

    def database(self):
        self.n += 1
        name = f"bench{self.n}"
        subprocess.run([os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "wasmflow", "-d", "postgres", "-qc", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True)
        return f"postgres://wasmflow@127.0.0.1:{self.port}/{name}"

    def stop(self):
        self.pg("pg_ctl", "-D", self.data, "-m", "immediate", "stop")


class Site:
    """A home (and maybe a database) with a token and the actions."""

    def __init__(self, wasmflow, work, name, store=None):
        self.wasmflow = wasmflow
        self.env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, name))
        self.env.pop("WASMFLOW_STORE", None)
        if store:
            self.env["WASMFLOW_STORE"] = store
        self.actions = os.path.join(work, "actions")
        self.procs = []
        self.token = subprocess.run([wasmflow, "token", "create", "--name", "bench"], env=self.env,
                                    capture_output=True, check=True, text=True).stdout.strip()

    def spawn(self, args, ready):
        p = subprocess.Popen([self.wasmflow, *args], env=self.env, stderr=subprocess.PIPE, text=True)
        said = ""
        # `serve` says it listens (warming) before it serves; a compile may
        # say so too.
        for line in p.stderr:
            said += line
            m = re.search(ready, line)
            if m:
                break
        else:
            sys.exit(f"{args[0]} did not start: {said}")
        # Nobody reads the rest: it must not fill the pipe and block.
        threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
        self.procs.append(p)
        return p, m

    def serve(self, workers, *extra):
        _, m = self.spawn(["serve", "--listen", "127.0.0.1:0", "--actions", self.actions,
                           "--workers", str(workers), "--queue-capacity", "1000000", *extra],
                          r"serving (http://\S+)")
        self.url = m.group(1)

    def worker(self, name, *extra):
        p, _ = self.spawn(["worker", "--name", name, "--concurrency", str(SLOTS), *extra],
                          rf"wasmflow worker {name} running")
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            p.wait()

    def idle(self):
        # Not often: the queue view reads every entry with its record, and
        # the executions/s come from the records' times, not from this.
        while True:
            q = api(self.url, self.token, "/api/v1/queue")
            if not q["pending"] and not q["running"]:
                return
            time.sleep(0.5)

    def records(self, n):
        out, before = [], ""
        while len(out) < n:
            page = api(self.url, self.token, f"/api/v1/executions?limit=500&before={before}")
            out += page["executions"]
            before = page.get("next_before")
            if not before:
                break
        return out[:n]

    def wait(self, eid):
        while True:
            r = api(self.url, self.token, f"/api/v1/executions/{eid}")
            if r["status"] in ("succeeded", "failed", "timed_out", "canceled"):
                return r
            time.sleep(0.02)


def load(site, n, work):
    body = os.path.join(work, "body.json")
    with open(body, "w") as f:
        f.write('{"action": "add", "input": {"a": 1, "b": 2}}')
    ab = ["ab", "-q", "-k", "-c", "32", "-p", body, "-T", "application/json",
          "-H", f"Authorization: Bearer {site.token}"]
    subprocess.run(ab + ["-n", "200", f"{site.url}/api/v1/executions"], check=True, capture_output=True)
    site.idle()
    subprocess.run(ab + ["-n", str(n), f"{site.url}/api/v1/executions"], check=True, capture_output=True)
    site.idle()
    records = site.records(n)
    assert all(r["status"] == "succeeded" for r in records), "every execution succeeded"
    created = [ts(r["created_at"]) for r in records]
    started = [ts(r["started_at"]) for r in records]
    ended = [ts(r["ended_at"]) for r in records]
    waits = [(s - c) * 1e3 for c, s in zip(created, started)]
    return {"per_s": n / (max(ended) - min(created)),
            "start_p50_ms": statistics.median(waits), "start_p99_ms": pct(waits, 99)}


def fanout(action, item_input):
    """A workflow running `action` over `n` items, 32 at a time."""
    return f"""
version: 1
input:
  - {{ name: n, type: s64 }}
tasks:
  each:
    action: {action}
    with-items: "{{{{ range(input.n) | list }}}}"
    concurrency: 32
    input: {item_input}
"""


def workspace(prefix):
    """A temp dir the cluster's `postgres` user can enter, with `actions/`
    holding add.wasm (the trivial action): (dir, actions dir)."""
    work = tempfile.mkdtemp(prefix=prefix)
    os.chmod(work, 0o755)
    actions = os.path.join(work, "actions")
    os.makedirs(actions)
    subprocess.run([os.path.join(ROOT, "node_modules/.bin/jco"), "parse",
                    os.path.join(ROOT, "tests/fixtures/wat/add.wat"), "-o",
                    os.path.join(actions, "add.wasm")], check=True, capture_output=True)
    return work, actions


def main():
    wasmflow = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    work, actions = workspace("wf-bench-workers-")
    step = os.path.join(ROOT, "tests/fixtures/step/step.wasm")
    if not os.path.exists(step):
        subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/step/build.sh")], check=True)
    shutil.copy(step, os.path.join(actions, "step.wasm"))
    with open(os.path.join(actions, "fan.yaml"), "w") as f:
        f.write(fanout("add.wasm", '{ a: "{{ item }}", b: 1 }'))
    with open(os.path.join(actions, "slow.yaml"), "w") as f:
        f.write(fanout("step.wasm", '{ req: { name: "s{{ item }}", sleep-ms: 50 } }'))
    cluster = Cluster(work)
    results = {"n": n, "throughput": {}, "fanout": {}, "takeover_s": None}
    try:
        shapes = [("sled", None, SLOTS, 0), ("pg", True, SLOTS, 0)] + \
            [(f"pg+{k}", True, 0, k) for k in (1, 2, 4)]
        # PARTS=throughput,fanout,takeover (the default: all three);
        # SHAPES=sled,pg+2 picks throughput shapes.
        parts = os.environ.get("PARTS", "throughput,fanout,takeover").split(",")
        only = os.environ.get("SHAPES")
        if only:
            shapes = [s for s in shapes if s[0] in only.split(",")]
        if "throughput" not in parts:
            shapes = []
        for name, pg, serve_workers, k in shapes:
            site = Site(wasmflow, work, f"home-{name}", cluster.database() if pg else None)
            try:
                site.serve(serve_workers)
                for i in range(k):
                    site.worker(f"w{i}")
                results["throughput"][name] = load(site, n, work)
            finally:
                site.stop()
            r = results["throughput"][name]
            print(f"  {name:6} {r['per_s']:7.0f} executions/s, accept-to-start p50 "
                  f"{r['start_p50_ms']:.2f} ms, p99 {r['start_p99_ms']:.2f} ms", flush=True)

        for k in ((1, 3) if "fanout" in parts else ()):
            site = Site(wasmflow, work, f"home-fan{k}", cluster.database())
            try:
                site.serve(0)
                for i in range(k):
                    site.worker(f"f{i}")
                for flow, items in (("fan", 1000), ("slow", 200)):
                    eid = api(site.url, site.token, "/api/v1/executions",
                              {"action": flow, "input": {"n": items}})["id"]
                    r = site.wait(eid)
                    assert r["status"] == "succeeded", r
                    wall = ts(r["ended_at"]) - ts(r["created_at"])
                    results["fanout"][f"{flow}/{k}"] = {"items": items, "wall_s": wall,
                                                        "per_item_ms": wall * 1000 / items}
                    print(f"  {flow}: {items} items with {k} worker(s): {wall:.2f} s, "
                          f"{wall * 1000 / items:.2f} ms per item", flush=True)
            finally:
                site.stop()

        if "takeover" not in parts:
            return
        site = Site(wasmflow, work, "home-takeover", cluster.database())
        try:
            site.serve(0)
            lease = ["--lease", "2s", "--heartbeat", "500ms"]
            doomed = site.worker("doomed", *lease)
            eid = api(site.url, site.token, "/api/v1/executions", {
                "action": "step", "input": {"req": {"name": "t", "sleep-ms": 3000}}})["id"]
            while api(site.url, site.token, f"/api/v1/executions/{eid}")["status"] != "running":
                time.sleep(0.01)
            time.sleep(0.3)
            site.worker("heir", *lease)
            doomed.send_signal(signal.SIGKILL)
            killed = time.time()
            r = site.wait(eid)
            assert r["status"] == "succeeded" and r.get("attempt") == 2, r
            results["takeover_s"] = ts(r["started_at"]) - killed
        finally:
            site.stop()
        print(f"  takeover: the new attempt started {results['takeover_s']:.2f} s after the kill "
              f"(lease 2 s, heartbeat 0.5 s)", flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    if "sled" not in results["throughput"]:
        return
    sled = results["throughput"]["sled"]["per_s"]
    for name, r in results["throughput"].items():
        print(f"  {name:6} / sled = {r['per_s'] / sled:.2f}")
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "out", "workers.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
