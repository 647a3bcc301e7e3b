#!/usr/bin/env bash
# Build the action project in DIR with `wasmflow build`: the binary
# WASMFLOW names, else the repository's newest own build, else `wasmflow`
# on PATH. The build.sh of actions and fixtures built this way call it.
#   scripts/wasmflow-build.sh DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
wasmflow="${WASMFLOW:-}"
if [ -z "$wasmflow" ]; then
  for b in "$root/target/release/wasmflow" "$root/target/debug/wasmflow"; do
    if [ -x "$b" ] && { [ -z "$wasmflow" ] || [ "$b" -nt "$wasmflow" ]; }; then wasmflow="$b"; fi
  done
fi
exec "${wasmflow:-wasmflow}" build "$1"
