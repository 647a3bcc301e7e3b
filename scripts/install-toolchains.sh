#!/usr/bin/env bash
# Install what building and testing wasmflow needs beyond cargo:
# qemu-img (the example actions' host program), Debian's docker-registry
# and htpasswd (the real OCI registry the tests push to; ab, beside
# htpasswd, loads the server), Debian's Chromium (the web UI's browser
# test drives it with playwright-core; no browser download),
# componentize-py, componentize-js, Zig (the `ziglang` wheel: it builds
# the C, C++ and Zig actions), Debian's PostgreSQL server (the tests
# start a private cluster of their own; no system cluster is made). TLS is
# rustls: no OpenSSL headers.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
missing=()
command -v qemu-img >/dev/null || missing+=(qemu-utils)
command -v docker-registry >/dev/null || missing+=(docker-registry)
{ command -v htpasswd && command -v ab; } >/dev/null || missing+=(apache2-utils)
command -v chromium >/dev/null || missing+=(chromium chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The package would create and start a system-wide cluster on 5432:
  # the tests need only the server binaries.
  $sudo mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.d/wasmflow.conf >/dev/null
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
python3 -m pip install --quiet --disable-pip-version-check componentize-py==0.25.1 ziglang==0.17.1
(cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
