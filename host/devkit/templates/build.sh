#!/bin/sh
# Build {{name}}.wasm with the right toolchain (same as `wasmflow build`).
exec wasmflow build "$(dirname "$0")"
