"""Running one call of a custom function in a bubblewrap sandbox.

Why bubblewrap: it is the maintained, audited tool (Flatpak's) that builds a
sandbox from Linux namespaces with a command line, so nothing here needs
privileges or a home-made ``unshare``/``pivot_root`` dance, and Debian ships
it as ``bubblewrap``. Each call gets:

* new network, IPC, PID and UTS namespaces (no network at all), a new session,
  and death with its parent worker;
* a filesystem of only the Python install and its site-packages (read-only),
  the shared libraries, ``/proc``, a minimal ``/dev``, and one writable work
  folder for this call; plates and results are not visible, because the
  worker reads the planes and passes them in;
* rlimits set before ``exec``: address space, CPU seconds, file size,
  processes; and a wall-time kill by the worker.

Planes go in and results come out as ``.npy`` files read with
``allow_pickle=False``; the worker never unpickles sandbox bytes. When
``bwrap`` is missing or cannot create namespaces, :func:`sandbox_problem`
says so and the trust policy refuses custom code; it never runs unsandboxed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from openhcs_nb.errors import ExecutionError

_CHILD = Path(__file__).with_name("_sandbox_child.py")
_NOBODY = 65534
_MIB = 1024 * 1024
_RESULT_MAX = 64 * 1024
_LIBS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib")


@dataclass(frozen=True)
class SandboxLimits:
    """What one call may use; the server's ``[trust]`` section sets them."""

    memory_mb: int = 2048
    cpu_s: int = 60
    wall_s: float = 120.0
    file_mb: int = 512
    processes: int = 16


def sandbox_problem(bwrap: str = "bwrap") -> str | None:
    """Why custom code cannot be sandboxed here, or ``None`` when it can."""
    path = shutil.which(bwrap)
    if path is None:
        return f"{bwrap} (Debian's bubblewrap) is not installed on the server"
    probe = [path, *_namespace_flags(), "--ro-bind", "/", "/", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not start: {exc}"
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        last = reason[-1] if reason else done.returncode
        return f"bwrap cannot create namespaces here ({last})"
    return None


def _namespace_flags() -> list[str]:
    if os.geteuid() == 0:
        # Root needs no user namespace; the child drops to nobody itself.
        return [
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
    return ["--unshare-all"]


@dataclass(frozen=True)
class Sandbox:
    """Runs ``fn(stack, **kwargs)`` from source in a fresh sandbox per call.

    Picklable (a worker receives it inside the pipeline). Raises
    :class:`~openhcs_nb.errors.ExecutionError` naming the function and the
    cause when the call fails, breaks a limit or returns something unusable:
    the well fails, the worker goes on.
    """

    limits: SandboxLimits = SandboxLimits()
    bwrap: str = "bwrap"

    def __call__(
        self, module: str, name: str, stack: np.ndarray, kwargs: dict[str, Any]
    ) -> Any:
        """Run one call; see the class docstring."""
        with tempfile.TemporaryDirectory(prefix="openhcs-sandbox-") as tmp:
            work = Path(tmp)
            (work / "code.py").write_text(module)
            (work / "call.json").write_text(
                json.dumps({"name": name, "kwargs": kwargs})
            )
            np.save(work / "in.npy", np.ascontiguousarray(stack), allow_pickle=False)
            if os.geteuid() == 0:
                # Root without DAC_OVERRIDE (dropped) still needs to enter it.
                for path in work.iterdir():
                    os.chown(path, _NOBODY, _NOBODY)
                    path.chmod(0o600)
                os.chown(work, _NOBODY, _NOBODY)
                work.chmod(0o711)
            with tempfile.TemporaryFile() as errors:
                rc = self._run(work, name, errors)
                errors.seek(max(0, errors.seek(0, os.SEEK_END) - 400))
                tail = errors.read().decode(errors="replace").strip()
            return self._collect(work, name, rc, tail)

    def _argv(self, work: Path) -> list[str]:
        ro: set[str] = {sys.prefix, sys.base_prefix, sys.exec_prefix}
        ro.add(str(Path(sys.executable).resolve().parent))
        ro.update(
            p
            for p in sys.path
            if p.startswith("/")
            and ("site-packages" in p or "dist-packages" in p)
            and Path(p).is_dir()
        )
        ro = {p for p in ro if not any(p != q and p.startswith(q + "/") for q in ro)}
        argv = [shutil.which(self.bwrap) or self.bwrap, "--die-with-parent"]
        argv += ["--new-session", *_namespace_flags(), "--cap-drop", "ALL"]
        if os.geteuid() == 0:
            argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        dests = [*sorted(ro), *_LIBS, "/sandbox/work", "/sandbox/child.py"]
        for directory in sorted({str(a) for d in dests for a in Path(d).parents}):
            if directory != "/" and not directory.startswith(_LIBS):
                argv += ["--perms", "0755", "--dir", directory]
        for lib in _LIBS:
            if os.path.islink(lib):
                argv += ["--symlink", os.readlink(lib), lib]
            elif os.path.isdir(lib) and lib not in ro:
                argv += ["--ro-bind", lib, lib]
        for path in sorted(ro, key=len):
            argv += ["--ro-bind", path, path]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        argv += ["--ro-bind", str(_CHILD), "/sandbox/child.py"]
        argv += ["--bind", str(work), "/sandbox/work", "--chdir", "/sandbox/work"]
        return [*argv, sys.executable, "-I", "/sandbox/child.py"]

    def _preexec(self) -> None:
        limits = self.limits
        os.umask(0o022)
        procs = limits.processes + (0 if os.geteuid() == 0 else _own_processes())
        for which, soft, hard in (
            (resource.RLIMIT_AS, limits.memory_mb * _MIB, limits.memory_mb * _MIB),
            (resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1),
            (resource.RLIMIT_FSIZE, limits.file_mb * _MIB, limits.file_mb * _MIB),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NPROC, procs, procs),
        ):
            _lower(which, soft, hard)

    def _run(self, work: Path, name: str, errors: Any) -> int:
        env = {
            "PATH": "/nonexistent",
            "HOME": "/sandbox/work",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        process = subprocess.Popen(
            self._argv(work),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            preexec_fn=self._preexec,  # noqa: PLW1509 - rlimits before exec
            start_new_session=True,
        )
        try:
            return process.wait(timeout=self.limits.wall_s)
        except subprocess.TimeoutExpired:
            raise ExecutionError(
                f"custom function {name} ran past the sandbox's wall-time limit "
                f"of {self.limits.wall_s:g} s and was stopped"
            ) from None
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def _collect(self, work: Path, name: str, rc: int, tail: str) -> Any:
        try:
            with _open_plain(work / "result.json", _RESULT_MAX) as handle:
                raw = handle.read()
        except OSError:
            last = tail.splitlines()[-1] if tail else ""
            said = f" ({last})" if last else ""
            raise ExecutionError(
                f"custom function {name} {self._death(rc)}{said}"
            ) from None
        try:
            result = json.loads(raw)
        except ValueError:
            raise ExecutionError(
                f"custom function {name} left an unreadable result in the sandbox"
            ) from None
        if not isinstance(result, dict) or not result.get("ok"):
            result = result if isinstance(result, dict) else {}
            line = result.get("line")
            at = f" (line {line} of its source)" if isinstance(line, int) else ""
            error = str(result.get("error", "unknown error"))[:2000]
            if error.startswith("MemoryError"):
                error += f" (the sandbox allows {self.limits.memory_mb} MiB)"
            raise ExecutionError(
                f"custom function {name} failed in the sandbox{at}: {error}"
            )
        limit = self.limits.file_mb * _MIB
        try:
            with _open_plain(work / "out.npy", limit) as handle:
                out = np.load(handle, allow_pickle=False)
            if not result.get("side"):
                return out
            side: dict[str, Any] = {}
            with (
                _open_plain(work / "side.npz", limit) as handle,
                np.load(handle, allow_pickle=False) as archive,
            ):
                for key in archive.files:
                    output, _, column = key.partition("/")
                    value = archive[key]
                    if column:
                        side.setdefault(output, {})[column] = value
                    else:
                        side[output] = value
        except (OSError, ValueError) as exc:
            raise ExecutionError(
                f"custom function {name} returned outputs that cannot be read: {exc}"
            ) from None
        return out, side

    def _death(self, rc: int) -> str:
        """Why the sandbox ended without a result, from its exit status."""
        sig = -rc if rc < 0 else rc - 128 if rc > 128 else 0
        if sig in (signal.SIGXCPU, signal.SIGKILL) and rc != 0:
            return (
                "was stopped by the sandbox's CPU-time limit of "
                f"{self.limits.cpu_s} s (or killed)"
            )
        if sig == signal.SIGXFSZ:
            return f"wrote more than the sandbox's {self.limits.file_mb} MiB file limit"
        return (
            f"ended without a result (exit status {rc}); it may have broken a "
            "sandbox limit"
        )


def _open_plain(path: Path, limit: int) -> BinaryIO:
    """A file the sandbox wrote, opened for reading, never through a link.

    The worker may run with more rights than the sandbox: a symlink planted
    as ``out.npy`` must not make it read a host file into the results.

    Raises
    ------
    OSError
        Missing, a link or not a regular file, or larger than ``limit``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    handle = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        handle.close()
        raise OSError(f"{path.name} is not a regular file within {limit} bytes")
    return handle


def _lower(which: int, soft: int, hard: int) -> None:
    """Set a limit, never above the worker's own (e.g. its memory cap)."""
    _, current = resource.getrlimit(which)
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def _own_processes() -> int:
    """How many processes this user already has (RLIMIT_NPROC counts them all)."""
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count
