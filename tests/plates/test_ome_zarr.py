from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from openhcs_nb.errors import PlateError, UnknownPlateError, UnknownWellError
from openhcs_nb.plates.ome_zarr import OmeZarrPlate, detect, open_ome_zarr_plate

VERSIONS = ("0.4", "0.5")
WELLS = ("A01", "A02", "A03", "B01", "B02", "B03")


def _zarr_path(well: str) -> str:
    return f"{well[0]}/{int(well[1:])}"


@pytest.mark.parametrize("version", VERSIONS)
def test_when_plate_written_by_ome_zarr_py_then_layout_matches(zarr_plate, version):
    path, _ = zarr_plate(version)
    plate = open_ome_zarr_plate(path)
    lay = plate.layout
    assert isinstance(plate, OmeZarrPlate)
    assert lay.name == "tiny"
    assert lay.rows == ("A", "B")
    assert lay.columns == (1, 2, 3)
    assert lay.wells == WELLS
    assert lay.fields == 2
    assert lay.channels == ("DAPI", "GFP")
    assert (lay.z, lay.t) == (1, 1)
    assert lay.dtype == "uint16"
    assert lay.shape == (64, 48)
    assert plate.ref == str(path.resolve())


@pytest.mark.parametrize("version", VERSIONS)
def test_when_reading_planes_then_pixels_equal_the_written_arrays(zarr_plate, version):
    path, written = zarr_plate(version)
    plate = open_ome_zarr_plate(path)
    for well in WELLS:
        stack = written[_zarr_path(well)]  # (field, t, c, z, y, x)
        for site in range(2):
            for c in range(2):
                np.testing.assert_array_equal(
                    plate.read_image(well, site, c), stack[site, 0, c, 0]
                )


@pytest.mark.parametrize("version", VERSIONS)
def test_when_reading_a_well_then_it_equals_the_written_fields(zarr_plate, version):
    path, written = zarr_plate(version)
    plate = open_ome_zarr_plate(path)
    images = plate.read_well("b2")
    assert images.well == "B02"
    assert images.data.shape == (2, 1, 2, 1, 64, 48)
    np.testing.assert_array_equal(images.data, written["B/2"])
    np.testing.assert_array_equal(images.sel(1, "GFP"), written["B/2"][1, 0, 1, 0])


@pytest.mark.parametrize("version", VERSIONS)
def test_when_image_axes_are_cyx_then_z_and_t_are_one(zarr_plate, version):
    path, written = zarr_plate(version, axes="cyx", n_channels=3, channels=None)
    plate = open_ome_zarr_plate(path)
    assert (plate.layout.z, plate.layout.t) == (1, 1)
    assert plate.channels == ("C0", "C1", "C2")
    np.testing.assert_array_equal(plate.read_image("A03", 1, 2), written["A/3"][1, 2])
    data = plate.read_well("A03").data
    assert data.shape == (2, 1, 3, 1, 64, 48)
    np.testing.assert_array_equal(data[:, 0, :, 0], written["A/3"])


@pytest.mark.parametrize("version", VERSIONS)
def test_when_a_listed_well_is_missing_then_listing_works_and_reading_says_so(
    zarr_plate, version
):
    path, _ = zarr_plate(version, skip=("B/3",))
    plate = open_ome_zarr_plate(path)
    assert plate.wells == WELLS[:-1]
    with pytest.raises(UnknownWellError, match=r"B03 is listed but cannot be read"):
        plate.read_image("B03", 0, 0)
    with pytest.raises(UnknownWellError, match="B03"):
        plate.read_well("B03")


def test_when_well_is_not_on_plate_then_unknown_well_error(zarr_plate):
    path, _ = zarr_plate("0.4")
    plate = open_ome_zarr_plate(path)
    with pytest.raises(UnknownWellError, match="no well 'H12'"):
        plate.read_image("H12", 0, 0)


@pytest.mark.parametrize(
    ("site", "channel", "z", "match"),
    [(2, 0, 0, "no field 2"), (0, 2, 0, "channel index 2"), (0, 0, 1, "z index 1")],
)
def test_when_index_out_of_range_then_plate_error_names_it(
    zarr_plate, site, channel, z, match
):
    path, _ = zarr_plate("0.5")
    plate = open_ome_zarr_plate(path)
    with pytest.raises(PlateError, match=match):
        plate.read_image("A01", site, channel, z)


@pytest.mark.parametrize("version", VERSIONS)
def test_when_other_planes_are_corrupt_then_one_plane_still_reads(zarr_plate, version):
    path, written = zarr_plate(version)
    field = path / "A" / "1" / "0" / "s0"
    chunk_files = sorted(
        p for p in field.rglob("*") if p.is_file() and "." not in p.name
    )
    chunk_files = [p for p in chunk_files if p.name != "zarr.json"]
    # One chunk per (t, c, z) plane: garble the second channel's only.
    for chunk in chunk_files:
        if chunk.relative_to(field).parts[-4:-3] == ("1",):
            chunk.write_bytes(b"not a chunk")
    plate = open_ome_zarr_plate(path)
    np.testing.assert_array_equal(
        plate.read_image("A01", 0, 0), written["A/1"][0, 0, 0, 0]
    )
    with pytest.raises(Exception):  # noqa: B017  (zarr's own decode error)
        plate.read_image("A01", 0, 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_when_pickled_then_it_reopens_by_ref(zarr_plate, version):
    path, written = zarr_plate(version)
    plate = open_ome_zarr_plate(path)
    clone = pickle.loads(pickle.dumps(plate))
    assert clone is not plate
    assert clone.layout == plate.layout
    assert clone.ref == plate.ref
    np.testing.assert_array_equal(
        clone.read_image("A02", 1, 0), written["A/2"][1, 0, 0, 0]
    )


def test_when_path_has_plate_metadata_then_detected(zarr_plate, tmp_path):
    path, _ = zarr_plate("0.5")
    assert detect(path)
    assert not detect(path / "A" / "1")  # a well, not a plate
    assert not detect(tmp_path / "nothing-here")
    assert not detect(tmp_path)


def test_when_metadata_is_not_json_then_detect_is_false_and_open_fails(tmp_path):
    bad = tmp_path / "bad.zarr"
    bad.mkdir()
    (bad / ".zattrs").write_text("{ not json", encoding="utf-8")
    assert not detect(bad)
    with pytest.raises(PlateError, match="cannot read OME-Zarr metadata"):
        open_ome_zarr_plate(bad)


def test_when_group_has_no_plate_metadata_then_unknown_plate(tmp_path):
    group = tmp_path / "image.zarr"
    group.mkdir()
    (group / "zarr.json").write_text(
        '{"zarr_format": 3, "node_type": "group", "attributes": {}}', encoding="utf-8"
    )
    with pytest.raises(UnknownPlateError, match="no plate metadata"):
        open_ome_zarr_plate(Path(group))
