"""OMERO plate metadata: the queries, and the mapping onto :class:`PlateLayout`.

A plate costs two queries, whatever its size:

1. :data:`PLATE_QUERY` fetches Plate -> Wells -> WellSamples (with their
   PlateAcquisition) -> Image -> Pixels (type, dimension order) -> Channels ->
   LogicalChannels in one ``join fetch`` graph.
2. :data:`FILES_QUERY` fetches the original files of the images' filesets.

Files are a separate query on purpose: an ImageXpress fileset lists every TIFF
of the plate and each of its hundreds of images points at that same fileset,
so fetching files inside query 1 would return images x files rows.

Both queries run in the *user's* session, so OMERO's ACLs decide what comes
back: an image the user may not read is not in the result, and nothing of it
is ever read from disk (see :mod:`openhcs_nb.plates.omero`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openhcs_nb.errors import PlateError
from openhcs_nb.plates.model import PlateLayout, row_letters, well_name

PLATE_QUERY = (
    "select distinct p from Plate p"
    " left outer join fetch p.wells w"
    " left outer join fetch w.wellSamples ws"
    " left outer join fetch ws.plateAcquisition"
    " left outer join fetch ws.image img"
    " left outer join fetch img.pixels pix"
    " left outer join fetch pix.pixelsType"
    " left outer join fetch pix.dimensionOrder"
    " left outer join fetch pix.channels ch"
    " left outer join fetch ch.logicalChannel"
    " where p.id = :pid"
)
FILES_QUERY = (
    "select fe from FilesetEntry fe join fetch fe.originalFile"
    " where fe.fileset.id in (:ids) order by fe.id"
)

#: OMERO pixel type -> NumPy dtype name (``bit`` and complex types are refused).
PIXEL_TYPES: dict[str, str] = {
    "int8": "int8",
    "uint8": "uint8",
    "int16": "int16",
    "uint16": "uint16",
    "int32": "int32",
    "uint32": "uint32",
    "float": "float32",
    "double": "float64",
}


def val(rtype: Any) -> Any:
    """The Python value of an omero ``RType`` (None stays None)."""
    return None if rtype is None else getattr(rtype, "val", rtype)


@dataclass(frozen=True)
class OmeroImage:
    """One field's image: ids, sizes, and where its bytes may be found."""

    well: str
    field: int
    image_id: int
    pixels_id: int
    name: str
    series: int
    size_x: int
    size_y: int
    size_z: int
    size_c: int
    size_t: int
    pixels_type: str
    dimension_order: str
    fileset_id: int | None
    acquisition_id: int | None
    channel_names: tuple[str, ...]
    group_id: int | None = None

    @property
    def dtype(self) -> str:
        """NumPy dtype name of the pixels."""
        return PIXEL_TYPES[self.pixels_type]


@dataclass(frozen=True)
class PlateMeta:
    """Everything the plate source knows without reading a pixel."""

    plate_id: int
    name: str
    layout: PlateLayout
    images: dict[tuple[str, int], OmeroImage]
    well_ids: dict[str, int]
    acquisitions: tuple[tuple[int, str], ...]
    acquisition_id: int | None
    files: dict[int, tuple[str, ...]]  # fileset id -> "path/name" under managed dir
    group_id: int | None = None  # the plate's group: writes must name it


def plate_meta(
    plate: Any, acquisition: int | None, files: dict[int, tuple[str, ...]]
) -> PlateMeta:
    """Map a fetched ``PlateI`` graph onto our model.

    Wells are named ``A01`` from OMERO's 0-based row and column; a well's
    fields are its WellSamples in list order, keeping only those of the chosen
    PlateAcquisition (the first one by id when the plate has several).

    Raises
    ------
    PlateError
        The acquisition does not exist, no image is visible, or images differ
        in size, type or channels (the message names the well and field).
    """
    plate_id = int(val(plate.getId()))
    wells = sorted(
        (w for w in plate.copyWells() if w is not None),
        key=lambda w: (val(w.getRow()), val(w.getColumn())),
    )
    acquisitions = _acquisitions(wells)
    chosen = _choose(acquisitions, acquisition, plate_id)
    images: dict[tuple[str, int], OmeroImage] = {}
    well_ids: dict[str, int] = {}
    for well in wells:
        name = well_name(row_letters(val(well.getRow())), val(well.getColumn()) + 1)
        samples = [
            ws
            for ws in well.copyWellSamples()
            if ws is not None
            and ws.getImage() is not None
            and (chosen is None or _acq_id(ws) == chosen)
        ]
        if not samples:
            continue
        well_ids[name] = int(val(well.getId()))
        for index, sample in enumerate(samples):
            images[(name, index)] = _image(name, index, sample)
    if not images:
        raise PlateError(f"OMERO plate {plate_id} has no images this user can read")
    layout = _layout(plate, wells, images, well_ids)
    title = str(val(plate.getName()) or f"plate {plate_id}")
    return PlateMeta(
        plate_id=plate_id,
        name=title,
        layout=layout,
        images=images,
        well_ids=well_ids,
        acquisitions=tuple(sorted(acquisitions.items())),
        acquisition_id=chosen,
        files=files,
        group_id=_group_id(plate),
    )


def _acq_id(sample: Any) -> int | None:
    acq = sample.getPlateAcquisition()
    return None if acq is None else int(val(acq.getId()))


def _acquisitions(wells: list[Any]) -> dict[int, str]:
    found: dict[int, str] = {}
    for well in wells:
        for sample in well.copyWellSamples():
            acq = sample.getPlateAcquisition() if sample is not None else None
            if acq is not None:
                acq_id = int(val(acq.getId()))
                label = val(acq.getName()) if acq.isLoaded() else None
                found[acq_id] = str(label or f"Run {acq_id}")
    return found


def _choose(found: dict[int, str], wanted: int | None, plate_id: int) -> int | None:
    if wanted is not None:
        if wanted not in found:
            listed = ", ".join(f"{i} ({n})" for i, n in sorted(found.items()))
            raise PlateError(
                f"OMERO plate {plate_id} has no acquisition {wanted} "
                f"(acquisitions: {listed or 'none'})"
            )
        return wanted
    return min(found) if found else None


def _image(well: str, index: int, sample: Any) -> OmeroImage:
    image = sample.getImage()
    where = f"well {well} field {index} (image {val(image.getId())})"
    pixels = image.getPrimaryPixels()
    if pixels is None:
        raise PlateError(f"{where}: the image has no pixels")
    ptype = str(val(pixels.getPixelsType().getValue()))
    if ptype not in PIXEL_TYPES:
        raise PlateError(f"{where}: pixel type {ptype!r} is not supported")
    order = pixels.getDimensionOrder()
    fileset = image.getFileset()
    return OmeroImage(
        well=well,
        field=index,
        image_id=int(val(image.getId())),
        pixels_id=int(val(pixels.getId())),
        name=str(val(image.getName()) or ""),
        series=int(val(image.getSeries()) or 0),
        size_x=int(val(pixels.getSizeX())),
        size_y=int(val(pixels.getSizeY())),
        size_z=int(val(pixels.getSizeZ())),
        size_c=int(val(pixels.getSizeC())),
        size_t=int(val(pixels.getSizeT())),
        pixels_type=ptype,
        dimension_order=str(val(order.getValue())) if order is not None else "XYZCT",
        fileset_id=None if fileset is None else int(val(fileset.getId())),
        acquisition_id=_acq_id(sample),
        channel_names=_channel_names(pixels),
        group_id=_group_id(image),
    )


def _group_id(obj: Any) -> int | None:
    """The group an object belongs to (stateful services must name it)."""
    details = obj.getDetails()
    group = details.getGroup() if details is not None else None
    return None if group is None else int(val(group.getId()))


def _channel_names(pixels: Any) -> tuple[str, ...]:
    """LogicalChannel name, else emission wavelength, else ``C<i>``; unique."""
    names: list[str] = []
    channels = pixels.copyChannels() if pixels.isChannelsLoaded() else []
    for i in range(int(val(pixels.getSizeC()))):
        base = f"C{i}"
        channel = channels[i] if i < len(channels) else None
        logical = channel.getLogicalChannel() if channel is not None else None
        if logical is not None and logical.isLoaded():
            if val(logical.getName()):
                base = str(val(logical.getName()))
            elif logical.getEmissionWave() is not None:
                base = f"{val(logical.getEmissionWave().getValue()):g}"
        name, k = base, 1
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return tuple(names)


def _layout(
    plate: Any,
    wells: list[Any],
    images: dict[tuple[str, int], OmeroImage],
    well_ids: dict[str, int],
) -> PlateLayout:
    first = images[min(images, key=lambda k: (k[0] not in well_ids, k))]
    for (well, field), image in images.items():
        problems = [
            f"{label} {got} (plate has {want})"
            for label, got, want in (
                ("shape", (image.size_y, image.size_x), (first.size_y, first.size_x)),
                ("z", image.size_z, first.size_z),
                ("t", image.size_t, first.size_t),
                ("channels", image.channel_names, first.channel_names),
                ("pixel type", image.pixels_type, first.pixels_type),
            )
            if got != want
        ]
        if problems:
            raise PlateError(
                f"OMERO plate {val(plate.getId())}: well {well} field {field} "
                f"(image {image.image_id}) differs from the first image: "
                + ", ".join(problems)
            )
    n_rows = val(plate.getRows()) or 1 + max(val(w.getRow()) for w in wells)
    n_cols = val(plate.getColumns()) or 1 + max(val(w.getColumn()) for w in wells)
    ordered = sorted(well_ids, key=lambda n: (len(n.rstrip("0123456789")), n))
    return PlateLayout(
        name=str(val(plate.getName()) or f"plate {val(plate.getId())}"),
        rows=tuple(row_letters(i) for i in range(int(n_rows))),
        columns=tuple(range(1, int(n_cols) + 1)),
        wells=tuple(ordered),
        fields=1 + max(field for _, field in images),
        channels=first.channel_names,
        z=first.size_z,
        t=first.size_t,
        dtype=first.dtype,
        shape=(first.size_y, first.size_x),
    )


def fileset_files(entries: list[Any]) -> dict[int, tuple[str, ...]]:
    """Fileset id -> each file as ``"<OriginalFile.path><OriginalFile.name>"``."""
    files: dict[int, list[str]] = {}
    for entry in entries:
        original = entry.getOriginalFile()
        path = str(val(original.getPath()) or "")
        name = str(val(original.getName()) or "")
        if path and not path.endswith("/"):
            path += "/"
        files.setdefault(int(val(entry.getFileset().getId())), []).append(path + name)
    return {k: tuple(v) for k, v in files.items()}
