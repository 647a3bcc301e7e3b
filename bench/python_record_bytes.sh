#!/bin/bash
# What one Python execution keeps: N runs of the `step` fixture (Python,
# componentize-py) in a fresh home; the store's growth per run (du, noisy
# at small N), and the last run's record and replay events as JSON, by
# event kind (from `execution export`).
#   bench/python_record_bytes.sh WASMFLOW [N]
set -e
W=$1; N=${2:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
H=$(mktemp -d); export WASMFLOW_HOME=$H WASMFLOW_CACHE_DIR=/tmp/pybytes-cache
$W run $ROOT/tests/fixtures/step/step.wasm -p req.name=x -p req.value=1 >/dev/null 2>&1
a=$(du -sb $H/store | cut -f1)
for i in $(seq $N); do $W run $ROOT/tests/fixtures/step/step.wasm -p req.name=x -p req.value=1 >/dev/null 2>&1; done
b=$(du -sb $H/store | cut -f1)
id=$($W execution list -n 1 --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['id'])")
echo "store bytes per execution: $(( (b - a) / N ))"
$W execution export $id | python3 -c "
import json,sys
b=json.load(sys.stdin)
print('record JSON bytes:', len(json.dumps(b.get('record'))), ' events JSON bytes:', len(json.dumps(b.get('events'))))
print('events by kind:', {k: sum(len(json.dumps(e)) for e in b['events'] if next(iter(e)) == k or e.get('kind')==k) for k in set((e.get('kind') or next(iter(e))) for e in b['events'])})
"
rm -rf $H
