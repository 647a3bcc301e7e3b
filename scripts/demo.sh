#!/usr/bin/env bash
# The bundled example, end to end on a fresh machine: build wasmflow and the
# example actions from source, clone a qcow2 template, show the record,
# replay it; then provision a VM with the vm-provision workflow.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

scripts/install-toolchains.sh
cargo build --release --locked
export WASMFLOW="$root/target/release/wasmflow"  # disk.checksum (C) builds with it
for a in vm.clone vm.cloud-init disk.create disk.checksum; do actions/$a/build.sh; done

work="$(mktemp -d)"
export WASMFLOW_HOME="$work/home"
mkdir -p "$work/templates" "$work/disks"
qemu-img create -q -f qcow2 "$work/templates/debian-12.qcow2" 2G
cat > "$work/spec.json" <<JSON
{ "spec": { "source": "$work/templates/debian-12.qcow2", "name": "web01",
            "dir": "$work/disks", "cpus": 2, "memory-mb": 2048, "linked": true } }
JSON

wasmflow=target/release/wasmflow
set -x
$wasmflow inspect actions/vm.clone/vm.clone.wasm
# qemu-img runs confined to the grants: it reads the template, writes the disks.
$wasmflow run actions/vm.clone/vm.clone.wasm --input "$work/spec.json" --allow-exec qemu-img \
    --allow-read "$work/templates" --allow-write "$work/disks"
qemu-img info "$work/disks/web01.qcow2"
# The same run without the grant is denied inside the sandbox (exit 1):
$wasmflow run actions/vm.clone/vm.clone.wasm --input "$work/spec.json" -p spec.name=web02 || true
$wasmflow execution list
clone_id="$($wasmflow execution list -n 2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["id"])')"
$wasmflow execution get "$clone_id" --detail
# Replay it from what it recorded: qemu-img is not run again.
rm "$work/disks/web01.qcow2"
$wasmflow execution replay "$clone_id"
ls "$work/disks"

# The clone as a step of a workflow: checksum the template (a C action),
# clone, then the cloud-init seed and three data disks (in parallel), each
# step a recorded child execution.
mkdir -p "$work/vms"
qemu-img create -q -f qcow2 "$work/vms/template.qcow2" 2G
python3 - "$work" > "$work/provision.json" <<'PY'
import json, sys
work = sys.argv[1]
spec = json.load(open("workflows/vm-provision.example.json"))
spec.update(template=f"{work}/vms/template.qcow2", dir=f"{work}/vms")
print(json.dumps(spec))
PY
$wasmflow workflow validate workflows/vm-provision.yaml
$wasmflow run workflows/vm-provision.yaml --input "$work/provision.json" \
    --allow-write "$work/vms" --allow-exec qemu-img
wf_id="$($wasmflow execution list -n 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
$wasmflow execution get "$wf_id" --tree
ls "$work/vms"
