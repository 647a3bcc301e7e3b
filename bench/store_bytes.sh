#!/usr/bin/env bash
# Bytes on disk per execution, and after purging them: add.wat x200 and
# vm.clone x20 (actions/vm.clone/build.sh first).
#   bench/store_bytes.sh target/release/wasmflow now
set -uo pipefail
cd "$(dirname "$0")/.."
W=$1; L=$2; export WASMFLOW_CACHE_DIR="${WASMFLOW_CACHE_DIR:-$PWD/target/test-component-cache}"
B="$(mktemp -d)"; mkdir -p $B/tpl $B/disks
qemu-img create -q -f qcow2 $B/tpl/base.qcow2 32M
du_store() { du -sb --exclude=wasmflow.reserve $1/store | cut -f1; }
H=$B/h-add; for i in $(seq 1 200); do WASMFLOW_HOME=$H $W run tests/fixtures/wat/add.wat -p a=1 -p b=$i >/dev/null 2>&1 || { echo "$L add failed at $i"; break; }; done
a=$(du_store $H); echo "$L add.wat x200: $a bytes, $((a/200)) per execution"
WASMFLOW_HOME=$H $W execution purge --before 0s >/dev/null 2>&1 && echo "$L add.wat after purge: $(du_store $H) bytes"
H=$B/h-vm; for i in $(seq 1 20); do
  echo "{\"spec\":{\"source\":\"$B/tpl/base.qcow2\",\"name\":\"vm$i\",\"dir\":\"$B/disks\",\"cpus\":2,\"memory-mb\":2048,\"linked\":true}}" > $B/spec.json
  WASMFLOW_HOME=$H $W run actions/vm.clone/vm.clone.wasm --input $B/spec.json --allow-exec qemu-img --allow-read $B/tpl --allow-write $B/disks >/dev/null 2>$B/err || { echo "$L vm.clone failed at $i: $(tail -1 $B/err)"; break; }; done
v=$(du_store $H); echo "$L vm.clone x20: $v bytes (component blob $(stat -c %s actions/vm.clone/vm.clone.wasm) of it)"
WASMFLOW_HOME=$H $W execution purge --before 0s >/dev/null 2>&1 && echo "$L vm.clone after purge: $(du_store $H) bytes"
