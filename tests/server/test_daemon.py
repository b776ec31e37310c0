"""The execution server as a real process on 127.0.0.1, driven over its protocol."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from raw_client import RawClient

from openhcs_nb import Pipeline, Step, nuclei_count_pipeline, run_local
from openhcs_nb.functions import builtin_catalogue, gaussian_blur
from openhcs_nb.protocol import (
    PROTOCOL_VERSION,
    Cancel,
    CancelReply,
    ErrorReply,
    Fetch,
    Finished,
    Hello,
    HelloReply,
    ListExecutions,
    ListPlates,
    PlateInfo,
    Preview,
    PreviewReply,
    Status,
    Submit,
    Submitted,
    WellDone,
    WellFailed,
    unpack_arrays,
)

SMALL = "small.ome.zarr"


def slow_pipeline(blurs: int = 40) -> Pipeline:
    """The default pipeline behind a chain of blurs, so wells take a while."""
    blur = Step(
        name="slow",
        func={1: [(gaussian_blur, {"sigma": 6.0})] * blurs},
        group_by="channel",
    )
    base = nuclei_count_pipeline()
    return Pipeline("slow", (blur, *base.steps))


@pytest.fixture
def client(demo_server):
    c = RawClient(demo_server.address, demo_server.event_address)
    yield c
    c.close()


def submit(
    client: RawClient, pipeline: Pipeline, plate: str = SMALL, **kw
) -> Submitted:
    reply, _ = client.call(
        Submit(rid=client.rid(), pipeline_code=pipeline.to_code(), plate=plate, **kw)
    )
    assert isinstance(reply, Submitted), reply
    return reply


def wait_finished(client: RawClient, execution_id: str, timeout: float = 60.0):
    """Every stored event once the execution finished (polled with Fetch)."""
    deadline = time.monotonic() + timeout
    while True:
        events, reply = client.fetch_all(execution_id)
        if any(isinstance(e, Finished) for e, _, _ in events):
            return events, reply
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_id} did not finish in {timeout} s")
        time.sleep(0.2)


def test_when_hello_then_server_reports_versions_catalogue_and_event_port(
    client, demo_server
):
    reply, _ = client.call(Hello(rid=1, client="test"))
    assert isinstance(reply, HelloReply)
    assert reply.protocol_version == PROTOCOL_VERSION
    assert {f.name for f in reply.catalogue} == set(builtin_catalogue())
    assert str(reply.event_port) == demo_server.event_address.rsplit(":", 1)[1]
    assert reply.workers == 2
    assert demo_server.ready_seconds > 0


def test_when_plates_listed_then_the_root_plate_is_offered_with_its_layout(client):
    reply, _ = client.call(ListPlates(rid=2))
    assert SMALL in reply.plates
    info, _ = client.call(PlateInfo(rid=3, plate=SMALL))
    assert info.info.channels == ["DAPI", "GFP"]
    assert len(info.info.wells) == 6


def test_when_plate_runs_remotely_then_results_are_bit_identical_to_local(
    client, small_plate_path, tmp_path
):
    sub = submit(client, nuclei_count_pipeline())
    events, reply = wait_finished(client, sub.execution_id)
    assert reply.state == "done"
    seqs = [e.seq for e, _, _ in events]
    assert seqs == list(range(1, len(seqs) + 1)), "events must be gap-free"
    done = {e.well: e for e, _, _ in events if isinstance(e, WellDone)}
    assert sorted(done) == sorted(sub.wells)
    local = run_local(
        nuclei_count_pipeline(), small_plate_path, workers=1, out=tmp_path
    )
    for row in local.wells.itertuples():
        remote = done[row.well].summary
        assert remote["count"] == row.count
        assert remote["intensity_mean_DAPI"] == row.intensity_mean_DAPI
        assert remote["area_mean"] == row.area_mean


def test_when_well_done_then_previews_travel_as_raw_arrays(client):
    sub = submit(client, nuclei_count_pipeline(), wells=["A02"])
    events, _ = wait_finished(client, sub.execution_id)
    [(event, reply, buffers)] = [x for x in events if isinstance(x[0], WellDone)]
    arrays = unpack_arrays(event.previews, buffers)
    assert set(arrays) == {"image/DAPI", "image/GFP", "labels/nuclei"}
    assert arrays["image/DAPI"].dtype.kind == "u"
    assert max(arrays["image/DAPI"].shape) <= 256
    full, _ = client.fetch_all(sub.execution_id, full_resolution=True)
    [(event, _reply, buffers)] = [x for x in full if isinstance(x[0], WellDone)]
    arrays = unpack_arrays(event.previews, buffers)
    assert arrays["labels/nuclei"].shape == (256, 256)
    assert arrays["image/DAPI"].shape == (256, 256)
    assert 0 < len(set(arrays["labels/nuclei"].ravel())) - 1 <= event.summary["count"]


def test_when_full_resolution_is_paged_then_each_page_carries_four_wells(client):
    # Small events (WellStarted, Progress) must not crowd images out of a page.
    sub = submit(client, nuclei_count_pipeline(), wells=["A01", "A02", "B01", "B02"])
    wait_finished(client, sub.execution_id)
    msg = Fetch(rid=client.rid(), execution_id=sub.execution_id, full_resolution=True)
    reply, _ = client.call(msg)
    done = [e.well for e in reply.events if isinstance(e, WellDone)]
    assert sorted(done) == ["A01", "A02", "B01", "B02"], reply.events


def test_when_preview_asked_then_input_and_step_images_come_back(client):
    reply, buffers = client.call(
        Preview(
            rid=client.rid(),
            pipeline_code=nuclei_count_pipeline().to_code(),
            plate=SMALL,
            well="b03",
            upto=1,
            max_size=128,
        )
    )
    assert isinstance(reply, PreviewReply), reply
    assert reply.well == "B03"
    images = unpack_arrays(reply.images, buffers)
    assert {"input/DAPI", "nuclei/DAPI", "labels/nuclei"} <= set(images)
    assert images["input/DAPI"].shape == (128, 128)
    assert reply.objects > 0


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (Submit(rid=9, pipeline_code="x = 1", plate=SMALL), "bad_pipeline_code"),
        (
            Submit(
                rid=9, pipeline_code=nuclei_count_pipeline().to_code(), plate="nope"
            ),
            "unknown_plate",
        ),
        (
            Submit(
                rid=9, pipeline_code=nuclei_count_pipeline().to_code(), plate="/etc"
            ),
            "unknown_plate",
        ),
        (
            Submit(
                rid=9,
                pipeline_code=nuclei_count_pipeline().to_code(),
                plate=SMALL,
                wells=["Z9"],
            ),
            "unknown_well",
        ),
        (Status(rid=9, execution_id="ex-000000000000"), "unknown_execution"),
        (Cancel(rid=9, execution_id="ex-000000000000"), "unknown_execution"),
    ],
)
def test_when_request_is_wrong_then_that_client_gets_a_named_error(
    client, message, code
):
    reply, _ = client.call(message)
    assert isinstance(reply, ErrorReply)
    assert reply.code == code, reply
    assert reply.message
    again, _ = client.call(Hello(rid=10, client="still-there"))
    assert isinstance(again, HelloReply)


def test_when_compile_fails_then_error_names_step_and_key(client):
    pipeline = Pipeline(
        "p", (Step(name="seg", func={"Hoechst": gaussian_blur}, group_by="channel"),)
    )
    reply, _ = client.call(
        Submit(rid=client.rid(), pipeline_code=pipeline.to_code(), plate=SMALL)
    )
    assert reply.code == "compile_error"
    assert reply.details["step"] == "seg"
    assert reply.details["key"] == "Hoechst"


def test_when_cancelled_then_pending_wells_stop_and_finished_says_cancelled(client):
    sub = submit(client, slow_pipeline(80))
    client.subscribe(sub.execution_id, sub.stream_key)
    client.events(until=WellDone)
    reply, _ = client.call(Cancel(rid=client.rid(), execution_id=sub.execution_id))
    assert isinstance(reply, CancelReply)
    assert reply.state == "cancelled"
    events, _fetched = wait_finished(client, sub.execution_id)
    finished = [e for e, _, _ in events if isinstance(e, Finished)]
    assert [f.state for f in finished] == ["cancelled"]
    assert finished[0].done < finished[0].total
    status, _ = client.call(Status(rid=client.rid(), execution_id=sub.execution_id))
    assert status.execution.state == "cancelled"


def test_when_a_well_fails_then_it_is_reported_and_the_rest_finish(
    server_factory, small_plate_path, tmp_path
):
    import shutil

    root = tmp_path / "plates"
    shutil.copytree(small_plate_path, root / "broken.ome.zarr")
    for meta in ("zarr.json", ".zarray"):
        (root / "broken.ome.zarr/B/2/0/0" / meta).unlink(missing_ok=True)
    server = server_factory()
    server.plates_root = root
    server.start()
    c = RawClient(server.address, server.event_address)
    try:
        sub = submit(c, nuclei_count_pipeline(), plate="broken.ome.zarr")
        events, _reply = wait_finished(c, sub.execution_id)
        failed = [e for e, _, _ in events if isinstance(e, WellFailed)]
        assert [f.well for f in failed] == ["B02"]
        assert "Traceback" in failed[0].remote_traceback
        finished = next(e for e, _, _ in events if isinstance(e, Finished))
        assert (finished.done, finished.failed) == (5, 1)
        wells = pd.read_parquet(
            server.results_root / sub.execution_id / "wells.parquet"
        )
        assert wells.set_index("well").loc["B02", "status"] == "failed"
    finally:
        c.close()


def test_when_executions_listed_then_newest_first_for_this_user(client):
    first = submit(client, nuclei_count_pipeline(), wells=["A01"])
    second = submit(client, nuclei_count_pipeline(), wells=["A02"])
    wait_finished(client, second.execution_id)
    reply, _ = client.call(ListExecutions(rid=client.rid()))
    ids = [e.execution_id for e in reply.executions]
    assert ids.index(second.execution_id) < ids.index(first.execution_id)


def test_when_runs_are_submitted_then_the_audit_log_follows_them(client, demo_server):
    from openhcs_nb.results.store import pipeline_hash
    from openhcs_nb.server.audit import read_audit

    sub = submit(client, nuclei_count_pipeline(), wells=["A03"])
    wait_finished(client, sub.execution_id)
    client.call(Submit(rid=client.rid(), pipeline_code="import os", plate=SMALL))
    entries = read_audit(demo_server.results_root / "audit.jsonl")
    mine = [
        e
        for e in entries
        if e.execution_id == sub.execution_id and e.action in ("submit", "finish")
    ]
    assert [(e.action, e.outcome) for e in mine] == [
        ("submit", "accepted"),
        ("finish", "done"),
    ]
    assert {e.pipeline_hash for e in mine} == {
        pipeline_hash(nuclei_count_pipeline().to_code())
    }
    fetches = [e for e in entries if e.execution_id == sub.execution_id]
    assert all(e.user == "local" and e.peer for e in fetches if e.action == "fetch")
    refused = [e for e in entries if e.outcome == "refused"]
    assert refused and "bad_pipeline_code" in str(refused[-1].detail)
