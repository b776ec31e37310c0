"""The program that runs one custom function call inside the sandbox.

It is started by :mod:`openhcs_nb.execution.sandbox` under bubblewrap, with
only the Python install and this call's work folder visible, and imports
nothing but the standard library and NumPy (``openhcs_nb`` is not even on its
filesystem). Files in the work folder are the whole interface: ``code.py``
(the function's imports and ``def``), ``call.json`` (its name and keyword
arguments) and ``in.npy`` in; ``out.npy``, ``side.npz`` and ``result.json``
out. Arrays are written without pickle, so the parent never unpickles bytes
from the sandbox.

When the sandbox starts as root (a server run as root, without a user
namespace) it keeps only CAP_SETUID/CAP_SETGID, and the first thing done here
is to become ``nobody``, which drops those too and makes RLIMIT_NPROC count.
An audit hook then refuses to start programs (``os.system``, ``subprocess``):
a clear error for the user; the namespaces and limits are the boundary.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

NOBODY = 65534
_BLOCKED = (
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "subprocess.Popen",
    "pty.spawn",
)


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if event.startswith(_BLOCKED):
        raise PermissionError(f"the sandbox does not start programs ({event})")


def _become_nobody() -> None:
    if os.getuid() == 0:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)


def _where(exc: BaseException) -> int | None:
    """The last line of the custom code the error passed through."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<custom function>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _run(np: Any, me: int) -> dict[str, Any]:
    with open("call.json") as handle:
        call = json.load(handle)
    with open("code.py") as handle:
        code = handle.read()
    namespace = {"__name__": "openhcs_custom"}
    exec(compile(code, "<custom function>", "exec"), namespace)
    fn = namespace[call["name"]]
    stack = np.load("in.npy", allow_pickle=False)
    out = fn(stack, **call["kwargs"])
    if os.getpid() != me:  # a process the function forked: only we answer
        os._exit(1)
    side = {}
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
        out, side = out
    out = np.asarray(out)
    if out.dtype == object or out.ndim != 3:
        raise TypeError(
            f"returned an array of shape {out.shape} and dtype {out.dtype}; "
            "expected an (n, y, x) array of numbers"
        )
    np.save("out.npy", out, allow_pickle=False)
    flat = {}
    for output, table in side.items():
        columns = table.items() if isinstance(table, dict) else [("", table)]
        for column, values in columns:
            flat[f"{output}/{column}"] = np.asarray(values)
    if flat:
        np.savez("side.npz", **flat)
    return {"ok": True, "side": bool(flat)}


def main() -> None:
    """Run the call in ``call.json`` and write ``result.json``."""
    _become_nobody()
    sys.addaudithook(_guard)
    me = os.getpid()
    try:
        import numpy as np

        result = _run(np, me)
    except BaseException as exc:  # everything the function does is reported
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "line": _where(exc),
        }
    if os.getpid() != me:  # a process the function forked: only we answer
        os._exit(1)
    with open("result.json", "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
