from __future__ import annotations

import pickle

import numpy as np
import pytest
import tifffile

from openhcs_nb.errors import PlateError, UnknownWellError
from openhcs_nb.plates._htd import parse_htd, read_htd
from openhcs_nb.plates.imagexpress import (
    ImageXpressPlate,
    detect,
    open_imagexpress_plate,
)

HTD = """"HTSInfoFile", Version 1.0
"Description", "tiny"
"TimePoints", 1
"ZSeries", FALSE
"Waves", TRUE
"NWavelengths", 2
"WaveName1", "DAPI"
"WaveName2", "GFP"
"XWells", 12
"YWells", 8
"Sites", TRUE
"XSites", 2
"YSites", 1
"EndFile"
"""
UUID = "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"

NAMINGS = {
    "plain": lambda w, s, c: f"{w}_s{s}_w{c}.tif",
    "padded sites": lambda w, s, c: f"{w}_s{s:03d}_w{c}.tif",
    "hex suffix": lambda w, s, c: f"{w}_s{s}_w{c}_{(s * 7919 + c):08x}.tif",
    "attached uuid, upper case": lambda w, s, c: f"{w}_s{s}_w{c}{UUID}.TIF",
    "tiff extension": lambda w, s, c: f"{w}_s{s}_w{c}.tiff",
}


def _assert_all_planes(plate, planes):
    for (well, s, c, z, t), expected in planes.items():
        np.testing.assert_array_equal(plate.read_image(well, s, c, z, t), expected)


@pytest.mark.parametrize("naming", NAMINGS.values(), ids=NAMINGS.keys())
def test_when_files_use_a_known_naming_then_every_plane_reads_back(
    tmp_path, ix_writer, naming
):
    planes = ix_writer(tmp_path / "plate", name=naming, htd=HTD)
    plate = open_imagexpress_plate(tmp_path / "plate")
    assert isinstance(plate, ImageXpressPlate)
    assert plate.wells == ("A01", "A02", "B03")
    assert plate.fields == (0, 1)
    assert plate.channels == ("DAPI", "GFP")
    assert plate.shape == (32, 40)
    assert plate.dtype == np.uint16
    _assert_all_planes(plate, planes)


def test_when_htd_gives_plate_size_then_grid_is_the_htd_one(tmp_path, ix_writer):
    ix_writer(tmp_path / "p", htd=HTD)
    lay = open_imagexpress_plate(tmp_path / "p").layout
    assert lay.rows == tuple("ABCDEFGH")
    assert lay.columns == tuple(range(1, 13))


def test_when_there_is_no_htd_then_layout_is_inferred_from_files(tmp_path, ix_writer):
    planes = ix_writer(tmp_path / "p", wells=("A01", "C05"), sites=3, waves=1)
    plate = open_imagexpress_plate(tmp_path / "p")
    lay = plate.layout
    assert lay.channels == ("w1",)
    assert lay.fields == 3
    assert (lay.rows, lay.columns) == (tuple("ABCD"), tuple(range(1, 7)))  # 24-well
    assert lay.name == "p"
    _assert_all_planes(plate, planes)


def test_when_single_site_and_wave_omit_their_parts_then_read(tmp_path, ix_writer):
    planes = ix_writer(
        tmp_path / "p", sites=1, waves=1, name=lambda w, s, c: f"{w}.tif"
    )
    plate = open_imagexpress_plate(tmp_path / "p")
    assert (plate.layout.fields, plate.channels) == (1, ("w1",))
    _assert_all_planes(plate, planes)


def test_when_single_site_omits_s_part_then_waves_still_split(tmp_path, ix_writer):
    planes = ix_writer(tmp_path / "p", sites=1, name=lambda w, s, c: f"{w}_w{c}.tif")
    plate = open_imagexpress_plate(tmp_path / "p")
    assert plate.channels == ("w1", "w2")
    _assert_all_planes(plate, planes)


def test_when_z_steps_and_timepoints_exist_then_all_planes_read(tmp_path, ix_writer):
    planes = ix_writer(tmp_path / "p", z=3, t=2, wells=("B02",), htd=HTD)
    plate = open_imagexpress_plate(tmp_path / "p")
    assert (plate.layout.z, plate.layout.t) == (3, 2)
    _assert_all_planes(plate, planes)
    data = plate.read_well("B02").data
    assert data.shape == (2, 2, 2, 3, 32, 40)
    np.testing.assert_array_equal(data[1, 1, 0, 2], planes[("B02", 1, 0, 2, 1)])


def test_when_projections_and_thumbnails_sit_beside_then_they_are_ignored(
    tmp_path, ix_writer
):
    root = tmp_path / "p"
    planes = ix_writer(root, z=2, wells=("A01",))
    junk = np.full((8, 8), 7, np.uint8)  # wrong size: reading it would fail
    tifffile.imwrite(root / "TimePoint_1" / "A01_s1_w1.tif", junk)  # projection
    tifffile.imwrite(root / "TimePoint_1" / "ZStep_1" / "A01_s1_w1_thumb.tif", junk)
    plate = open_imagexpress_plate(root)
    assert plate.layout.z == 2
    _assert_all_planes(plate, planes)


def test_when_images_sit_in_the_root_then_they_are_timepoint_one(tmp_path, ix_writer):
    planes = ix_writer(tmp_path / "p", time_folders=False)
    plate = open_imagexpress_plate(tmp_path / "p")
    assert plate.layout.t == 1
    _assert_all_planes(plate, planes)


def test_when_reading_then_nothing_in_the_folder_changes(
    tmp_path, ix_writer, take_snapshot
):
    root = tmp_path / "p"
    ix_writer(root, z=2, htd=HTD)
    before = take_snapshot(root)
    plate = open_imagexpress_plate(root)
    for well in plate.wells:
        plate.read_well(well)
    pickle.loads(pickle.dumps(plate)).read_image("A01", 0, 0)
    assert take_snapshot(root) == before


def test_when_two_files_claim_one_plane_then_plate_error_names_both(
    tmp_path, ix_writer
):
    root = tmp_path / "p"
    ix_writer(root, wells=("A01",), sites=1, waves=1)
    tifffile.imwrite(
        root / "TimePoint_1" / "A01_s1_w1_copy.tif", np.zeros((32, 40), np.uint16)
    )
    with pytest.raises(PlateError, match=r"two files for well A01.*_copy\.tif"):
        open_imagexpress_plate(root)


def test_when_a_plane_file_is_missing_then_reading_it_names_it(tmp_path, ix_writer):
    root = tmp_path / "p"
    ix_writer(root)
    (root / "TimePoint_1" / "A02_s2_w1.tif").unlink()
    plate = open_imagexpress_plate(root)
    with pytest.raises(PlateError, match="no file for site 2, wavelength 1"):
        plate.read_image("A02", 1, 0)
    with pytest.raises(UnknownWellError):
        plate.read_image("H01", 0, 0)
    with pytest.raises(PlateError, match="channel index 5"):
        plate.read_image("A01", 0, 5)


def test_when_a_file_has_another_size_then_reading_it_fails_clearly(
    tmp_path, ix_writer
):
    root = tmp_path / "p"
    ix_writer(root)
    tifffile.imwrite(
        root / "TimePoint_1" / "B03_s1_w2.tif", np.zeros((5, 5), np.uint16)
    )
    plate = open_imagexpress_plate(root)
    with pytest.raises(PlateError, match=r"B03_s1_w2\.tif: \(5, 5\)"):
        plate.read_image("B03", 0, 1)


def test_when_folder_holds_no_plate_then_detect_is_false(tmp_path, ix_writer):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello", encoding="utf-8")
    tifffile.imwrite(tmp_path / "notes" / "photo.tif", np.zeros((4, 4), np.uint8))
    ix_writer(tmp_path / "plate")
    assert not detect(tmp_path / "empty")
    assert not detect(tmp_path / "notes")
    assert not detect(tmp_path / "missing")
    assert detect(tmp_path / "plate")


def test_when_htd_is_messy_then_known_keys_are_still_read():
    text = (
        '\ufeff"XWells",24\r\n'
        '  "YWells" ,  16\n'
        "garbage line without quotes\n"
        '"Sites", TRUE\n"XSites", 3\n"YSites", 3\n'
        '"WaveName1", "Hoechst 33342"\n"WaveName3", "Cy5"\n'
        '"ZSeries", TRUE\n"NZSteps", 5\n'
        '"NWavelengths", 3\n"Unknown", 1, 2, 3\n'
    )
    info = parse_htd(text.lstrip("\ufeff"))
    assert (info.x_wells, info.y_wells) == (24, 16)
    assert info.sites == 9
    assert info.z_steps == 5
    assert info.wavelengths == 3
    assert info.wave_names == {1: "Hoechst 33342", 3: "Cy5"}


def test_when_htd_says_no_sites_or_z_then_they_are_one():
    info = parse_htd('"Sites", FALSE\n"ZSeries", FALSE\n"NZSteps", 4\n')
    assert (info.sites, info.z_steps) == (1, 1)


def test_when_htd_is_latin1_then_it_is_still_read(tmp_path):
    (tmp_path / "x.htd").write_bytes('"WaveName1", "Alexa 488 µm"\n'.encode("latin-1"))
    info = read_htd(tmp_path)
    assert info is not None
    assert info.wave_names == {1: "Alexa 488 µm"}
    (tmp_path / "sub").mkdir()
    assert read_htd(tmp_path / "sub") is None


def test_when_htd_names_repeat_then_channel_names_are_made_unique(tmp_path, ix_writer):
    htd = '"WaveName1", "DAPI"\n"WaveName2", "DAPI"\n'
    ix_writer(tmp_path / "p", htd=htd)
    assert open_imagexpress_plate(tmp_path / "p").channels == ("DAPI", "DAPI_1")
