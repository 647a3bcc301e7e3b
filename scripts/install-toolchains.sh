#!/usr/bin/env bash
# Install what building and testing wasmflow needs beyond cargo:
# qemu-img (vm.clone's host program), componentize-py, componentize-js.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v qemu-img >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-utils
fi
python3 -m pip install --quiet --disable-pip-version-check componentize-py==0.25.1
(cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
