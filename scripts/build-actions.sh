#!/usr/bin/env bash
# Build every action and test fixture that has a build.sh, from source.
# Needs componentize-py and ziglang (pip) and componentize-js (npm ci at
# the repo root); scripts/install-toolchains.sh installs them. A C action's
# build.sh runs `wasmflow build`: WASMFLOW names the binary (by default the
# newest of target/release and target/debug, else `wasmflow` on PATH).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
for script in "$root"/actions/*/build.sh "$root"/tests/fixtures/*/build.sh; do
  dir="$(dirname "$script")"
  echo "building ${dir#"$root"/}" >&2
  "$script"
done
