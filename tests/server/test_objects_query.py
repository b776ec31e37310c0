"""WellObjects: one finished well's object rows, from a real server over loopback."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from multiuser import Users, start_curve_server
from raw_client import RawClient
from server_process import ServerProcess

from openhcs_nb import Pipeline, nuclei_count_pipeline
from openhcs_nb.protocol import (
    Cancel,
    ErrorReply,
    Hello,
    Status,
    StatusReply,
    Submit,
    Submitted,
    WellObjects,
    WellObjectsReply,
    unpack_array,
)
from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server.audit import read_audit
from openhcs_nb.server.objects_query import column_unit

SMALL = "small.ome.zarr"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, plates_root: Path):
    """alice's measured run of A01 and B02, and her unmeasured run of A02."""
    server, users = start_curve_server(
        tmp_path_factory.mktemp("objects"), plates_root, ["alice", "bob"]
    )
    alice = _client(server, users, "alice")
    measured = _run(alice, nuclei_count_pipeline(), ["A01", "B02"])
    segment_only = Pipeline("segment", nuclei_count_pipeline().steps[:1])
    unmeasured = _run(alice, segment_only, ["A02"])
    yield server, users, alice, measured, unmeasured
    server.kill()


def _client(server: ServerProcess, users: Users, name: str) -> RawClient:
    client = RawClient(server.address, keys=users.raw_keys(name))
    reply, _ = client.call(Hello(rid=client.rid(), client="test/0"))
    assert reply.user == name
    return client


def _submit(client: RawClient, pipeline: Pipeline, wells: list[str]) -> str:
    reply, _ = client.call(
        Submit(
            rid=client.rid(), pipeline_code=pipeline.to_code(), plate=SMALL, wells=wells
        )
    )
    assert isinstance(reply, Submitted), reply
    return reply.execution_id


def _run(client: RawClient, pipeline: Pipeline, wells: list[str]) -> str:
    execution_id = _submit(client, pipeline, wells)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        reply, _ = client.call(Status(rid=client.rid(), execution_id=execution_id))
        assert isinstance(reply, StatusReply), reply
        if reply.execution.state in ("done", "failed", "cancelled"):
            assert reply.execution.state == "done", reply
            return execution_id
        time.sleep(0.2)
    raise TimeoutError(execution_id)


def _ask(client: RawClient, **fields: object):
    return client.call(WellObjects(rid=client.rid(), **fields))


def _frame(reply: WellObjectsReply, buffers: list) -> pd.DataFrame:
    data = {ref.name: np.array(unpack_array(ref, buffers)) for ref in reply.numbers}
    data |= reply.text
    return pd.DataFrame(data)[reply.columns]


def test_when_a_finished_well_is_asked_then_its_rows_equal_the_objects_table(
    shared,
) -> None:
    server, _users, alice, measured, _ = shared
    table = ResultsStore(server.results_root / measured).load().objects
    for well, site in (("A01", 0), ("B02", 1)):
        reply, buffers = _ask(alice, execution_id=measured, well=well, site=site)
        assert isinstance(reply, WellObjectsReply), reply
        want = table[(table["well"] == well) & (table["site"] == site)]
        assert reply.rows == len(want) > 0
        got = _frame(reply, buffers)
        assert list(got.columns) == list(want.columns)
        for name in want.columns:
            if name in reply.text:
                assert list(got[name]) == [str(v) for v in want[name]], name
            else:
                np.testing.assert_array_equal(got[name], want[name].to_numpy(), name)
        assert reply.units["area"] == "px²" and reply.units["centroid_x"] == "px"
        assert "label" not in reply.units
        assert not buffers[0].nbytes % reply.rows  # one frame per column


def test_when_one_object_set_is_asked_then_only_its_rows_come(shared) -> None:
    _server, _users, alice, measured, _ = shared
    reply, _ = _ask(alice, execution_id=measured, well="a1", object_set="nuclei")
    assert isinstance(reply, WellObjectsReply), reply
    assert reply.well == "A01"  # spelt as the plate spells it
    assert set(reply.text["object_set"]) == {"nuclei"}
    reply, _ = _ask(alice, execution_id=measured, well="A01", object_set="cells")
    assert isinstance(reply, ErrorReply), reply
    assert reply.code == "plate_error"
    assert "no object set 'cells'" in reply.message and "nuclei" in reply.message


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"well": "H12"}, "unknown_well", "not in execution"),
        ({"well": "A01", "site": 5}, "plate_error", "no field 5 (fields 0..1)"),
        ({"well": "A01", "site": -1}, "plate_error", "no field -1"),
        ({"well": "A02"}, "plate_error", "no objects table for well A02"),
        ({"well": "nonsense"}, "unknown_well", "not a well name"),
    ],
)
def test_when_the_request_is_bad_then_one_clear_line(
    shared, fields: dict[str, object], code: str, words: str
) -> None:
    _server, _users, alice, measured, unmeasured = shared
    execution_id = unmeasured if fields["well"] == "A02" else measured
    reply, buffers = _ask(alice, execution_id=execution_id, **fields)
    assert isinstance(reply, ErrorReply), reply
    assert reply.code == code and words in reply.message, reply.message
    assert "\n" not in reply.message and not reply.remote_traceback and not buffers


def test_when_bob_asks_for_alices_objects_then_it_is_as_if_unknown(shared) -> None:
    server, users, _alice, measured, _ = shared
    bob = _client(server, users, "bob")
    theirs, _ = _ask(bob, execution_id=measured, well="A01")
    nobody, _ = _ask(bob, execution_id="no-such-run", well="A01")
    assert isinstance(theirs, ErrorReply) and isinstance(nobody, ErrorReply)
    assert theirs.code == nobody.code == "unknown_execution"
    assert theirs.message.replace(measured, "X") == nobody.message.replace(
        "no-such-run", "X"
    )
    entries = read_audit(server.results_root / "audit.jsonl")
    mine = [e for e in entries if e.action == "well_objects"]
    assert any(
        e.user == "bob" and e.outcome == "refused" and e.detail == "not the owner"
        for e in mine
    )
    assert any(e.user == "alice" and e.outcome == "ok" for e in mine)


def test_when_a_well_has_not_finished_then_it_says_so(shared) -> None:
    _server, _users, alice, _measured, _ = shared
    from client_helpers import slow_pipeline

    execution_id = _submit(alice, slow_pipeline(blurs=300), ["B03"])
    try:
        reply, _ = _ask(alice, execution_id=execution_id, well="B03")
    finally:
        alice.call(Cancel(rid=alice.rid(), execution_id=execution_id))
    assert isinstance(reply, ErrorReply), reply
    assert reply.code == "plate_error"
    assert reply.message in (
        "well B03 has not started yet",
        "well B03 is still running",
    )


def test_units_are_named_only_where_the_measurement_defines_them() -> None:
    assert column_unit("major_axis_length") == "px"
    assert column_unit("orientation") == "rad"
    assert column_unit("intensity_mean_DAPI") is None
