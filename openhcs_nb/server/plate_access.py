"""Which plates a server offers, and opening them safely.

A client names a plate by reference: ``"demo"`` (when the demo is on), a name
relative to one of the configured plate roots (``"screen1/plate7.ome.zarr"``),
or an absolute path inside a root. Anything that resolves outside every root,
including through ``..`` or symlinks, is refused as unknown, so a client can
never make the server read an arbitrary path.

The same holds inside a plate: plates are opened under a :class:`Confinement`
of the roots, so a symlinked file or a metadata path that leads outside them
is refused as unknown too, here and in the worker processes that reopen it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from openhcs_nb.errors import UnknownPlateError
from openhcs_nb.plates import SOURCES, Confinement, open_plate
from openhcs_nb.plates.model import Plate

_MAX_LISTED = 1000


class PlateAccess:
    """Resolves plate references against the allowed roots and caches plates."""

    def __init__(self, roots: Sequence[Path], *, demo: bool = False):
        self.roots = tuple(Path(r).resolve() for r in roots)
        self.confine = Confinement.of(self.roots)
        self.demo = demo
        self._cache: dict[str, Plate] = {}
        self._lock = threading.Lock()

    def list(self) -> list[str]:
        """Plate references under the roots (two levels deep), plus the demo."""
        refs = ["demo"] if self.demo else []
        for root in self.roots:
            if not root.is_dir():
                continue
            for path in sorted(_candidates(root, self.confine)):
                if _is_plate(path, self.confine):
                    refs.append(str(path.relative_to(root)))
                if len(refs) >= _MAX_LISTED:
                    return refs
        return refs

    def resolve(self, ref: str) -> str:
        """The reference ``open_plate`` understands, after the root check.

        Raises
        ------
        UnknownPlateError
            The reference is not offered by this server.
        """
        if ref == "demo":
            if self.demo:
                return "demo"
            raise UnknownPlateError("this server does not offer the demo plate")
        if ref.startswith("omero:"):
            raise UnknownPlateError(
                f"plate {ref!r}: this server is not connected to OMERO"
            )
        candidate = Path(ref)
        for root in self.roots:
            path = (
                candidate if candidate.is_absolute() else root / candidate
            ).resolve()
            if path.is_relative_to(root) and path.exists():
                return str(path)
        raise UnknownPlateError(
            f"unknown plate {ref!r}: not found under the server's plate roots "
            "(list them with Connection.plates())"
        )

    def open(self, ref: str) -> Plate:
        """Open (once) and return the plate ``ref`` names.

        Raises
        ------
        UnknownPlateError, PlateError
            The reference is not offered, or the plate cannot be read.
        """
        resolved = self.resolve(ref)
        with self._lock:
            plate = self._cache.get(resolved)
        if plate is None:
            plate = open_plate(resolved, self.confine)
            with self._lock:
                self._cache[resolved] = plate
        return plate


def _candidates(root: Path, confine: Confinement) -> list[Path]:
    out = []
    for child in root.iterdir():
        if child.is_dir() and not child.name.startswith("."):
            out.append(child)
            if not _is_plate(child, confine):
                out.extend(c for c in child.iterdir() if c.is_dir())
    return out


def _is_plate(path: Path, confine: Confinement) -> bool:
    """Whether a source reads ``path``; one that leads outside the roots is not."""
    try:
        return confine.contains(os.path.realpath(path)) and any(
            detect(path, confine) for detect, _ in SOURCES.values()
        )
    except UnknownPlateError:
        return False
