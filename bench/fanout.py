#!/usr/bin/env python3
"""How a with-items fan-out grows: N items of a trivial action (add.wat)
with `concurrency: 64`, through `wasmflow run FILE.yaml` (a fresh home per
run, the compiled component cached), for each N given, with each binary
given (an A/B of two builds, interleaved, in the same run).

Reported per binary and N: wall time of the whole process, time per item,
peak RSS of the process.

  bench/fanout.py "1000 3000 10000" WASMFLOW [OTHER_WASMFLOW...]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fanout_yaml(items):
    return f"""version: 1
tasks:
  fan:
    action: {os.path.join(ROOT, "tests/fixtures/wat/add.wat")}
    with-items: "{{{{ range({items}) | list }}}}"
    concurrency: 64
    input: {{ a: "{{{{ item }}}}", b: 1 }}
    next: [{{ publish: {{ n: "{{{{ result | length }}}}" }} }}]
output: {{ n: "{{{{ ctx.n }}}}" }}
"""


def timed(cmd, env):
    """Wall time and peak RSS (KiB) of one process."""
    t = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    dt = time.perf_counter() - t
    out, err = child.stdout.read(), child.stderr.read()
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed: {err.decode()}")
    return dt, usage.ru_maxrss, out


def main():
    sizes = [int(n) for n in sys.argv[1].split()]
    binaries = [os.path.abspath(b) for b in sys.argv[2:]]
    work = tempfile.mkdtemp(prefix="wf-bench-fan-")
    cache = os.path.join(work, "cache")
    try:
        rows = []
        for n in sizes:
            wf = os.path.join(work, f"fan{n}.yaml")
            with open(wf, "w") as f:
                f.write(fanout_yaml(n))
            for b, binary in enumerate(binaries):
                env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, f"home-{n}-{b}"),
                           WASMFLOW_CACHE_DIR=cache)
                dt, rss, out = timed([binary, "run", wf], env)
                assert f'"n": {n}' in out.decode() or f'"n":{n}' in out.decode(), out[:200]
                rows.append((os.path.basename(os.path.dirname(binary)) if len(binaries) > 1 else "",
                             binary, n, dt, rss))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'binary':<40}{'items':>8}{'wall':>10}{'per item':>12}{'peak RSS':>12}")
    for _, binary, n, dt, rss in rows:
        print(f"{binary:<40}{n:>8}{dt:>9.2f}s{dt / n * 1e3:>10.3f}ms{rss / 1024:>10.0f}MiB")


if __name__ == "__main__":
    main()
