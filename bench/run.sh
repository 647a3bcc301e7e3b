#!/usr/bin/env bash
# wasmflow's benchmarks, with the peers measured in the same run.
#   bench/run.sh            whole-process comparison + criterion hot paths
#   N=50 bench/run.sh       more interleaved runs (and workflow repetitions)
# Installs the wasmtime CLI (same version as the embedded engine) into
# bench/out/tools the first time; that build takes several minutes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p bench/out
wasmtime_version=48.0.8
wasmtime="bench/out/tools/bin/wasmtime"
if ! "$wasmtime" --version 2>/dev/null | grep -q "$wasmtime_version"; then
  cargo install --locked --quiet wasmtime-cli --version "$wasmtime_version" --root bench/out/tools
fi
cargo build --release --locked --quiet
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== one action as a process"
python3 bench/process.py target/release/wasmflow "$wasmtime" tests/fixtures/wat/add.wat "${N:-30}"
echo "== workflow scheduler"
python3 bench/workflow.py target/release/wasmflow "${N:-30}"
echo "== hot paths (criterion)"
cargo bench -p wasmflow-runtime --bench runtime -- --noplot 2>&1 | grep -E "^[a-z].*|time:"
echo "== warm actions in process (on-demand vs pooling allocator)"
cargo bench -p wasmflow-runtime --bench warm 2>&1 | grep -vE "^ *(Compiling|Finished|Running)"
echo "== server under a bounded load"
python3 bench/server.py target/release/wasmflow "${SERVER_N:-20000}"
echo "== a with-items fan-out, by size"
python3 bench/fanout.py "${FAN:-1000 3000 10000}" target/release/wasmflow
echo "== one real action in C and in Python (disk.checksum)"
python3 bench/languages.py target/release/wasmflow "${N:-30}" 20
echo "== Python actions: one run, a 40-task chain (run and serve), first compiles"
python3 bench/python.py target/release/wasmflow "${N:-30}" 3
echo "== a with-items fan-out of a Python action through serve"
python3 bench/fanout_served.py target/release/wasmflow "${PY_FAN:-1000 10000}"
echo "== the event bus: rule matching (criterion, beside st2's way in Python), webhook -> rule -> action"
bash bench/rule_matching.sh
python3 bench/event_bus.py target/release/wasmflow "${BUS_N:-2000}" 4
