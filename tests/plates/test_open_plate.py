from __future__ import annotations

import pickle

import pytest

from openhcs_nb.errors import UnknownPlateError
from openhcs_nb.plates import SOURCES, open_plate
from openhcs_nb.plates.imagexpress import ImageXpressPlate
from openhcs_nb.plates.ome_zarr import OmeZarrPlate


def test_sources_are_listed_by_hand_in_order():
    assert list(SOURCES) == ["ome-zarr", "imagexpress"]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_when_ref_is_an_ome_zarr_plate_then_ome_zarr_source_opens_it(
    zarr_plate, version
):
    path, _ = zarr_plate(version)
    plate = open_plate(str(path))
    assert isinstance(plate, OmeZarrPlate)
    assert open_plate(plate) is plate


def test_when_ref_is_an_imagexpress_folder_then_imagexpress_source_opens_it(
    tmp_path, ix_writer
):
    ix_writer(tmp_path / "ix")
    plate = open_plate(tmp_path / "ix")
    assert isinstance(plate, ImageXpressPlate)
    assert plate.ref == str((tmp_path / "ix").resolve())


def test_when_path_does_not_exist_then_unknown_plate_error(tmp_path):
    with pytest.raises(UnknownPlateError, match="does not exist"):
        open_plate(tmp_path / "nope")


def test_when_folder_is_not_a_plate_then_unknown_plate_error(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x", encoding="utf-8")
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    for ref in (tmp_path / "docs", tmp_path / "file.txt"):
        with pytest.raises(UnknownPlateError, match="not a plate"):
            open_plate(ref)


@pytest.mark.parametrize("source", ["ome-zarr", "imagexpress"])
def test_when_plate_pickled_then_it_reopens_with_equal_layout(
    tmp_path, zarr_plate, ix_writer, source
):
    if source == "ome-zarr":
        path, _ = zarr_plate("0.4")
    else:
        path = tmp_path / "ix"
        ix_writer(path)
    plate = open_plate(path)
    clone = pickle.loads(pickle.dumps(plate))
    assert type(clone) is type(plate)
    assert clone.layout == plate.layout
    assert len(pickle.dumps(plate)) < 1000  # a reference, never pixels
