"""wasmflow's Python SDK: typed helpers over the `wasmflow:action` imports.

Every wasmflow world includes `wasmflow:action/imports`, so the bindings
componentize-py generates for any action have the modules used here. The
helpers only make the common things short and hard to get wrong:

    import wasmflow_action as wf

    wf.info(f"cloning {spec.source}")
    out = wf.run("qemu-img", ["info", spec.source])   # raises an action error on failure
    raise wf.fail("invalid-spec", "cpus must be at least 1", field="cpus")

`wasmflow new --lang python NAME` puts this file beside `app.py`.
"""

import json
from typing import List, Optional

from componentize_py_types import Err
from wit_world.imports import log as _log
from wit_world.imports import process as _process
from wit_world.imports.log import Level
from wit_world.imports.types import Error

__all__ = ["debug", "info", "warn", "error", "progress", "fail", "run", "Output", "Level"]

Output = _process.Output


def debug(message: str) -> None:
    _log.write(Level.DEBUG, message)


def info(message: str) -> None:
    _log.write(Level.INFO, message)


def warn(message: str) -> None:
    _log.write(Level.WARN, message)


def error(message: str) -> None:
    _log.write(Level.ERROR, message)


def progress(done: int, total: int, message: str = "") -> None:
    """Report progress: `done` of `total` units."""
    _log.progress(done, total, message)


def fail(code: str, message: str, retryable: bool = False, **details) -> Err:
    """The action's `err` case, to `raise`: a stable code, a sentence for the
    operator, whether a retry may help, and structured details (as JSON)."""
    return Err(Error(code, message, retryable, json.dumps(details) if details else None))


def run(program: str, args: List[str], stdin: Optional[bytes] = None, check: bool = True) -> Output:
    """Run a granted host program (`--allow-exec PROGRAM`) and wait for it.

    A program that is not granted, not installed, or cannot start raises
    `fail("PROGRAM-denied" | "-not-found" | "-failed")`; with `check`, a
    non-zero exit raises `fail("PROGRAM-exit")` carrying its stderr.
    """
    try:
        out = _process.run(program, list(args), stdin)
    except Err as e:
        reason = e.value
        kind = type(reason).__name__.split("_")[-1].lower().replace("notfound", "not-found")
        raise fail(f"{program}-{kind}", f"cannot run {program}: {reason.value}", retryable=kind == "failed")
    if check and out.status != 0:
        stderr = out.stderr.decode("utf-8", "replace").strip()
        raise fail(f"{program}-exit", f"{program} exited with status {out.status}: {stderr}", args=list(args))
    return out
