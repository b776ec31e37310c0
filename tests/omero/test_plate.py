"""The OMERO plate source against the fixture repository and the double.

Every path reader is checked against the Ice-fallback decoding of the same
image (a second plate allowed only ``ice``) and against ground truth drawn
before any file was written: bit-identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openhcs_nb.errors import PlateError, UnknownPlateError, UnknownWellError
from openhcs_nb.plates._omero_files import OriginalFiles
from openhcs_nb.plates.omero import open_omero_plate, parse_ref

EXPECTED_PATHS = {
    101: {("A01", 0): "original", ("B03", 1): "original"},
    102: {("A01", 0): "original", ("B02", 1): "original"},
    103: {("A01", 0): "romio", ("A02", 0): "ice"},
    104: {("A01", 1): "original", ("A02", 0): "original"},
    106: {("A01", 0): "original"},
}


def _truth(root: Path, image_id: int) -> np.ndarray:
    return np.load(root / "truth" / f"{image_id}.npy")


def test_when_plate_is_opened_then_layout_maps_omero_wells_and_channels(bob):
    plate = open_omero_plate("omero:101", session=bob)
    lay = plate.layout
    assert lay.name == "OME-TIFF plate"
    assert lay.wells == ("A01", "A02", "B03")  # rows/columns 0-based in OMERO
    assert lay.rows == ("A", "B") and lay.columns == (1, 2, 3)
    assert (lay.fields, lay.z, lay.t) == (2, 2, 1)
    assert lay.channels == ("DAPI", "GFP")
    assert (lay.dtype, lay.shape) == ("uint16", (64, 64))
    assert plate.meta.acquisitions == ((41, "Run 1"),)
    # The fixture stored series in reverse field order: A01 field 0 is series 5.
    assert plate.image("A01", 0).series == 5
    assert plate.well_id("B03") == 10102


@pytest.mark.parametrize("plate_id", sorted(EXPECTED_PATHS))
def test_when_read_by_fastest_path_then_pixels_equal_ice_fallback(
    plate_id, join, repo_root
):
    fast = open_omero_plate(f"omero:{plate_id}", session=join())
    ice = open_omero_plate(f"omero:{plate_id}", session=join(pixel_paths=("ice",)))
    for (well, site), path in EXPECTED_PATHS[plate_id].items():
        assert fast.pixel_path(well, site) == path
    for (well, site), image in sorted(fast.meta.images.items()):
        assert ice.pixel_path(well, site) == "ice"
        truth = _truth(repo_root, image.image_id)
        by_path = fast.read_well(well).data[site]
        by_ice = ice.read_well(well).data[site]
        assert by_path.dtype == by_ice.dtype == truth.dtype
        assert by_path.tobytes() == by_ice.tobytes() == truth.tobytes()
        # single planes too, through read_image
        t, c, z = image.size_t - 1, image.size_c - 1, image.size_z - 1
        plane = fast.read_image(well, site, c, z, t)
        assert plane.tobytes() == ice.read_image(well, site, c, z, t).tobytes()


def test_when_paths_are_read_then_counters_say_which_and_ice_is_not_called(bob, server):
    plate = open_omero_plate("omero:103", session=bob)
    plate.read_well("A01")  # romio: 2 t x 3 c x 1 z planes
    assert plate.planes_read == {"original": 0, "romio": 6, "ice": 0}
    assert server.plane_calls == 0
    plate.read_image("A02", 0, channel=2, z=0, t=1)  # no buffer: Ice
    assert plate.planes_read["ice"] == 1
    assert server.plane_calls == 1


def test_when_acquisition_is_chosen_then_only_its_fields_are_the_plate(bob):
    default = open_omero_plate("omero:103", session=bob)
    second = open_omero_plate("omero:103?acquisition=62", session=bob)
    assert default.meta.acquisitions == ((61, "Run 1"), (62, "Run 2"))
    assert default.meta.acquisition_id == 61
    assert second.ref == "omero:103?acquisition=62"
    assert second.image("A01", 0).pixels_id == 1_234_999_001
    assert second.pixel_path("A02", 0) == "romio"
    with pytest.raises(PlateError, match=r"no acquisition 77 .*61 \(Run 1\)"):
        open_omero_plate("omero:103?acquisition=77", session=bob)


def test_when_no_allowed_path_can_read_then_error_names_each_reason(join):
    plate = open_omero_plate("omero:103", session=join(pixel_paths=("original",)))
    with pytest.raises(
        PlateError, match=r"A01 field 0 .*original: no reader.*scan\.czi"
    ):
        plate.read_image("A01", 0, 0)


def test_when_repository_is_not_mounted_then_plate_falls_back_to_ice(join, server):
    plate = open_omero_plate("omero:101", session=join(data_dir=None, managed_dir=None))
    assert plate.pixel_path("A01", 0) == "ice"
    assert any("no managed_dir" in why for why in plate.why_not("A01", 0))
    plate.read_image("A01", 0, 1, 1)
    assert server.plane_calls == 1


def test_when_well_or_index_is_wrong_then_errors_name_it(bob):
    plate = open_omero_plate("omero:102", session=bob)
    with pytest.raises(UnknownWellError, match="A02"):
        plate.read_image("A02", 0, 0)
    with pytest.raises(PlateError, match="channel index 2 is out of range"):
        plate.read_image("A01", 0, 2)
    with pytest.raises(PlateError, match="no field 2"):
        plate.read_image("A01", 2, 0)


@pytest.mark.parametrize("ref", ["omero:", "omero:abc", "omero:12?run=3", "12"])
def test_when_ref_is_malformed_then_unknown_plate(ref):
    with pytest.raises(UnknownPlateError, match="not an OMERO plate reference"):
        parse_ref(ref)


def test_when_fileset_path_climbs_out_then_original_path_is_refused(tmp_path):
    files = OriginalFiles(tmp_path, {1: ("user_2/../../etc/passwd",)})

    class Image:  # only the fields OriginalFiles reads
        fileset_id, image_id = 1, 9

    assert files.source(Image()) is None  # type: ignore[arg-type]
    assert "outside the repository" in files.why[9]
