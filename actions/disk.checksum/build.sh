#!/usr/bin/env bash
# Build disk.checksum.wasm from app.c with `wasmflow build` (Zig, from
# `pip install ziglang`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../../scripts/wasmflow-build.sh" "$here"
