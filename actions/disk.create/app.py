"""disk.create: create an empty qcow2 data disk with `qemu-img create`.

The disk is created by `qemu-img`, run through `wasmflow:action/process`:
the operator allows it with `--allow-exec qemu-img`.
"""

import json
import re

import wit_world
from wit_world import Disk, DiskSpec
from wit_world.imports import log, process
from wit_world.imports.log import Level
from wit_world.imports.types import Error
from componentize_py_types import Err

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def fail(code: str, message: str, **details) -> Err:
    return Err(Error(code, message, False, json.dumps(details) if details else None))


def qemu_img(*args: str) -> process.Output:
    try:
        out = process.run("qemu-img", list(args), None)
    except Err as e:
        kind = type(e.value).__name__.split("_")[-1].lower()
        raise fail(f"qemu-img-{kind}", f"cannot run qemu-img: {e.value.value}")
    if out.status != 0:
        stderr = out.stderr.decode("utf-8", "replace").strip()
        raise fail("qemu-img-failed", f"qemu-img {args[0]} exited with status {out.status}: {stderr}", args=list(args))
    return out


class WitWorld(wit_world.WitWorld):
    def run(self, spec: DiskSpec) -> Disk:
        if not NAME.match(spec.name):
            raise fail("invalid-spec", f"name {spec.name!r} must be lowercase letters, digits and '-'", field="name")
        if not 1 <= spec.size_gb <= 65536:
            raise fail("invalid-spec", f"size-gb must be between 1 and 65536, got {spec.size_gb}", field="size-gb")
        path = f"{spec.dir.rstrip('/')}/{spec.name}.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", path, f"{spec.size_gb}G")
        info = json.loads(qemu_img("info", "--output", "json", path).stdout)
        size = int(info["virtual-size"])
        log.write(Level.INFO, f"created {path}: {size} bytes")
        return Disk(path, size)
