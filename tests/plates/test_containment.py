"""Plate files and metadata paths must stay inside the plate roots when confined.

Each test builds a real plate (tifffile, ome-zarr-py) under ``roots/`` and
plants a symlink or a metadata path that leads to ``outside/``.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from zarr_edits import edit_ome

from openhcs_nb.errors import PlateError, UnknownPlateError
from openhcs_nb.plates import Confinement, open_plate
from openhcs_nb.plates._containment import relative_key


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    path = tmp_path / "roots"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    return path


@pytest.fixture
def confine(roots: Path) -> Confinement:
    return Confinement.of([roots])


def relink(link: Path, target: Path) -> None:
    """Replace ``link`` (a file or folder) by a symlink to ``target``."""
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    else:
        link.unlink()
    link.symlink_to(target, target_is_directory=target.is_dir())


def secret_tiff(folder: Path, value: int = 7) -> Path:
    path = folder / "secret.tif"
    tifffile.imwrite(path, np.full((32, 40), value, np.uint16))
    return path


# ImageXpress ---------------------------------------------------------------


def ix_plate(ix_writer, roots: Path, name: str = "ix") -> Path:
    ix_writer(roots / name, wells=("A01", "A02"), sites=1, waves=1, time_folders=False)
    return roots / name


def test_when_an_imagexpress_tiff_links_outside_the_roots_then_opening_is_refused(
    ix_writer, roots, outside, confine, caplog
):
    plate = ix_plate(ix_writer, roots)
    relink(plate / "A02_s1_w1.tif", secret_tiff(outside))
    with caplog.at_level(logging.WARNING), pytest.raises(UnknownPlateError) as info:
        open_plate(plate, confine)
    assert info.value.code == "unknown_plate"
    assert "A02_s1_w1.tif" in str(info.value)
    assert "outside the server's plate roots" in str(info.value)
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert str(plate) in warning.getMessage()
    assert "A02_s1_w1.tif" in warning.getMessage()


def test_when_an_imagexpress_timepoint_folder_links_outside_then_it_is_refused(
    ix_writer, roots, outside, confine
):
    ix_writer(outside / "other", wells=("A01",), sites=1, waves=1)
    plate = roots / "ix"
    plate.mkdir()
    (plate / "TimePoint_1").symlink_to(outside / "other" / "TimePoint_1")
    with pytest.raises(UnknownPlateError, match="TimePoint_1"):
        open_plate(plate, confine)


def test_when_the_htd_file_links_outside_then_its_text_is_never_read(
    ix_writer, roots, outside, confine
):
    plate = ix_plate(ix_writer, roots)
    (outside / "private.txt").write_text('"WaveName1", "top secret"\n')
    (plate / "plate.HTD").symlink_to(outside / "private.txt")
    with pytest.raises(UnknownPlateError, match=r"plate\.HTD"):
        open_plate(plate, confine)


def test_when_an_imagexpress_link_stays_inside_the_roots_then_it_reads(
    ix_writer, roots, confine
):
    plate = ix_plate(ix_writer, roots)
    (roots / "shared").mkdir()
    relink(plate / "A02_s1_w1.tif", secret_tiff(roots / "shared", value=11))
    opened = open_plate(plate, confine)
    assert opened.confine == confine
    assert np.all(opened.read_image("A02", 0, 0) == 11)


def test_when_unconfined_then_an_outside_link_still_reads_as_before(
    ix_writer, roots, outside
):
    plate = ix_plate(ix_writer, roots)
    relink(plate / "A02_s1_w1.tif", secret_tiff(outside, value=5))
    opened = open_plate(plate)
    assert opened.confine is None
    assert np.all(opened.read_image("A02", 0, 0) == 5)


def test_when_a_tiff_becomes_an_outside_link_after_opening_then_reading_is_refused(
    ix_writer, roots, outside, confine
):
    plate = ix_plate(ix_writer, roots)
    opened = open_plate(plate, confine)
    relink(plate / "A02_s1_w1.tif", secret_tiff(outside))
    with pytest.raises(UnknownPlateError, match=r"A02_s1_w1\.tif"):
        opened.read_image("A02", 0, 0)


def test_when_a_confined_plate_is_pickled_then_the_copy_reopens_confined(
    ix_writer, roots, outside, confine
):
    plate = ix_plate(ix_writer, roots)
    data = pickle.dumps(open_plate(plate, confine))
    assert pickle.loads(data).confine == confine
    relink(plate / "A02_s1_w1.tif", secret_tiff(outside))
    with pytest.raises(UnknownPlateError, match=r"A02_s1_w1\.tif"):
        pickle.loads(data)  # what a worker process does with the plate


# OME-Zarr ------------------------------------------------------------------


def zarr_in(zarr_plate, folder: Path, name: str, version: str = "0.5", seed: int = 0):
    """A small ome-zarr-py plate moved to ``folder / name``; returns its arrays."""
    path, written = zarr_plate(
        version, rows=("A",), columns=("1", "2"), fields=1, seed=seed
    )
    shutil.move(path, folder / name)
    return folder / name, written


def level0(field: Path) -> Path:
    """The field's full-resolution array folder."""
    holder = {}
    edit_ome(field, lambda ome: holder.update(ome["multiscales"][0]["datasets"][0]))
    return field / holder["path"]


def first_chunk(array: Path) -> Path:
    """One chunk file of an array folder (not its metadata)."""
    meta = {"zarr.json", ".zarray", ".zattrs"}
    return next(
        p for p in sorted(array.rglob("*")) if p.is_file() and p.name not in meta
    )


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("bad", ["../../outside/p.ome.zarr/A/1", "/etc/A/1", "A//1"])
def test_when_plate_metadata_lists_a_path_leaving_the_plate_then_it_is_refused(
    zarr_plate, roots, confine, version, bad, caplog
):
    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr", version)
    edit_ome(plate, lambda ome: ome["plate"]["wells"][0].update(path=bad))
    with caplog.at_level(logging.WARNING), pytest.raises(UnknownPlateError) as info:
        open_plate(plate, confine)
    assert repr(bad) in str(info.value)
    assert any(bad in r.getMessage() for r in caplog.records)
    with pytest.raises(UnknownPlateError):  # never valid OME-Zarr, local or not
        open_plate(plate)


def test_when_well_metadata_lists_an_image_path_with_dotdot_then_it_is_refused(
    zarr_plate, roots, confine
):
    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr")
    bad = "../../../other.ome.zarr/A/1/0"
    edit_ome(plate / "A" / "1", lambda ome: ome["well"]["images"][0].update(path=bad))
    with pytest.raises(UnknownPlateError, match=r"\.\./\.\./\.\./other"):
        open_plate(plate, confine)


def test_when_a_dataset_path_has_dotdot_then_reading_that_field_is_refused(
    zarr_plate, roots, confine
):
    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr")
    field = plate / "A" / "2" / "0"
    edit_ome(field, lambda ome: ome["multiscales"][0]["datasets"][0].update(path=".."))
    opened = open_plate(plate, confine)
    with pytest.raises(UnknownPlateError, match="datasets"):
        opened.read_image("A02", 0, 0)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_when_a_chunk_file_links_into_a_plate_outside_then_reading_is_refused(
    zarr_plate, roots, outside, confine, version, caplog
):
    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr", version)
    other, _ = zarr_in(zarr_plate, outside, "other.ome.zarr", version, seed=3)
    chunk = first_chunk(level0(plate / "A" / "2" / "0"))
    target = other / chunk.relative_to(plate)
    relink(chunk, target)
    opened = open_plate(plate, confine)
    with caplog.at_level(logging.WARNING), pytest.raises(UnknownPlateError) as info:
        opened.read_well("A02")
    assert str(chunk) in str(info.value)
    assert any(str(target) in r.getMessage() for r in caplog.records)


def test_when_an_array_folder_links_into_a_plate_outside_then_opening_is_refused(
    zarr_plate, roots, outside, confine
):
    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr")
    other, _ = zarr_in(zarr_plate, outside, "other.ome.zarr", seed=3)
    array = level0(plate / "A" / "1" / "0")
    relink(array, other / array.relative_to(plate))
    with pytest.raises(UnknownPlateError, match="outside the server's plate roots"):
        open_plate(plate, confine)


def test_when_a_well_group_links_into_a_plate_outside_then_opening_is_refused(
    zarr_plate, roots, outside, confine
):
    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr")
    other, _ = zarr_in(zarr_plate, outside, "other.ome.zarr", seed=3)
    relink(plate / "A" / "2", other / "A" / "2")
    with pytest.raises(UnknownPlateError, match="A/2"):
        open_plate(plate, confine)


def test_when_an_array_folder_links_inside_the_roots_then_it_reads_through_it(
    zarr_plate, roots, confine
):
    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr")
    other, other_arrays = zarr_in(zarr_plate, roots, "other.ome.zarr", seed=3)
    array = level0(plate / "A" / "2" / "0")
    relink(array, other / array.relative_to(plate))
    images = open_plate(plate, confine).read_well("A02")
    assert np.array_equal(images.data[0], other_arrays["A/2"][0])


def test_when_unconfined_then_a_chunk_linked_outside_still_reads_as_before(
    zarr_plate, roots, outside
):
    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr")
    other, other_arrays = zarr_in(zarr_plate, outside, "other.ome.zarr", seed=3)
    array = level0(plate / "A" / "2" / "0")
    relink(array, other / array.relative_to(plate))
    images = open_plate(plate).read_well("A02")
    assert np.array_equal(images.data[0], other_arrays["A/2"][0])


def test_when_a_confined_plan_reopens_its_plate_then_the_worker_is_confined(
    zarr_plate, roots, outside, confine
):
    from openhcs_nb import nuclei_count_pipeline
    from openhcs_nb.execution.compile import compile_pipeline
    from openhcs_nb.execution.well import open_cached, run_well

    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr")
    other, _ = zarr_in(zarr_plate, outside, "other.ome.zarr", seed=3)
    plan = compile_pipeline(
        nuclei_count_pipeline(), open_plate(plate, confine), ["A02"]
    )
    plan = pickle.loads(pickle.dumps(plan))  # as sent to a worker process
    assert plan.confine == confine
    chunk = first_chunk(level0(plate / "A" / "2" / "0"))
    relink(chunk, other / chunk.relative_to(plate))
    open_cached.cache_clear()
    result = run_well(plan, "A02")  # no plate given: reopened by reference
    assert result.error is not None
    assert result.error.type == "UnknownPlateError"
    assert str(chunk) in result.error.message
    assert not result.previews


def test_when_roots_are_given_through_a_link_then_their_real_paths_confine(
    roots, tmp_path
):
    link = tmp_path / "roots-link"
    link.symlink_to(roots)
    confine = Confinement.of([link])
    assert confine.roots == (os.path.realpath(roots),)
    assert confine.contains(os.path.realpath(roots / "x"))
    assert not confine.contains(os.path.realpath(tmp_path / "rootsx"))


@pytest.mark.parametrize("bad", [".", "A/./1", "A\\1", "A/1\x00", "", "../A"])
def test_when_a_metadata_path_is_not_a_plain_relative_key_then_it_is_refused(bad):
    with pytest.raises(UnknownPlateError, match="not a plain relative path"):
        relative_key(bad, "plate metadata")
    assert relative_key("A/1/", "plate metadata") == "A/1"


def test_when_a_chunk_is_a_fifo_then_a_confined_read_fails_instead_of_hanging(
    zarr_plate, roots, confine
):
    plate, _ = zarr_in(zarr_plate, roots, "p.ome.zarr")
    chunk = first_chunk(level0(plate / "A" / "2" / "0"))
    chunk.unlink()
    os.mkfifo(chunk)
    opened = open_plate(plate, confine)
    with pytest.raises(PlateError, match="not a regular file"):
        opened.read_well("A02")


def test_when_a_path_is_swapped_for_a_link_after_the_check_then_open_refuses(
    roots, outside, confine, monkeypatch, caplog
):
    secret = secret_tiff(outside)
    (roots / "last").symlink_to(secret)  # the file itself becomes a link
    (roots / "folder").symlink_to(outside)  # a folder on the way becomes one
    # As if both were swapped in after the check: the check sees plain paths.
    monkeypatch.setattr(os.path, "realpath", os.fspath)
    with caplog.at_level(logging.WARNING), pytest.raises(UnknownPlateError):
        confine.open(roots / "last", "p")
    assert "now a link" in caplog.records[-1].getMessage()
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("the file actually opened is checked through /proc only")
    with pytest.raises(UnknownPlateError, match="outside the server's plate roots"):
        confine.open(roots / "folder" / secret.name, "p")
