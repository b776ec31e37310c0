"""Writing generated wells as an OME-Zarr plate or an ImageXpress folder.

Both writers take one well at a time as an array ``(field, t, c, z, y, x)``,
so wells can be rendered and written in any order. All OME-Zarr metadata
(plate, well, multiscales, omero) is written by ome-zarr-py's writer functions,
so it is what other OME tools expect: NGFF 0.4 on a Zarr v2 store or 0.5 on a
Zarr v3 store. The pixels go straight into zarr arrays, one chunk per plane,
with a small block-mean pyramid for viewers: ``ome_zarr.writer.write_image``
would do the same through dask at about ten times the cost per field.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

_COLORS = ("0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00")


def _levels(shape: tuple[int, int]) -> tuple[int, ...]:
    """Downsampling factors whose smallest level is still at least 32 px."""
    return tuple(f for f in (2, 4) if min(shape) // f >= 32)


class OmeZarrWriter:
    """Writes plate, well and image metadata plus pixels with ome-zarr-py."""

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        rows: tuple[str, ...],
        columns: tuple[int, ...],
        channels: tuple[str, ...],
        fields: int,
        white: float,
        version: str,
    ) -> None:
        import zarr  # lazy: writers are only imported to generate
        from ome_zarr.format import FormatV04, FormatV05
        from ome_zarr.writer import write_plate_metadata

        formats = {"0.4": FormatV04, "0.5": FormatV05}
        if version not in formats:
            raise ValueError(
                f"ome_zarr_version must be '0.4' or '0.5', not {version!r}"
            )
        self._fmt = formats[version]()
        self._root = zarr.open_group(
            str(path), mode="w-", zarr_format=self._fmt.zarr_format
        )
        self._fields = fields
        self._omero = {
            "channels": [
                {
                    "label": label,
                    "color": _COLORS[i % len(_COLORS)],
                    "active": True,
                    "window": {"min": 0.0, "max": white, "start": 0.0, "end": white},
                }
                for i, label in enumerate(channels)
            ]
        }
        col_names = [str(c) for c in columns]
        wells = [f"{r}/{c}" for r in rows for c in col_names]
        write_plate_metadata(
            self._root,
            list(rows),
            col_names,
            wells,
            fmt=self._fmt,
            name=name,
            field_count=fields,
        )
        for row in rows:  # up front, so wells can be written from threads
            self._root.require_group(row)

    def write_well(self, row: str, column: int, images: np.ndarray) -> None:
        """Write one well, ``images`` shaped ``(field, t, c, z, y, x)``."""
        from ome_zarr.writer import (
            write_multiscales_metadata,
            write_well_metadata,
        )

        group = self._root[row].require_group(str(column))
        write_well_metadata(
            group, [{"path": str(f)} for f in range(len(images))], fmt=self._fmt
        )
        factors = (1, *_levels(images.shape[-2:]))
        for field, image in enumerate(images):
            image_group = group.require_group(str(field))
            datasets = []
            for level, factor in enumerate(factors):
                data = _downsample(image, factor)
                array = image_group.create_array(
                    str(level),
                    shape=data.shape,
                    dtype=data.dtype,
                    chunks=(1, 1, 1, *data.shape[-2:]),
                    chunk_key_encoding=self._fmt.chunk_key_encoding,
                )
                array[...] = data
                scale = [1.0, 1.0, 1.0, float(factor), float(factor)]
                datasets.append(
                    {
                        "path": str(level),
                        "coordinateTransformations": [
                            {"type": "scale", "scale": scale}
                        ],
                    }
                )
            write_multiscales_metadata(
                image_group,
                datasets,
                fmt=self._fmt,
                axes=["t", "c", "z", "y", "x"],
                name="image",
                metadata={"omero": copy.deepcopy(self._omero)},
            )


def _downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``factor`` x ``factor`` blocks over the last two axes, same dtype.

    Halving repeatedly with four strided views is much faster than a mean over
    a reshaped 7-D view, and ``factor`` is always a power of two here.
    """
    level = image.astype(np.float32)
    while factor > 1:
        h, w = level.shape[-2] // 2 * 2, level.shape[-1] // 2 * 2
        level = (
            level[..., 0:h:2, 0:w:2]
            + level[..., 1:h:2, 0:w:2]
            + level[..., 0:h:2, 1:w:2]
            + level[..., 1:h:2, 1:w:2]
        ) * 0.25
        factor //= 2
    if np.issubdtype(image.dtype, np.integer):
        np.rint(level, out=level)
    return level.astype(image.dtype)


class ImageXpressWriter:
    """Writes an HTD file and one TIFF per plane in MetaXpress naming."""

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        rows: tuple[str, ...],
        columns: tuple[int, ...],
        channels: tuple[str, ...],
        fields: int,
        z: int,
        t: int,
    ) -> None:
        path.mkdir(parents=True)
        self._root = path
        lines: list[tuple[str, Any]] = [
            ("HTSInfoFile", "Version 1.0"),
            ("Description", name),
            ("TimePoints", t),
            ("ZSeries", z > 1),
            ("NZSteps", z),
            ("Waves", True),
            ("NWavelengths", len(channels)),
            *((f"WaveName{i + 1}", ch) for i, ch in enumerate(channels)),
            ("XWells", len(columns)),
            ("YWells", len(rows)),
            ("Sites", fields > 1),
            ("XSites", fields),
            ("YSites", 1),
        ]
        text = "".join(f'"{key}", {_htd_value(value)}\r\n' for key, value in lines)
        (path / f"{name}.HTD").write_text(text + '"EndFile"\r\n', encoding="utf-8")

    def write_well(self, row: str, column: int, images: np.ndarray) -> None:
        """Write one well, ``images`` shaped ``(field, t, c, z, y, x)``."""
        import tifffile

        n_fields, n_t, n_c, n_z = images.shape[:4]
        for t in range(n_t):
            for z in range(n_z):
                folder = self._root / f"TimePoint_{t + 1}"
                if n_z > 1:
                    folder = folder / f"ZStep_{z + 1}"
                folder.mkdir(parents=True, exist_ok=True)
                for field in range(n_fields):
                    for c in range(n_c):
                        name = f"{row}{column:02d}_s{field + 1}_w{c + 1}.tif"
                        tifffile.imwrite(folder / name, images[field, t, c, z])


def _htd_value(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'
