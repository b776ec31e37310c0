from __future__ import annotations

import numpy as np
import pytest

from openhcs_nb.errors import UnknownWellError
from openhcs_nb.plates.model import (
    PlateLayout,
    WellImages,
    row_letters,
    split_well,
    well_name,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("B03", ("B", 3)), ("b3", ("B", 3)), (" AF48 ", ("AF", 48)), ("P24", ("P", 24))],
)
def test_when_well_name_is_split_then_row_and_column_come_back(text, expected):
    assert split_well(text) == expected
    assert split_well(well_name(*expected)) == expected


@pytest.mark.parametrize("text", ["", "3B", "B", "B03x", "ABC1", "B1234"])
def test_when_text_is_not_a_well_then_unknown_well_error(text):
    with pytest.raises(UnknownWellError, match="not a well name"):
        split_well(text)


def test_when_well_name_is_built_then_column_is_two_digits():
    assert well_name("B", 3) == "B03"
    assert well_name("AF", 48) == "AF48"
    assert [row_letters(i) for i in (0, 25, 26, 31)] == ["A", "Z", "AA", "AF"]


def test_when_well_images_selected_by_name_or_index_then_same_plane():
    data = np.arange(2 * 1 * 2 * 1 * 3 * 3).reshape(2, 1, 2, 1, 3, 3)
    images = WellImages("A01", data, ("DAPI", "GFP"))
    np.testing.assert_array_equal(images.sel(1, "GFP"), data[1, 0, 1, 0])
    np.testing.assert_array_equal(images.sel(1, 1), images.sel(1, "GFP"))


def test_when_layout_channel_names_repeat_then_value_error():
    with pytest.raises(ValueError, match="unique"):
        PlateLayout("p", ("A",), (1,), ("A01",), 1, ("x", "x"), 1, 1, "uint16", (4, 4))
