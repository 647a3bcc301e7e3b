#!/usr/bin/env bash
# The event bus's rule matching: one trigger instance against 1,000 rules
# of mixed operators, in wasmflow (criterion) and the same work the way
# StackStorm's rules engine does it in Python, in the same run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python3 -c "import jinja2" 2>/dev/null || python3 -m pip install --quiet jinja2
cargo bench -p wasmflow-events --bench matching -- --noplot 2>&1 | grep -E "^one instance|time:"
python3 bench/rule_matching.py "${N:-200}"
