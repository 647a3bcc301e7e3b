#!/usr/bin/env bash
# Build vm.clone.wasm from app.py with componentize-py.
set -euo pipefail
cd "$(dirname "$0")"
componentize_py=../../scripts/componentize-py
"$componentize_py" -d wit -w examples:vm/clone@1.0.0 componentize app -o vm.clone.wasm
