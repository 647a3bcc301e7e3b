"""The peer of `cargo bench -p wasmflow-events --bench matching`: the same
1,000 rules (host/events/benches/matching.rs builds them the same way) and
the same payload, matched the way StackStorm's rules engine does it in
Python (its operators, fnmatch, re.search, Jinja2 for the input), and the
median time of one pass over all of them.

usage: python3 bench/rule_matching.py [ROUNDS]
"""
import fnmatch
import re
import statistics
import sys
import time

import jinja2


def rule(i):
    kind = i % 10
    op, pattern = {
        0: ("equals", f"web{i}"),
        1: ("regex", f"^web{i}$"),
        2: ("inside", ["critical", "high"]),
        3: ("startswith", f"db{i}"),
        4: ("matchwildcard", f"web{i}-*"),
        5: ("greaterthan", 1000 + i),
        6: ("icontains", f"DISK{i}"),
        7: ("nequals", "web7"),
        8: ("exists", None),
        9: ("iequals", f"WEB{i}"),
    }[kind]
    path = {2: "body.severity", 5: "body.used", 6: "body.message"}.get(kind, "body.host")
    return {
        "name": f"r{i}",
        "trigger": ("wasmflow.webhook", {"name": "alerts"}),
        "criteria": [(path, op, pattern)],
        "input": {"name": "{{ trigger.body.host }}", "rule": i},
    }


OPS = {
    "equals": lambda v, p: v == p,
    "nequals": lambda v, p: v != p,
    "iequals": lambda v, p: isinstance(v, str) and v.lower() == p.lower(),
    "regex": lambda v, p: isinstance(v, str) and re.search(p, v) is not None,
    "inside": lambda v, p: v in p,
    "startswith": lambda v, p: isinstance(v, str) and v.startswith(p),
    "matchwildcard": lambda v, p: isinstance(v, str) and fnmatch.fnmatch(v, p),
    "greaterthan": lambda v, p: v is not None and v > p,
    "icontains": lambda v, p: isinstance(v, str) and p.lower() in v.lower(),
    "exists": lambda v, p: v is not None,
}


def lookup(payload, path):
    at = payload
    for word in path.split("."):
        if not isinstance(at, dict) or word not in at:
            return None
        at = at[word]
    return at


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    env = jinja2.Environment()
    rules = [rule(i) for i in range(1000)]
    for r in rules:
        r["templates"] = {k: env.from_string(v) if isinstance(v, str) else v for k, v in r["input"].items()}
    payload = {"name": "alerts", "body": {"host": "web7", "severity": "low", "used": 5, "message": "disk 7 at 91%"}}
    params = {"name": "alerts"}

    def one_pass():
        matched = 0
        for r in rules:
            kind, wants = r["trigger"]
            if kind != "wasmflow.webhook" or any(params.get(k) != v for k, v in wants.items()):
                continue
            if all(OPS[op](lookup(payload, path), p) for path, op, p in r["criteria"]):
                {k: t.render(trigger=payload) if hasattr(t, "render") else t for k, t in r["templates"].items()}
                matched += 1
        return matched

    assert one_pass() == 100, one_pass()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - t)
    print(f"python (st2's way): one instance against 1000 rules: median {statistics.median(times) * 1e6:.0f} µs over {rounds} rounds")


if __name__ == "__main__":
    main()
