#!/usr/bin/env python3
"""What confinement costs a granted program: `qemu-img info` through
`process.run`: confined without a net grant (Landlock, seccomp refusing
sockets), confined with one (sockets for IPv4/IPv6 allowed), and unconfined
(`--allow-unconfined-exec` with Landlock switched off), interleaved, timed
inside the guest around the `process.run` call (the hostile fixture's
run-program mode reports it), so the guest's own start does not blur it.

  python3 bench/confine.py target/release/wasmflow 50
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile


def main():
    wasmflow, n = sys.argv[1], int(sys.argv[2])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    hostile = os.path.join(root, "tests/fixtures/hostile/hostile.wasm")
    if not os.path.exists(hostile):
        subprocess.run([os.path.join(root, "tests/fixtures/hostile/build.sh")], check=True)
    work = tempfile.mkdtemp(prefix="wf-confine-")
    disks = os.path.join(work, "disks")
    os.mkdir(disks)
    disk = os.path.join(disks, "d.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "64M"], check=True)
    base = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"))
    target = "\t".join(["qemu-img", "info", disk])
    cmd = [wasmflow, "run", hostile, "-p", "mode=run-program", "-p", f"target={target}",
           "--allow-exec", "qemu-img", "--allow-write", disks, "--no-logs"]
    variants = {
        "confined": (cmd, base),
        # A net grant: TCP to one port, IPv4/IPv6 sockets allowed.
        "net-grant": (cmd + ["--allow-net", "127.0.0.1:9"], base),
        "unconfined": (cmd + ["--allow-unconfined-exec"],
                       dict(base, WASMFLOW_TEST_NO_LANDLOCK="1")),
    }
    times = {k: [] for k in variants}
    for _ in range(2):  # compile the component into the cache first
        subprocess.run(cmd, env=base, capture_output=True, check=True)
    for _ in range(n):
        for name, (c, env) in variants.items():
            out = subprocess.run(c, env=env, capture_output=True, check=True)
            result = json.loads(json.loads(out.stdout))
            assert result["status"] == 0, result
            times[name].append(result["elapsed_us"] / 1000)
    print(f"qemu-img info through process.run, {n} interleaved runs each (ms, timed in the guest):")
    for name, t in times.items():
        t.sort()
        print(f"  {name:<11} median {statistics.median(t):6.2f}  p90 {t[int(len(t) * 0.9)]:6.2f}")
    u = statistics.median(times["unconfined"])
    for name in ("confined", "net-grant"):
        c = statistics.median(times[name])
        print(f"  {name} / unconfined = {c / u:.2f} ({c - u:+.2f} ms)")


if __name__ == "__main__":
    main()
