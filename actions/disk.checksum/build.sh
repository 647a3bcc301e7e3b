#!/usr/bin/env bash
# Build disk.checksum.wasm from app.c with `wasmflow build` (Zig, from
# `pip install ziglang`). WASMFLOW names the binary; by default the
# repository's own build, else `wasmflow` on PATH.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
wasmflow="${WASMFLOW:-}"
if [ -z "$wasmflow" ]; then
  for b in "$root/target/release/wasmflow" "$root/target/debug/wasmflow"; do
    if [ -x "$b" ] && { [ -z "$wasmflow" ] || [ "$b" -nt "$wasmflow" ]; }; then wasmflow="$b"; fi
  done
fi
exec "${wasmflow:-wasmflow}" build "$here"
