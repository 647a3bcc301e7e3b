#!/usr/bin/env bash
# Build vm.cloud-init.wasm from app.py with componentize-py.
set -euo pipefail
cd "$(dirname "$0")"
componentize_py=../../scripts/componentize-py
"$componentize_py" -d wit -w examples:cloudinit/seed@1.0.0 componentize app -o vm.cloud-init.wasm
