"""ImageXpress (MetaXpress) plate folders: one TIFF file per plane.

The folder is walked once when the plate is opened (see ``_ix_index``); the
optional ``.HTD`` file adds the plate size and wavelength names. Sites,
wavelengths, z-steps and timepoints are numbered from 1 in file names and
become indices from 0 in order of their numbers. Reading opens files read-only
with tifffile and never writes into the folder.

Opened with a :class:`Confinement` (as a server does), symlinked image files,
folders and the HTD file must lead inside the plate roots (checked when the
folder is indexed), and every TIFF is opened through the confinement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openhcs_nb.errors import PlateError, UnknownPlateError
from openhcs_nb.plates._containment import Confinement, open_file
from openhcs_nb.plates._htd import HtdInfo, read_htd
from openhcs_nb.plates._ix_index import FileIndex, looks_like_imagexpress, scan
from openhcs_nb.plates.model import Plate, PlateLayout, row_letters, split_well

# (rows, columns) of standard plates, smallest first, for folders without HTD.
_PLATE_SIZES = ((2, 3), (3, 4), (4, 6), (6, 8), (8, 12), (16, 24), (32, 48))


def detect(path: Path, confine: Confinement | None = None) -> bool:
    """True for a folder holding an HTD file, TimePoint folders or well TIFFs."""
    return path.is_dir() and looks_like_imagexpress(path)


class ImageXpressPlate(Plate):
    """An ImageXpress folder; ``read_image`` opens one TIFF per plane."""

    def __init__(
        self,
        ref: str,
        layout: PlateLayout,
        root: Path,
        index: FileIndex,
        confine: Confinement | None = None,
    ) -> None:
        super().__init__(ref, layout, confine)
        self._root = root
        self._index = index

    def read_image(
        self, well: str, site: int, channel: int, z: int = 0, t: int = 0
    ) -> np.ndarray:
        """One ``(y, x)`` plane from its TIFF file.

        Raises
        ------
        UnknownWellError
            The well is not on the plate.
        UnknownPlateError
            The plate is confined and the file leads outside the plate roots.
        PlateError
            An index is out of range, the plane's file is missing, or the file
            does not hold a 2-D image of the plate's size and type.
        """
        import tifffile  # lazy: only needed once pixels are read

        well = self.check_well(well)
        idx = self._index
        numbers = {}
        for axis, index, known in (
            ("site", site, idx.sites),
            ("channel", channel, idx.waves),
            ("z", z, idx.z_steps),
            ("t", t, idx.timepoints),
        ):
            if not 0 <= index < len(known):
                raise PlateError(
                    f"plate {self.name!r}, well {well}: {axis} index {index} "
                    f"is out of range (0..{len(known) - 1})"
                )
            numbers[axis] = known[index]
        key = (well, numbers["site"], numbers["channel"], numbers["z"], numbers["t"])
        rel = idx.files.get(key)
        if rel is None:
            raise PlateError(
                f"plate {self.name!r}, well {well}: no file for site {key[1]}, "
                f"wavelength {key[2]}, z-step {key[3]}, timepoint {key[4]} "
                f"in {self._root}"
            )
        try:
            with open_file(self.confine, self._root / rel, self.ref) as handle:
                data = np.squeeze(tifffile.imread(handle, key=0))
        except (OSError, ValueError, tifffile.TiffFileError) as exc:
            raise PlateError(f"cannot read {self._root / rel}: {exc}") from exc
        if data.shape != self.layout.shape or str(data.dtype) != self.layout.dtype:
            raise PlateError(
                f"{self._root / rel}: {data.shape} {data.dtype} does not match the "
                f"plate's {self.layout.shape} {self.layout.dtype}"
            )
        return data


def open_imagexpress_plate(
    path: Path, confine: Confinement | None = None
) -> ImageXpressPlate:
    """Index the folder at ``path``; its ref is the absolute path.

    Raises
    ------
    UnknownPlateError
        ``path`` is not a folder, or (with ``confine``) it, an image file,
        a folder or the HTD file leads outside the plate roots.
    PlateError
        No images, two files for one plane, or an unreadable first image.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise UnknownPlateError(f"{root} is not an ImageXpress folder")
    if confine is not None:
        confine.check(root, str(root))
    index = scan(root, confine)
    htd = read_htd(root, confine) or HtdInfo()
    first = root / index.files[min(index.files)]
    shape, dtype = _first_image_info(first, confine, str(root))
    rows, columns = _grid(index, htd)
    layout = PlateLayout(
        name=root.name,
        rows=rows,
        columns=columns,
        wells=index.wells,
        fields=len(index.sites),
        channels=_channel_names(index.waves, htd),
        z=len(index.z_steps),
        t=len(index.timepoints),
        dtype=dtype,
        shape=shape,
    )
    return ImageXpressPlate(str(root), layout, root, index, confine)


def _first_image_info(
    path: Path, confine: Confinement | None, ref: str
) -> tuple[tuple[int, int], str]:
    """Plane size and pixel type from the first TIFF page, without its pixels."""
    import tifffile

    try:
        with open_file(confine, path, ref) as handle, tifffile.TiffFile(handle) as tif:
            page = tif.pages.first
            shape, dtype = tuple(s for s in page.shape if s != 1), page.dtype
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        raise PlateError(f"cannot read {path}: {exc}") from exc
    if len(shape) != 2 or dtype is None:
        raise PlateError(f"{path}: expected a 2-D grey image, found shape {page.shape}")
    return (shape[0], shape[1]), str(dtype)


def _grid(index: FileIndex, htd: HtdInfo) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Rows and columns: the HTD's when it covers every well, else a standard size."""
    parts = [split_well(w) for w in index.wells]
    n_rows = max(_row_number(r) for r, _ in parts)
    n_cols = max(c for _, c in parts)
    if htd.y_wells and htd.x_wells and htd.y_wells >= n_rows and htd.x_wells >= n_cols:
        n_rows, n_cols = htd.y_wells, htd.x_wells
    else:
        n_rows, n_cols = next(
            ((r, c) for r, c in _PLATE_SIZES if r >= n_rows and c >= n_cols),
            (n_rows, n_cols),
        )
    return tuple(row_letters(i) for i in range(n_rows)), tuple(range(1, n_cols + 1))


def _row_number(letters: str) -> int:
    """Row letters to a 1-based number: A -> 1, Z -> 26, AA -> 27."""
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - ord("A") + 1
    return number


def _channel_names(waves: tuple[int, ...], htd: HtdInfo) -> tuple[str, ...]:
    """HTD wavelength names where given, ``w<n>`` otherwise, made unique."""
    names: list[str] = []
    for wave in waves:
        base = htd.wave_names.get(wave, f"w{wave}")
        name, k = base, 1
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return tuple(names)
