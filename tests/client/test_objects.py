"""``Execution.objects``: a finished well's object rows over a real loopback server."""

from __future__ import annotations

import pandas as pd
import pytest

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import Connection
from openhcs_nb.client.errors import RemotePlateError, RemoteUnknownWell
from openhcs_nb.results.store import ResultsStore

SMALL = "small.ome.zarr"


def test_when_a_wells_objects_are_read_then_they_equal_the_stored_rows(
    conn: Connection, demo_server
) -> None:
    execution = conn.submit(nuclei_count_pipeline(), SMALL, wells=["A03", "B01"])
    assert execution.wait(120)
    table = ResultsStore(demo_server.results_root / execution.id).load().objects
    for well, site in (("A03", 1), ("B01", 0)):
        got = execution.objects(well, site)
        want = table[(table["well"] == well) & (table["site"] == site)]
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True),
            want.reset_index(drop=True),
            check_dtype=False,
        )
        assert got["label"].dtype.kind == "i" and got["area"].dtype.kind == "i"
        assert got.attrs["units"]["area"] == "px²"
    only = execution.objects("A03", 1, object_set="nuclei")
    assert len(only) == len(execution.objects("A03", 1))
    assert set(only["object_set"]) == {"nuclei"}


def test_when_the_well_is_wrong_then_a_typed_one_line_error(conn: Connection) -> None:
    execution = conn.submit(nuclei_count_pipeline(), SMALL, wells=["A01"])
    assert execution.wait(120)
    with pytest.raises(RemoteUnknownWell) as caught:
        execution.objects("B02")
    assert "well B02 is not in execution" in str(caught.value)
    with pytest.raises(RemotePlateError) as caught:
        execution.objects("A01", 7)
    assert "no field 7" in str(caught.value) and "\n" not in str(caught.value)
    assert len(execution.objects("A01")) > 0  # the connection carries on
