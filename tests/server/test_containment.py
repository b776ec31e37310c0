"""A real server refuses plates whose files or metadata lead outside its roots.

The server offers ``roots/``; each bad plate inside it reaches into
``outside/`` through a symlinked TIFF, a ``../`` well path or a symlinked
chunk. The client must get ``unknown_plate`` (or a failed well, for a chunk
found only by a worker), never those pixels, and the server keeps serving.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from server_process import ServerProcess
from zarr_edits import edit_ome

from openhcs_nb import connect, nuclei_count_pipeline
from openhcs_nb.client import RemoteError
from openhcs_nb.errors import UnknownPlateError
from openhcs_nb.server.plate_access import PlateAccess


def first_chunk(field: Path) -> Path:
    """One chunk file of the field's full-resolution array."""
    found = {}
    edit_ome(field, lambda ome: found.update(ome["multiscales"][0]["datasets"][0]))
    meta = {"zarr.json", ".zarray", ".zattrs"}
    files = sorted((field / found["path"]).rglob("*"))
    return next(p for p in files if p.is_file() and p.name not in meta)


@pytest.fixture
def plates(tmp_path: Path, small_plate_path: Path) -> Path:
    """``roots/`` with one good plate and three that reach into ``outside/``."""
    roots, outside = tmp_path / "roots", tmp_path / "outside"
    roots.mkdir()
    outside.mkdir()
    shutil.copytree(small_plate_path, roots / "good.ome.zarr")
    # An ImageXpress folder with one TIFF linked to a file outside the roots.
    ix = roots / "ix-escape"
    ix.mkdir()
    secret = outside / "secret.tif"
    tifffile.imwrite(secret, np.full((64, 64), 4321, np.uint16))
    for well in ("A01", "A02"):
        tifffile.imwrite(ix / f"{well}_s1_w1.tif", np.zeros((64, 64), np.uint16))
    (ix / "A02_s1_w1.tif").unlink()
    (ix / "A02_s1_w1.tif").symlink_to(secret)
    # An OME-Zarr plate whose plate metadata sends a well to another plate.
    shutil.copytree(small_plate_path, outside / "other.ome.zarr")
    dotdot = roots / "dotdot.ome.zarr"
    shutil.copytree(small_plate_path, dotdot)
    edit_ome(
        dotdot,
        lambda ome: ome["plate"]["wells"][0].update(
            path="../../outside/other.ome.zarr/A/1"
        ),
    )
    # An OME-Zarr plate with one chunk of well A02 linked into the other plate.
    linked = roots / "chunk-escape.ome.zarr"
    shutil.copytree(small_plate_path, linked)
    chunk = first_chunk(linked / "A" / "2" / "0")
    chunk.unlink()
    chunk.symlink_to(outside / "other.ome.zarr" / chunk.relative_to(linked))
    return roots


@pytest.fixture
def server(tmp_path: Path, plates: Path):
    process = ServerProcess(tmp_path / "server", plates, workers=1).start()
    yield process
    process.kill()


def test_when_plate_access_opens_a_plate_then_it_is_confined_to_the_roots(plates):
    access = PlateAccess([plates])
    assert access.open("good.ome.zarr").confine == access.confine
    assert access.confine.roots == (str(plates.resolve()),)
    with pytest.raises(UnknownPlateError, match="A02_s1_w1"):
        access.open("ix-escape")
    with pytest.raises(UnknownPlateError, match=r"\.\./\.\./outside"):
        access.open("dotdot.ome.zarr")


def test_when_a_plate_folder_links_outside_the_roots_then_it_is_not_listed(
    plates, tmp_path
):
    (plates / "linked.ome.zarr").symlink_to(tmp_path / "outside" / "other.ome.zarr")
    listed = PlateAccess([plates]).list()
    assert "good.ome.zarr" in listed
    assert "linked.ome.zarr" not in listed


def test_when_a_plate_reaches_outside_the_roots_then_submit_and_preview_are_refused(
    server,
):
    conn = connect(server.address, timeout=20.0)
    try:
        for plate, offending in (
            ("ix-escape", "A02_s1_w1.tif"),
            ("dotdot.ome.zarr", "../../outside/other.ome.zarr/A/1"),
        ):
            with pytest.raises(RemoteError) as info:
                conn.submit(nuclei_count_pipeline(), plate)
            assert info.value.code == "unknown_plate"
            assert offending in str(info.value)
            with pytest.raises(RemoteError) as info:
                conn.preview(nuclei_count_pipeline(), plate, "A01", max_size=32)
            assert info.value.code == "unknown_plate"
            with pytest.raises(RemoteError) as info:
                conn.plate_info(plate)
            assert info.value.code == "unknown_plate"
        assert "A02_s1_w1.tif" in server.log()  # the reason is logged
        execution = conn.submit(nuclei_count_pipeline(), "good.ome.zarr", ["A01"])
        table = execution.result(timeout=120)
        assert list(table["well"]) == ["A01"]
        assert not execution.failed_wells
    finally:
        conn.close()


def test_when_a_chunk_links_outside_then_the_worker_refuses_that_well_only(server):
    conn = connect(server.address, timeout=20.0)
    try:
        execution = conn.submit(
            nuclei_count_pipeline(), "chunk-escape.ome.zarr", ["A01", "A02"]
        )
        execution.result(timeout=120)
        failed = execution.failed_wells
        assert set(failed) == {"A02"}
        assert "UnknownPlateError" in failed["A02"]
        assert "outside the server's plate roots" in failed["A02"]
        assert "A01" in execution.wells
        assert not execution.previews("A02")  # no pixels of the other plate
        assert execution.previews("A01")
    finally:
        conn.close()
