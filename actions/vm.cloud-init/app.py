"""vm.cloud-init: write a cloud-init NoCloud seed for one VM.

It only writes two files into a directory the operator granted
(`--allow-write DIR`); it runs nothing and reaches nothing else.
"""

import json
import os
import re

import wit_world
from wit_world import SeedFiles, SeedSpec
from wit_world.imports import log
from wit_world.imports.log import Level
from wit_world.imports.types import Error
from componentize_py_types import Err

HOSTNAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def fail(code: str, message: str, **details) -> Err:
    return Err(Error(code, message, False, json.dumps(details) if details else None))


def write(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise fail("write-failed", f"cannot write {path}: {e.strerror}", path=path)


class WitWorld(wit_world.WitWorld):
    def run(self, spec: SeedSpec) -> SeedFiles:
        if not HOSTNAME.match(spec.hostname):
            raise fail("invalid-spec", f"hostname {spec.hostname!r} must be lowercase letters, digits and '-'", field="hostname")
        if not USER.match(spec.user):
            raise fail("invalid-spec", f"user {spec.user!r} is not a valid login name", field="user")
        for key in spec.ssh_keys:
            if not key.startswith(("ssh-", "ecdsa-")):
                raise fail("invalid-spec", f"not an SSH public key: {key[:20]!r}", field="ssh-keys")
        meta = os.path.join(spec.dir, "meta-data")
        user = os.path.join(spec.dir, "user-data")
        write(meta, f"instance-id: {spec.hostname}\nlocal-hostname: {spec.hostname}\n")
        lines = ["#cloud-config", f"hostname: {spec.hostname}", "users:", f"  - name: {spec.user}",
                 "    sudo: ALL=(ALL) NOPASSWD:ALL", "    shell: /bin/bash"]
        if spec.ssh_keys:
            lines.append("    ssh_authorized_keys:")
            lines += [f"      - {k}" for k in spec.ssh_keys]
        if spec.packages:
            lines.append("packages:")
            lines += [f"  - {p}" for p in spec.packages]
        write(user, "\n".join(lines) + "\n")
        log.write(Level.INFO, f"wrote {meta} and {user}")
        return SeedFiles(meta, user)
