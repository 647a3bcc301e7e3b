#!/usr/bin/env python3
"""The event bus under a bounded loopback load, against the direct webhook
in the same run (ab from a second process, keep-alive, fixed counts).

- direct: POST /api/v1/webhooks/direct, a webhook naming its action (add):
  accept-to-start p50/p99 (the record's started_at - created_at).
- through the rules: POST /api/v1/webhooks/alerts, a webhook naming no
  action, which 100 rules listen to (one whose criteria hold, 99 whose
  criteria do not): event-to-start p50/p99 (the execution's started_at -
  its trigger instance's received_at). Each call writes the instance, 100
  enforcements and the execution's pending record, durably, before the
  202.
- trigger instances per second, sustained, with those 100 rules.

  bench/event_bus.py WASMFLOW N [CONCURRENCY]
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import all_records, api, pct, ts, wait_idle  # noqa: E402

SECRET = "a-benchmark-webhook-secret"


def rule(i):
    # Rule 0's criteria hold for the payload sent; the others' do not.
    host = "web1" if i == 0 else f"db{i}"
    return (f"name: r{i}\ntrigger: {{ type: wasmflow.webhook, parameters: {{ name: alerts }} }}\n"
            f"criteria:\n  trigger.body.host: {{ type: equals, pattern: {host} }}\n"
            f"  trigger.body.severity: {{ type: inside, pattern: [critical, high] }}\n"
            f"action: {{ ref: add, input: {{ a: \"{{{{ trigger.body.n }}}}\", b: {i} }} }}\n")


def main():
    wasmflow, n = sys.argv[1], int(sys.argv[2])
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = tempfile.mkdtemp(prefix="wf-bench-bus-")
    env = dict(os.environ, WASMFLOW_HOME=os.path.join(work, "home"), WF_BENCH_HOOK=SECRET)
    actions = os.path.join(work, "actions")
    rules = os.path.join(work, "rules")
    os.makedirs(actions)
    os.makedirs(rules)
    shutil.copy(os.path.join(root, "tests/fixtures/wat/add.wat"), os.path.join(actions, "add.wat"))
    for i in range(100):
        with open(os.path.join(rules, f"r{i}.yaml"), "w") as f:
            f.write(rule(i))
    hooks = os.path.join(work, "hooks.yaml")
    with open(hooks, "w") as f:
        f.write("direct:\n  action: add\n  input: { a: \"{{ body.n }}\", b: 1 }\n  secret_env: WF_BENCH_HOOK\n"
                "alerts:\n  secret_env: WF_BENCH_HOOK\n")
    token = subprocess.run([wasmflow, "token", "create", "--name", "bench"], env=env,
                           capture_output=True, check=True, text=True).stdout.strip()
    server = subprocess.Popen([wasmflow, "serve", "--listen", "127.0.0.1:0", "--actions", actions,
                               "--rules", rules, "--webhooks", hooks, "--workers", "2",
                               "--queue-capacity", str(4 * n + 1000)],
                              env=env, stderr=subprocess.PIPE, text=True)
    results = {}
    try:
        seen = ""
        while not (m := re.search(r"serving (http://\S+)", seen)):
            line = server.stderr.readline()
            if not line:
                sys.exit(f"the server did not start: {seen}")
            seen += line
        url = m.group(1)
        # Its log, read on so that it never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
        body = os.path.join(work, "body.json")
        with open(body, "w") as f:
            f.write('{"host": "web1", "severity": "high", "n": 1}')
        ab = ["ab", "-q", "-k", "-c", str(conc), "-p", body, "-T", "application/json",
              "-H", f"X-Wasmflow-Webhook-Secret: {SECRET}"]
        for hook in ["direct", "alerts"]:
            subprocess.run(ab + ["-n", "100", f"{url}/api/v1/webhooks/{hook}"], check=True, capture_output=True)
            wait_idle(url, token)
            t = time.perf_counter()
            out = subprocess.run(ab + ["-n", str(n), f"{url}/api/v1/webhooks/{hook}"],
                                 check=True, capture_output=True, text=True).stdout
            wall = time.perf_counter() - t
            wait_idle(url, token)
            failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
            non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
            assert failed == 0 and not non2xx, out
            results[hook] = {"per_s": n / wall}
        records = all_records(url, token)
        instances = {t["id"]: ts(t["received_at"]) for t in api(url, token, f"/api/v1/trigger-instances?limit={n + 200}")}
        direct, ruled = [], []
        for r in records:
            by = r.get("started_by") or {}
            start = ts(r["started_at"])
            if "webhook" in by:
                direct.append((start - ts(r["created_at"])) * 1e3)
            elif "rule" in by and by["rule"]["trigger"] in instances:
                ruled.append((start - instances[by["rule"]["trigger"]]) * 1e3)
        direct, ruled = direct[:n], ruled[:n]
        assert len(ruled) == n, (len(ruled), n)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    print(f"webhook calls x{n} each way, {conc} connections (ab -k), 2 workers, 100 rules:")
    print(f"  direct webhook:   accept-to-start p50 {statistics.median(direct):.2f} ms, p99 {pct(direct, 99):.2f} ms; "
          f"{results['direct']['per_s']:.0f} calls/s")
    print(f"  through the rules: event-to-start p50 {statistics.median(ruled):.2f} ms, p99 {pct(ruled, 99):.2f} ms "
          f"(target p50 < 10 ms); {results['alerts']['per_s']:.0f} trigger instances/s, each with 100 enforcements")
    print(f"  ratio (rules / direct, p50): {statistics.median(ruled) / statistics.median(direct):.1f}x")


if __name__ == "__main__":
    main()
