"""Builds a binary repository laid out exactly like an OMERO server's, plus a
description of the database rows that point into it.

``build_fixture(root)`` writes::

    root/ManagedRepository/user_2/2026-11/24/10-22-33.123/...   original files
    root/Pixels/Dir-001/Dir-234/1234567 ...                      ROMIO buffers
    root/truth/<image id>.npy                                     ground truth
    root/double.json                                             the description

Ground truth is drawn from a seeded generator *before* any file is written, and
stored separately as native-endian ``.npy``; the double serves Ice planes from
it, so readers are checked against pixels that never went through our code.

Plates (64 x 64 pixels, ids large enough to exercise the Dir- sharding):

- 101 OME-TIFF: one multi-image OME-TIFF, series stored in reverse field order.
- 102 ImageXpress: HTD + one TIFF per plane, one fileset for the whole plate.
- 103 ROMIO: a vendor file we cannot read + ROMIO buffers (float32, T=2);
  two PlateAcquisitions; one image has no buffer (Ice only).
- 104 OME-Zarr plate (uint8).
- 105 alice's private plate (bob may not see it; its files exist).
- 106 plain multi-page TIFF in a read-only group (bob may read, not annotate).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

SIZE = 64
BOB, ALICE = "bob-session-0000-1111-2222-333344445555", "alice-session-key-9999"
EXPIRED = "expired-session-key-0000"
#: OMERO passwords: ``connect()`` of a password login checks them
PASSWORDS = {"bob": "bob's omero password", "alice": "alice's omero password"}
FILESET_DIR = "user_2/2026-11/24/10-22-33.123"
ALICE_DIR = "user_5/2026-11/25/08-01-02.456"


@dataclass
class Builder:
    root: Path
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    images: list[dict[str, Any]] = field(default_factory=list)
    filesets: list[dict[str, Any]] = field(default_factory=list)
    plates: list[dict[str, Any]] = field(default_factory=list)
    next_image: int = 2_000_001
    next_pixels: int = 1_234_567
    next_file: int = 3_000_001

    def truth(self, image_id: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        if np.dtype(dtype).kind == "f":
            data = self.rng.normal(100.0, 30.0, shape).astype(dtype)
        else:
            high = min(np.iinfo(dtype).max, 60000)
            data = self.rng.integers(0, high, shape, dtype=dtype)
        folder = self.root / "truth"
        folder.mkdir(exist_ok=True)
        np.save(folder / f"{image_id}.npy", data)
        return data

    def image(
        self,
        sizes: dict[str, int],
        dtype: str,
        channels: list[str],
        *,
        fileset: int | None,
        series: int = 0,
        group: int = 3,
        pixels_id: int | None = None,
        order: str = "XYZCT",
    ) -> tuple[dict[str, Any], np.ndarray]:
        image_id = self.next_image
        self.next_image += 1
        if pixels_id is None:
            pixels_id = self.next_pixels
            self.next_pixels += 1
        shape = (sizes["t"], sizes["c"], sizes["z"], SIZE, SIZE)
        data = self.truth(image_id, shape, dtype)
        otype = {"float32": "float", "float64": "double"}.get(dtype, dtype)
        record = {
            "id": image_id,
            "name": f"image {image_id}",
            "series": series,
            "fileset": fileset,
            "group": group,
            "pixels": {
                "id": pixels_id,
                "x": SIZE,
                "y": SIZE,
                "z": sizes["z"],
                "c": sizes["c"],
                "t": sizes["t"],
                "type": otype,
                "order": order,
            },
            "channels": channels,
            "truth": f"truth/{image_id}.npy",
        }
        self.images.append(record)
        return record, data

    def add_fileset(self, fileset_id: int, files: list[Path]) -> None:
        managed = self.root / "ManagedRepository"
        entries = []
        for path in files:
            rel = path.relative_to(managed)
            entries.append(
                {"id": self.next_file, "path": f"{rel.parent}/", "name": rel.name}
            )
            self.next_file += 1
        self.filesets.append({"id": fileset_id, "files": entries})

    def romio(self, pixels_id: int, data: np.ndarray) -> Path:
        from openhcs_nb.plates._omero_pixels import romio_path

        path = romio_path(self.root, pixels_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        data.astype(data.dtype.newbyteorder(">")).tofile(path)
        return path


def _plate(
    plate_id: int,
    name: str,
    wells: dict[tuple[int, int], list[tuple[int, int | None]]],
    *,
    group: int = 3,
    owner: int = 2,
    acquisitions: dict[int, str] | None = None,
) -> dict[str, Any]:
    """``wells``: (row, column) -> [(image id, acquisition id)] in field order."""
    well_list = []
    sample_id = plate_id * 1000
    for index, ((row, col), samples) in enumerate(sorted(wells.items())):
        entries = []
        for image_id, acq in samples:
            sample_id += 1
            entries.append({"id": sample_id, "image": image_id, "acquisition": acq})
        well_list.append(
            {
                "id": plate_id * 100 + index,
                "row": row,
                "column": col,
                "samples": entries,
            }
        )
    return {
        "id": plate_id,
        "name": name,
        "group": group,
        "owner": owner,
        "rows": 2,
        "columns": 3,
        "acquisitions": {str(k): v for k, v in (acquisitions or {}).items()},
        "wells": well_list,
    }


def _ome_tiff_plate(b: Builder) -> None:
    folder = b.root / "ManagedRepository" / FILESET_DIR / "screen"
    folder.mkdir(parents=True)
    wells = [(0, 0), (0, 1), (1, 2)]
    placed = []
    for well in wells:
        for field_ in range(2):
            placed.append((well, field_))
    series_of = {key: len(placed) - 1 - i for i, key in enumerate(placed)}
    arrays: dict[int, np.ndarray] = {}
    mapping: dict[tuple[int, int], list[tuple[int, int | None]]] = {}
    for well, field_ in placed:
        record, data = b.image(
            {"t": 1, "c": 2, "z": 2},
            "uint16",
            ["DAPI", "GFP"],
            fileset=5001,
            series=series_of[(well, field_)],
        )
        arrays[record["series"]] = data
        mapping.setdefault(well, []).append((record["id"], 41))
    path = folder / "plate101.ome.tiff"
    with tifffile.TiffWriter(path, ome=True) as tif:
        for series in range(len(placed)):
            tif.write(arrays[series][0], metadata={"axes": "CZYX"})
    b.add_fileset(5001, [path])
    b.plates.append(_plate(101, "OME-TIFF plate", mapping, acquisitions={41: "Run 1"}))


def _imagexpress_plate(b: Builder) -> None:
    folder = b.root / "ManagedRepository" / FILESET_DIR / "ix-plate"
    folder.mkdir(parents=True)
    htd = folder / "plate.HTD"
    htd.write_text(
        '"HTSInfoFile", Version 1.0\n"XWells", 3\n"YWells", 2\n"SiteSelection", TRUE\n'
        '"XSites", 2\n"YSites", 1\n"Waves", TRUE\n"NWavelengths", 2\n'
        '"WaveName1", "DAPI"\n"WaveName2", "FITC"\n"EndFile"\n',
        encoding="utf-8",
    )
    files = [htd]
    mapping: dict[tuple[int, int], list[tuple[int, int | None]]] = {}
    for row, col in ((0, 0), (1, 1)):
        well = f"{'AB'[row]}{col + 1:02d}"
        for site in range(2):
            record, data = b.image(
                {"t": 1, "c": 2, "z": 1}, "uint16", ["DAPI", "FITC"], fileset=5002
            )
            mapping.setdefault((row, col), []).append((record["id"], None))
            for wave in range(2):
                path = folder / f"{well}_s{site + 1}_w{wave + 1}.tif"
                tifffile.imwrite(path, data[0, wave, 0])
                files.append(path)
    b.add_fileset(5002, files)
    b.plates.append(_plate(102, "ImageXpress plate", mapping))


def _romio_plate(b: Builder) -> None:
    folder = b.root / "ManagedRepository" / FILESET_DIR / "vendor"
    folder.mkdir(parents=True)
    vendor = folder / "scan.czi"
    vendor.write_bytes(b"ZISRAWFILE" + bytes(54))
    b.add_fileset(5003, [vendor])
    mapping: dict[tuple[int, int], list[tuple[int, int | None]]] = {}
    pixel_ids = iter((999, 12_345, 1_234_999_001, None))
    for run in (61, 62):
        for well in ((0, 0), (0, 1)):
            record, data = b.image(
                {"t": 2, "c": 3, "z": 1},
                "float32",
                ["a", "b", "c"],
                fileset=5003,
                pixels_id=next(pixel_ids),
            )
            mapping.setdefault(well, []).append((record["id"], run))
            if not (run == 61 and well == (0, 1)):
                b.romio(record["pixels"]["id"], data)
    b.plates.append(
        _plate(103, "ROMIO plate", mapping, acquisitions={61: "Run 1", 62: "Run 2"})
    )


def _zarr_plate(b: Builder) -> None:
    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    root_path = b.root / "ManagedRepository" / FILESET_DIR / "plate104.ome.zarr"
    fmt = FormatV04()
    root = zarr.open_group(str(root_path), mode="w", zarr_format=2)
    write_plate_metadata(root, ["A"], ["1", "2"], ["A/1", "A/2"], fmt=fmt, name="z")
    mapping: dict[tuple[int, int], list[tuple[int, int | None]]] = {}
    for col in (1, 2):
        group = root.require_group("A").require_group(str(col))
        write_well_metadata(group, [{"path": "0"}, {"path": "1"}], fmt=fmt)
        for field_ in range(2):
            record, data = b.image(
                {"t": 1, "c": 2, "z": 1}, "uint8", ["C0", "C1"], fileset=5004
            )
            mapping.setdefault((0, col - 1), []).append((record["id"], None))
            write_image(
                data,
                group.require_group(str(field_)),
                scale_factors=(),
                fmt=fmt,
                axes="tczyx",
                storage_options={"chunks": (1, 1, 1, SIZE, SIZE)},
            )
    files = sorted(p for p in root_path.rglob("*") if p.is_file())
    b.add_fileset(5004, files)
    b.plates.append(_plate(104, "OME-Zarr plate", mapping))


def _alice_plate(b: Builder) -> None:
    folder = b.root / "ManagedRepository" / ALICE_DIR
    folder.mkdir(parents=True)
    record, data = b.image(
        {"t": 1, "c": 1, "z": 1}, "uint16", ["DAPI"], fileset=5005, group=7
    )
    path = folder / "private.ome.tiff"
    tifffile.imwrite(path, data[0, 0, 0], ome=True)
    b.add_fileset(5005, [path])
    b.plates.append(
        _plate(105, "alice private", {(0, 0): [(record["id"], None)]}, group=7, owner=5)
    )


def _readonly_plate(b: Builder) -> None:
    folder = b.root / "ManagedRepository" / ALICE_DIR / "plain"
    folder.mkdir(parents=True)
    record, data = b.image(
        {"t": 1, "c": 2, "z": 3},
        "uint16",
        ["DAPI", "GFP"],
        fileset=5006,
        group=11,
        order="XYCZT",
    )
    pages = [data[0, c, z] for z in range(3) for c in range(2)]  # C fastest
    path = folder / "stack.tif"
    tifffile.imwrite(path, np.stack(pages))
    b.add_fileset(5006, [path])
    b.plates.append(
        _plate(
            106, "read-only plate", {(0, 0): [(record["id"], None)]}, group=11, owner=5
        )
    )


def build_fixture(root: Path) -> Path:
    """Write the repository under ``root``; return the description file."""
    b = Builder(root)
    for step in (
        _ome_tiff_plate,
        _imagexpress_plate,
        _romio_plate,
        _zarr_plate,
        _alice_plate,
        _readonly_plate,
    ):
        step(b)
    description = {
        "users": {
            "bob": {"id": 2, "groups": [3, 11]},
            "alice": {"id": 5, "groups": [7, 11]},
        },
        "groups": {
            "3": {"name": "screening", "perms": "rwra--"},
            "7": {"name": "alice-private", "perms": "rw----"},
            "11": {"name": "read-only", "perms": "rwr---"},
        },
        "sessions": {BOB: "bob", ALICE: "alice", EXPIRED: None},
        "passwords": PASSWORDS,
        "login_sessions": "login_sessions.txt",  # logins, seen by every process
        "plates": b.plates,
        "images": b.images,
        "filesets": b.filesets,
        "writes_log": "writes.jsonl",
    }
    path = root / "double.json"
    path.write_text(json.dumps(description, indent=1), encoding="utf-8")
    return path
