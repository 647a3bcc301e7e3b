"""vm.clone: create a VM disk as a clone of a qcow2 template.

Everything it does to the host goes through `qemu-img`, run via the
`wasmflow:action/process` interface, so the operator decides with
`--allow-exec qemu-img` whether this action may touch disks at all.
"""

import json
import re

import wit_world
from wit_world import CloneSpec, Vm
from wit_world.imports import log, process
from wit_world.imports.log import Level
from wit_world.imports.types import Error
from componentize_py_types import Err

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def fail(code: str, message: str, retryable: bool = False, **details) -> Err:
    return Err(Error(code, message, retryable, json.dumps(details) if details else None))


def qemu_img(*args: str) -> process.Output:
    """Run qemu-img; turn a denial or a non-zero exit into an action error."""
    try:
        out = process.run("qemu-img", list(args), None)
    except Err as e:
        reason = e.value
        kind = type(reason).__name__.split("_")[-1].lower()
        raise fail(f"qemu-img-{kind}", f"cannot run qemu-img: {reason.value}")
    if out.status != 0:
        stderr = out.stderr.decode("utf-8", "replace").strip()
        raise fail(
            "qemu-img-failed",
            f"qemu-img {args[0]} exited with status {out.status}: {stderr}",
            args=list(args),
        )
    return out


def check(spec: CloneSpec) -> None:
    if not NAME.match(spec.name):
        raise fail("invalid-spec", f"name {spec.name!r} must be lowercase letters, digits and '-'", field="name")
    if not spec.source.endswith(".qcow2"):
        raise fail("invalid-spec", f"source {spec.source!r} is not a .qcow2 template", field="source")
    if not spec.dir:
        raise fail("invalid-spec", "dir must not be empty", field="dir")
    if not 1 <= spec.cpus <= 256:
        raise fail("invalid-spec", f"cpus must be between 1 and 256, got {spec.cpus}", field="cpus")
    if spec.memory_mb < 128:
        raise fail("invalid-spec", f"memory-mb must be at least 128, got {spec.memory_mb}", field="memory-mb")


class WitWorld(wit_world.WitWorld):
    def run(self, spec: CloneSpec) -> Vm:
        log.progress(0, 3, "checking spec")
        check(spec)
        disk = f"{spec.dir.rstrip('/')}/{spec.name}.qcow2"
        log.write(Level.INFO, f"cloning {spec.source} -> {disk} (linked={spec.linked})")

        log.progress(1, 3, "creating disk")
        if spec.linked:
            qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", spec.source, disk)
        else:
            qemu_img("convert", "-q", "-O", "qcow2", spec.source, disk)

        log.progress(2, 3, "reading disk size")
        info = json.loads(qemu_img("info", "--output", "json", disk).stdout)
        size = int(info["virtual-size"])
        log.write(Level.INFO, f"created {disk}: {size} bytes, {spec.cpus} vCPU, {spec.memory_mb} MiB")
        log.progress(3, 3, "done")
        return Vm(spec.name, disk, size)
