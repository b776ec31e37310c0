"""Plate sources, registered by hand in :data:`SOURCES`.

``open_plate(ref)`` tries each source's ``detect`` on the reference in order and
opens it with the first that claims it. A reference is a path (an OME-Zarr plate
or an ImageXpress folder) or, with the omero extra, ``omero:<plate id>``.

``open_plate(ref, confine)`` opens a file plate under a :class:`Confinement`
(a server's plate roots): the plate and every file and metadata path it reads
must lie inside the roots, or it is refused as unknown. The plate keeps the
confinement, and so does a copy pickled to a worker process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from openhcs_nb.errors import UnknownPlateError
from openhcs_nb.plates import imagexpress, ome_zarr
from openhcs_nb.plates._containment import Confinement
from openhcs_nb.plates.model import (
    Plate,
    PlateLayout,
    WellImages,
    split_well,
    well_name,
)

# name -> (detect(path, confine) -> bool, open(path, confine) -> Plate); in order.
Detect = Callable[[Path, Confinement | None], bool]
Opener = Callable[[Path, Confinement | None], Plate]
SOURCES: dict[str, tuple[Detect, Opener]] = {
    "ome-zarr": (ome_zarr.detect, ome_zarr.open_ome_zarr_plate),
    "imagexpress": (imagexpress.detect, imagexpress.open_imagexpress_plate),
}


def open_plate(ref: str | Path | Plate, confine: Confinement | None = None) -> Plate:
    """Open a plate from a reference string or path.

    ``confine`` applies to file plates; ``"demo"`` and ``omero:`` references
    are not files under the roots and ignore it.

    Raises
    ------
    UnknownPlateError
        Nothing exists at ``ref``, no source recognises it, or with ``confine``
        the plate or a file it reads leads outside the plate roots.
    """
    if isinstance(ref, Plate):
        return ref
    text = str(ref)
    if text == "demo":
        from openhcs_nb.plates.demo import demo_plate

        return demo_plate()
    if text.startswith("omero:"):
        from openhcs_nb.plates.omero import open_omero_plate

        return open_omero_plate(text)
    path = Path(text).expanduser()
    if not path.exists():
        raise UnknownPlateError(f"no plate at {text!r}: the path does not exist")
    if confine is not None:
        confine.check(path, text)
    for detect, opener in SOURCES.values():
        if detect(path, confine):
            return opener(path, confine)
    raise UnknownPlateError(
        f"{text!r} is not a plate this version can read "
        f"(known sources: {', '.join(SOURCES)})"
    )


__all__ = [
    "SOURCES",
    "Confinement",
    "Plate",
    "PlateLayout",
    "WellImages",
    "open_plate",
    "split_well",
    "well_name",
]
