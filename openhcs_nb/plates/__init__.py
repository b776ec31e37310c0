"""Plate sources, registered by hand in :data:`SOURCES`.

``open_plate(ref)`` tries each source's ``detect`` on the reference in order and
opens it with the first that claims it. A reference is a path (an OME-Zarr plate
or an ImageXpress folder) or, with the omero extra, ``omero:<plate id>``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from openhcs_nb.errors import UnknownPlateError
from openhcs_nb.plates import imagexpress, ome_zarr
from openhcs_nb.plates.model import (
    Plate,
    PlateLayout,
    WellImages,
    split_well,
    well_name,
)

# name -> (detect(path) -> bool, open(path) -> Plate); order matters.
SOURCES: dict[str, tuple[Callable[[Path], bool], Callable[[Path], Plate]]] = {
    "ome-zarr": (ome_zarr.detect, ome_zarr.open_ome_zarr_plate),
    "imagexpress": (imagexpress.detect, imagexpress.open_imagexpress_plate),
}


def open_plate(ref: str | Path | Plate) -> Plate:
    """Open a plate from a reference string or path.

    Raises
    ------
    UnknownPlateError
        Nothing exists at ``ref``, or no source recognises it.
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
    for detect, opener in SOURCES.values():
        if detect(path):
            return opener(path)
    raise UnknownPlateError(
        f"{text!r} is not a plate this version can read "
        f"(known sources: {', '.join(SOURCES)})"
    )


__all__ = [
    "SOURCES",
    "Plate",
    "PlateLayout",
    "WellImages",
    "open_plate",
    "split_well",
    "well_name",
]
