#!/usr/bin/env bash
# Build the built-in `core` pack's actions (host/core/actions/NAME: app.c and
# wit/world.wit, in C) with `wasmflow build`, run each one's test cases, and
# put the components in OUT (default: host/core/components, what wasmflow
# embeds). The build is reproducible: the same sources, SDK, WIT and tools
# give the same bytes, which a test checks against the embedded ones.
#   scripts/build-core.sh [OUT]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$root/host/core/components}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
for src in "$root"/host/core/actions/*/; do
  name="$(basename "$src")"
  dir="$work/$name"
  mkdir -p "$dir/wit/deps/action"
  cp "$src/app.c" "$root/sdk/c/wasmflow.c" "$root/sdk/c/wasmflow.h" "$dir/"
  cp -r "$src/wit/." "$dir/wit/"
  cp "$root/wit/action.wit" "$dir/wit/deps/action/"
  if [ -d "$src/tests" ]; then cp -r "$src/tests" "$dir/"; fi
  "$root/scripts/wasmflow-build.sh" "$dir" >/dev/null
  WASMFLOW_HOME="$work/home" "${WASMFLOW:-$root/target/debug/wasmflow}" test "$dir" >/dev/null
  cp "$dir/$name.wasm" "$out/$name.wasm"
  echo "core.$name: $(sha256sum "$out/$name.wasm" | cut -d' ' -f1)"
done
