"""Keeping every read of a plate inside the server's plate roots.

A server offers plates only under its configured roots, but a plate folder is
written by users: a TIFF, a chunk file or a whole group may be a symlink, and
OME-Zarr metadata names paths. Rules:

- A :class:`Confinement` holds the real paths of the roots. It is passed in
  (``open_plate(ref, confine)``), kept on the plate and in the execution plan,
  and travels with them to worker processes; there is no global state.
- Every file a reader opens goes through :meth:`Confinement.open`: the real
  path (after symlinks) must lie inside a root before the file is opened, the
  file is opened without following a last-moment symlink, and on Linux the file
  actually opened is checked again (``/proc/self/fd``), so swapping a link
  between check and open cannot escape. Symlinks that stay inside the roots
  are allowed.
- Anything else is refused with :class:`UnknownPlateError` naming the path, and
  a warning with the plate and the offending path is logged.
- Paths taken from metadata must be plain relative keys (:func:`relative_key`):
  no ``..``, ``.``, empty part, absolute path or backslash. This holds with or
  without a confinement, since valid OME-Zarr never names such a path.
- Without a confinement (local use on one's own files) files open as before.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

from openhcs_nb.errors import PlateError, UnknownPlateError

log = logging.getLogger(__name__)

_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_PROC_FD = Path("/proc/self/fd")


@dataclass(frozen=True)
class Confinement:
    """The real paths of the plate roots every plate file must lie under."""

    roots: tuple[str, ...]

    @classmethod
    def of(cls, roots: Iterable[str | os.PathLike[str]]) -> Confinement:
        """Resolve ``roots`` once (symlinks, ``..``) into a confinement."""
        return cls(tuple(os.path.realpath(os.fspath(r)) for r in roots))

    def contains(self, real: str) -> bool:
        """Whether the already-resolved path ``real`` lies inside a root."""
        return any(
            real == root or real.startswith(root.rstrip(os.sep) + os.sep)
            for root in self.roots
        )

    def check(self, path: str | os.PathLike[str], ref: str) -> str:
        """The real path of ``path``, when it lies inside a root.

        Raises
        ------
        UnknownPlateError
            ``path`` resolves outside every root.
        """
        real = os.path.realpath(path)
        if not self.contains(real):
            self.refuse(path, real, ref)
        return real

    def refuse(self, path: object, real: object, ref: str) -> NoReturn:
        """Log why and raise: the plate ``ref`` reaches outside the roots."""
        log.warning(
            "plate %s: refused %s, which resolves to %s outside the plate roots",
            ref,
            path,
            real,
        )
        raise UnknownPlateError(
            f"plate {ref!r}: {path} leads outside the server's plate roots; refused"
        )

    def open(self, path: str | os.PathLike[str], ref: str) -> BinaryIO:
        """Open ``path`` read-only (binary) after checking where it leads.

        Raises
        ------
        UnknownPlateError
            The path, or the file actually opened, lies outside the roots.
        PlateError
            It is not a regular file (a FIFO or device would block or worse).
        OSError
            It does not exist or cannot be read (``IsADirectoryError`` too).
        """
        real = self.check(path, ref)

        def opener(name: str, flags: int) -> int:
            try:
                return os.open(name, flags | _FLAGS)
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # became a link after the check
                    self.refuse(path, f"{name} (now a link)", ref)
                raise

        handle = open(real, "rb", opener=opener)  # noqa: SIM115 - returned open
        try:
            fd = handle.fileno()
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
            if not stat.S_ISREG(mode):
                raise PlateError(f"plate {ref!r}: {path} is not a regular file")
            if _PROC_FD.is_dir():
                opened = os.readlink(_PROC_FD / str(fd))
                if not self.contains(opened):
                    self.refuse(path, opened, ref)
            os.set_blocking(fd, True)
        except BaseException:
            handle.close()
            raise
        return handle

    def read_bytes(self, path: str | os.PathLike[str], ref: str) -> bytes:
        """The whole file at ``path``, opened through :meth:`open`."""
        with self.open(path, ref) as handle:
            return handle.read()


def open_file(
    confine: Confinement | None, path: str | os.PathLike[str], ref: str
) -> BinaryIO:
    """``confine.open(path)``, or a plain binary open when unconfined."""
    if confine is None:
        return open(path, "rb")
    return confine.open(path, ref)


def read_bytes(
    confine: Confinement | None, path: str | os.PathLike[str], ref: str
) -> bytes:
    """The file's bytes, read through the confinement when there is one."""
    with open_file(confine, path, ref) as handle:
        return handle.read()


def relative_key(text: str, where: str) -> str:
    """``text`` as a relative path inside the plate (a trailing ``/`` dropped).

    Raises
    ------
    UnknownPlateError
        The path is absolute or has an empty, ``.`` or ``..`` part, a
        backslash or a NUL: it could name something outside the plate.
    """
    key = text.rstrip("/")
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(p in ("", ".", "..") for p in parts)
    ):
        log.warning("%s: refused path %r, which may leave the plate", where, text)
        raise UnknownPlateError(
            f"{where}: path {text!r} is not a plain relative path inside the plate; "
            "refused"
        )
    return key
