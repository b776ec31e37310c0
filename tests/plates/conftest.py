"""Builders for tiny plates: OME-Zarr through ome-zarr-py's own writer, and
ImageXpress folders through tifffile, each returning the arrays written."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

Planes = dict[tuple[str, int, int, int, int], np.ndarray]  # well, site, c, z, t


def write_ome_zarr_plate(
    path: Path,
    version: str,
    *,
    rows: tuple[str, ...] = ("A", "B"),
    columns: tuple[str, ...] = ("1", "2", "3"),
    fields: int = 2,
    channels: tuple[str, ...] | None = ("DAPI", "GFP"),
    n_channels: int = 2,
    shape: tuple[int, int] = (64, 48),
    axes: str = "tczyx",
    skip: tuple[str, ...] = (),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write a plate with ome-zarr-py; return ``{"A/1": (field, *axes) array}``.

    Every well in ``rows x columns`` is listed in the plate metadata; wells in
    ``skip`` (like ``"B/3"``) are listed but never written.
    """
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    fmt = {"0.4": FormatV04(), "0.5": FormatV05()}[version]
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt.zarr_format)
    wells = [f"{r}/{c}" for r in rows for c in columns]
    write_plate_metadata(root, list(rows), list(columns), wells, fmt=fmt, name="tiny")
    rng = np.random.default_rng(seed)
    sizes = {"t": 1, "c": n_channels, "z": 1, "y": shape[0], "x": shape[1]}
    metadata = {}
    if channels is not None:
        metadata["omero"] = {
            "channels": [
                {
                    "label": name,
                    "color": "FFFFFF",
                    "window": {"min": 0, "max": 65535, "start": 0, "end": 4000},
                }
                for name in channels
            ]
        }
    chunks = tuple(1 if a in "tcz" else sizes[a] for a in axes)  # one per plane
    written = {}
    for path_ in wells:
        if path_ in skip:
            continue
        row, col = path_.split("/")
        group = root.require_group(row).require_group(col)
        write_well_metadata(group, [{"path": str(f)} for f in range(fields)], fmt=fmt)
        stack = rng.integers(0, 4000, (fields, *(sizes[a] for a in axes)), np.uint16)
        for f in range(fields):
            write_image(
                stack[f],
                group.require_group(str(f)),
                scale_factors=(2,),
                fmt=fmt,
                axes=axes,
                storage_options={"chunks": chunks},
                **metadata,
            )
        written[path_] = stack
    return written


def write_ix_folder(
    root: Path,
    *,
    wells: tuple[str, ...] = ("A01", "A02", "B03"),
    sites: int = 2,
    waves: int = 2,
    z: int = 1,
    t: int = 1,
    name: Callable[[str, int, int], str] = lambda w, s, c: f"{w}_s{s}_w{c}.tif",
    htd: str | None = None,
    z_folders: bool | None = None,
    time_folders: bool = True,
    shape: tuple[int, int] = (32, 40),
    seed: int = 0,
) -> Planes:
    """Write an ImageXpress-style folder; return each plane by 0-based indices."""
    root.mkdir(parents=True, exist_ok=True)
    if htd is not None:
        (root / "plate.HTD").write_text(htd, encoding="utf-8")
    rng = np.random.default_rng(seed)
    planes: Planes = {}
    use_z = z > 1 if z_folders is None else z_folders
    for ti in range(t):
        for zi in range(z):
            folder = root / f"TimePoint_{ti + 1}" if time_folders else root
            if use_z:
                folder = folder / f"ZStep_{zi + 1}"
            folder.mkdir(parents=True, exist_ok=True)
            for well in wells:
                for s in range(sites):
                    for c in range(waves):
                        plane = rng.integers(0, 4000, shape, np.uint16)
                        tifffile.imwrite(folder / name(well, s + 1, c + 1), plane)
                        planes[(well, s, c, zi, ti)] = plane
    return planes


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="session")
def _zarr_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return {"root": tmp_path_factory.mktemp("zarr-plates")}


@pytest.fixture
def zarr_plate(
    _zarr_cache: dict, tmp_path: Path
) -> Callable[..., tuple[Path, dict[str, np.ndarray]]]:
    """Factory: ``zarr_plate("0.4", **options) -> (path, written arrays)``.

    Writing through ome-zarr-py takes about a second per plate, so each
    distinct plate is written once per session and copied into ``tmp_path``
    for the test, which may then change it freely.
    """

    def make(version: str, **options: object) -> tuple[Path, dict[str, np.ndarray]]:
        key = f"{version}-{sorted(options.items())!r}"
        if key not in _zarr_cache:
            source = _zarr_cache["root"] / f"p{len(_zarr_cache)}.ome.zarr"
            _zarr_cache[key] = (
                source,
                write_ome_zarr_plate(source, version, **options),
            )
        source, written = _zarr_cache[key]
        path = tmp_path / f"plate-{version}.ome.zarr"
        shutil.copytree(source, path)
        return path, {k: v.copy() for k, v in written.items()}

    return make


@pytest.fixture
def ix_writer() -> Callable[..., Planes]:
    """``write_ix_folder`` as a fixture (test modules do not import conftest)."""
    return write_ix_folder


@pytest.fixture
def take_snapshot() -> Callable[[Path], dict[str, tuple[int, int]]]:
    """``snapshot`` as a fixture."""
    return snapshot
