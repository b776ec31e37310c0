"""The plate model every source maps onto.

A plate is a grid of wells (``"A01"``: row letter(s) then a two-digit column);
each well holds ``fields`` images (sites, numbered from 0), each image has
channels (by name), z-planes and timepoints of one pixel type and size.

Sources subclass :class:`Plate` and implement :meth:`Plate.read_image`. A plate
is a small description plus a ``ref`` string, so it pickles cheaply and a worker
process can reopen it with ``open_plate(plate.ref)``: workers are sent
references to pixels, never pixels. A plate opened with a confinement (a
server's plate roots) keeps it and pickles with it, so a worker reopens it
under the same confinement.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from openhcs_nb.errors import UnknownWellError

if TYPE_CHECKING:
    from openhcs_nb.plates._containment import Confinement

WELL_DIMS: tuple[str, ...] = ("site", "t", "channel", "z", "y", "x")
_WELL = re.compile(r"^([A-Z]{1,2})(\d{1,3})$")


def well_name(row: str, column: int) -> str:
    """``("B", 3) -> "B03"``, the spelling used everywhere in openhcs-nb."""
    return f"{row}{column:02d}"


def split_well(name: str) -> tuple[str, int]:
    """``"B03" -> ("B", 3)``; accepts ``B3`` and lower case too.

    Raises
    ------
    UnknownWellError
        The text is not a well name.
    """
    match = _WELL.match(name.strip().upper())
    if not match:
        raise UnknownWellError(f"{name!r} is not a well name (expected e.g. 'B03')")
    return match.group(1), int(match.group(2))


def row_letters(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA" (1536-well plates)."""
    if index < 26:
        return chr(ord("A") + index)
    return chr(ord("A") + index // 26 - 1) + chr(ord("A") + index % 26)


@dataclass(frozen=True)
class PlateLayout:
    """Everything about a plate that is known without reading a pixel."""

    name: str
    rows: tuple[str, ...]
    columns: tuple[int, ...]
    wells: tuple[str, ...]
    fields: int
    channels: tuple[str, ...]
    z: int
    t: int
    dtype: str
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channel names must be unique: {self.channels}")


@dataclass(frozen=True)
class WellImages:
    """One well's pixels with named axes ``(site, t, channel, z, y, x)``."""

    well: str
    data: np.ndarray
    channels: tuple[str, ...]
    dims: tuple[str, ...] = WELL_DIMS

    def sel(
        self, site: int = 0, channel: int | str = 0, z: int = 0, t: int = 0
    ) -> np.ndarray:
        """One plane, picking the channel by name or index."""
        c = self.channels.index(channel) if isinstance(channel, str) else channel
        return self.data[site, t, c, z]


class Plate(ABC):
    """A readable plate; subclasses supply :meth:`read_image`.

    ``confine`` is the confinement the plate was opened under (None locally);
    readers open every file through it.
    """

    confine: Confinement | None = None

    def __init__(
        self, ref: str, layout: PlateLayout, confine: Confinement | None = None
    ):
        self.ref = ref
        self.layout = layout
        self.confine = confine

    def __repr__(self) -> str:
        lay = self.layout
        return (
            f"<{type(self).__name__} {lay.name!r}: {len(lay.wells)} wells x "
            f"{lay.fields} fields x {len(lay.channels)} channels, "
            f"{lay.shape[0]}x{lay.shape[1]} {lay.dtype}>"
        )

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        from openhcs_nb.plates import open_plate

        if self.confine is None:
            return open_plate, (self.ref,)
        return open_plate, (self.ref, self.confine)

    @property
    def name(self) -> str:
        """The plate's display name."""
        return self.layout.name

    @property
    def wells(self) -> tuple[str, ...]:
        """Wells that hold images, row-major, like ``("A01", "A02", ...)``."""
        return self.layout.wells

    @property
    def fields(self) -> tuple[int, ...]:
        """Field (site) indices, from 0."""
        return tuple(range(self.layout.fields))

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names, in acquisition order."""
        return self.layout.channels

    @property
    def shape(self) -> tuple[int, int]:
        """``(y, x)`` of every image plane."""
        return self.layout.shape

    @property
    def dtype(self) -> np.dtype:
        """Pixel type of every image plane."""
        return np.dtype(self.layout.dtype)

    def check_well(self, well: str) -> str:
        """The canonical spelling of ``well``.

        Raises
        ------
        UnknownWellError
            The plate has no such well (the message lists a few that exist).
        """
        row, col = split_well(well)
        name = well_name(row, col)
        if name not in self.layout.wells:
            sample = ", ".join(self.layout.wells[:4])
            raise UnknownWellError(
                f"plate {self.name!r} has no well {well!r} (wells: {sample}, ...)"
            )
        return name

    def pixel_path(self, well: str, site: int) -> str:
        """How this field's pixels are read.

        Sources with several paths (OMERO) say which one they chose, so runs
        can record it.
        """
        return "file"

    @abstractmethod
    def read_image(
        self, well: str, site: int, channel: int, z: int = 0, t: int = 0
    ) -> np.ndarray:
        """One ``(y, x)`` plane; ``channel`` is an index."""

    def read_well(self, well: str) -> WellImages:
        """All planes of ``well`` as one array ``(site, t, channel, z, y, x)``."""
        well = self.check_well(well)
        lay = self.layout
        out = np.empty(
            (lay.fields, lay.t, len(lay.channels), lay.z, *lay.shape), dtype=self.dtype
        )
        for site in range(lay.fields):
            for t in range(lay.t):
                for c in range(len(lay.channels)):
                    for z in range(lay.z):
                        out[site, t, c, z] = self.read_image(well, site, c, z, t)
        return WellImages(well, out, lay.channels)
