#!/usr/bin/env python3
"""One real action in two languages, same run: `disk.checksum` in C
(actions/disk.checksum, built by Zig) and its Python twin
(bench/disk.checksum.py, componentize-py), on a 1 MiB and a 64 MiB file.

  whole process   `wasmflow run X.wasm` (cached compile; writes and fsyncs
                  a record), N interleaved runs each, beside the system
                  interpreter doing the same (`/usr/bin/python3 -c`
                  hashlib) and coreutils' `sha256sum`
  warm            in one `wasmflow serve` process (1 worker): the
                  records' started_at -> ended_at (instantiate, call,
                  hash, return), M executions each
  sizes           of the two components

Both include what wasmflow does around every execution: the read grant's
directory snapshotted for replay (the 1 MiB file is kept, the 64 MiB one
is over the 8 MiB per-file bound and left out), the record written.

  bench/languages.py WASMFLOW [N] [M]
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PYTHON = "/usr/bin/python3"


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def timed(cmd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed: {out.stderr.decode()}")
    return dt


def api(url, token, path, body=None):
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}",
                                                      "Content-Type": "application/json"},
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def build(wasmflow, rel):
    out = subprocess.run([wasmflow, "build", os.path.join(ROOT, rel)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"building {rel} failed: {out.stderr}")
    return out.stdout.strip()


def spec(path):
    return "spec=" + json.dumps({"path": path, "progress-mib": 16, "expect": None})


def whole_process(wasmflow, components, files, work, data, n):
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"))
    rows = {}
    for label, path in files.items():
        peers = {f"wasmflow run ({lang})": [wasmflow, "run", wasm, "-p", spec(path), "--allow-read", data]
                 for lang, wasm in components.items()}
        peers[f"{SYSTEM_PYTHON} hashlib"] = [
            SYSTEM_PYTHON, "-S", "-c",
            "import hashlib,sys; h=hashlib.sha256()\n"
            "with open(sys.argv[1],'rb') as f:\n"
            "  while c := f.read(1<<20): h.update(c)\n"
            "print(h.hexdigest())", path]
        peers["sha256sum"] = ["sha256sum", path]
        for cmd in peers.values():  # warm caches (wasmflow compiles here, once)
            timed(cmd, env)
        samples = {k: [] for k in peers}
        for _ in range(n):
            for k, cmd in peers.items():
                samples[k].append(timed(cmd, env))
        rows[label] = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
    return rows


def warm(wasmflow, components, files, work, data, m):
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "serve-home"))
    actions = os.path.join(work, "actions")
    os.makedirs(actions)
    for lang, wasm in components.items():
        shutil.copy(wasm, os.path.join(actions, f"checksum-{lang.lower()}.wasm"))
    token = subprocess.run([wasmflow, "token", "create", "--name", "bench"], env=env,
                           capture_output=True, check=True, text=True).stdout.strip()
    server = subprocess.Popen([wasmflow, "serve", "--listen", "127.0.0.1:0", "--actions", actions,
                               "--workers", "1", "--allow-read", data],
                              env=env, stderr=subprocess.PIPE, text=True)
    rows = {}
    try:
        line = server.stderr.readline()
        found = re.search(r"serving (http://\S+)", line)
        if not found:
            sys.exit(f"the server did not start: {line}{server.stderr.read()}")
        url = found.group(1)
        for label, path in files.items():
            rows[label] = {}
            for lang in components:
                body = {"action": f"checksum-{lang.lower()}", "params": [spec(path)],
                        "grants": {"read": [data]}}
                ids = []
                for i in range(m + 1):  # the first one warms the worker
                    ids.append(api(url, token, "/api/v1/executions", body)["id"])
                    while True:  # one at a time: the execution alone on the machine
                        rec = api(url, token, f"/api/v1/executions/{ids[-1]}")
                        if rec["status"] not in ("pending", "running"):
                            break
                        time.sleep(0.002)
                    if rec["status"] != "succeeded":
                        sys.exit(f"{lang} on {label}: {json.dumps(rec.get('error'))}")
                    if i > 0:
                        rows[label].setdefault(lang, []).append(
                            (ts(rec["ended_at"]) - ts(rec["started_at"])) * 1e3)
            rows[label] = {k: statistics.median(v) for k, v in rows[label].items()}
    finally:
        server.terminate()
        server.wait()
    return rows


def main():
    wasmflow = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    m = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    work = tempfile.mkdtemp(prefix="wf-bench-lang-")
    try:
        components = {"C": build(wasmflow, "actions/disk.checksum"),
                      "Python": build(wasmflow, "bench/disk.checksum.py")}
        # Granted alone: a read grant's directory is snapshotted for replay
        # at every start (files up to 8 MiB), the same for both languages.
        data = os.path.join(work, "data")
        os.makedirs(data)
        files = {}
        for label, size in [("1 MiB", 1 << 20), ("64 MiB", 64 << 20)]:
            path = os.path.join(data, label.replace(" ", ""))
            with open(path, "wb") as f:
                f.write(os.urandom(size))
            files[label] = path
        procs = whole_process(wasmflow, components, files, work, data, n)
        warms = warm(wasmflow, components, files, work, data, m)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    sizes = {lang: os.path.getsize(w) for lang, w in components.items()}
    print("disk.checksum, C (Zig) vs Python (componentize-py), same run")
    print("component sizes: " + ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in sizes.items()))
    for label in files:
        base = procs[label]["wasmflow run (C)"]
        print(f"\nwhole process, {label} file, median of {n} interleaved runs:")
        for k, v in procs[label].items():
            print(f"  {k:<34}{v:>9.2f} ms {v / base:>7.2f}x")
        c = warms[label]["C"]
        print(f"warm in `wasmflow serve`, {label} file, median of {m}:")
        for k, v in warms[label].items():
            print(f"  {k:<34}{v:>9.2f} ms {v / c:>7.2f}x")
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "out", "languages.json"), "w") as f:
        json.dump({"sizes": sizes, "whole_process_ms": procs, "warm_ms": warms, "n": n, "m": m}, f, indent=2)


if __name__ == "__main__":
    main()
