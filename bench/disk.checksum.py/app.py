"""disk.checksum in Python: the twin of actions/disk.checksum (C), with the
same world, so bench/languages.py compares the two languages on one action."""

import hashlib
import os

import wit_world
from componentize_py_types import Err
from wit_world import Checksum, FileSpec
from wit_world.imports import log
from wit_world.imports.log import Level
from wit_world.imports.types import Error

MIB = 1 << 20


def fail(code: str, message: str, retryable: bool = False) -> Err:
    return Err(Error(code, message, retryable, None))


class WitWorld(wit_world.WitWorld):
    def run(self, spec: FileSpec) -> Checksum:
        if not spec.path:
            raise fail("invalid-spec", "path must not be empty")
        try:
            f = open(spec.path, "rb")
        except FileNotFoundError:
            raise fail("not-found", f"cannot open {spec.path}: no such file")
        except PermissionError:
            raise fail("denied", f"cannot open {spec.path}: its directory is not granted (--allow-read DIR)")
        h, done, every = hashlib.sha256(), 0, spec.progress_mib * MIB
        with f:
            total = os.fstat(f.fileno()).st_size
            next_report = every
            while chunk := f.read(MIB):
                h.update(chunk)
                done += len(chunk)
                if every and done >= next_report:
                    log.progress(done, max(total, done), f"{done // MIB} MiB read")
                    next_report += every
        digest = h.hexdigest()
        log.progress(done, done, "done")
        if spec.expect is not None and spec.expect.lower() != digest:
            raise fail("checksum-mismatch", f"{spec.path} has SHA-256 {digest}, expected {spec.expect}")
        log.write(Level.INFO, f"{spec.path}: {done} bytes, sha256 {digest}")
        return Checksum(spec.path, digest, done)
