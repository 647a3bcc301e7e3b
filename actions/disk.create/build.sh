#!/usr/bin/env bash
# Build disk.create.wasm from app.py with componentize-py.
set -euo pipefail
cd "$(dirname "$0")"
componentize_py=../../scripts/componentize-py
"$componentize_py" -d wit -w examples:disk/create@1.0.0 componentize app -o disk.create.wasm
