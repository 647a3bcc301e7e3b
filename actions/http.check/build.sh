#!/usr/bin/env bash
# Build http.check.wasm from app.js with componentize-js (from the repo's node_modules).
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
"$root/node_modules/.bin/componentize-js" --wit wit --world-name check -o http.check.wasm app.js
