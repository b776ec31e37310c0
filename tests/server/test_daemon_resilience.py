"""Crashes, restarts, hostile input: the server loses nothing and keeps serving."""

from __future__ import annotations

import msgspec
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raw_client import RawClient
from test_daemon import SMALL, slow_pipeline, submit, wait_finished

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.protocol import (
    PROTOCOL_VERSION,
    ErrorReply,
    Finished,
    Hello,
    HelloReply,
    Status,
    Submit,
    WellDone,
    WellStarted,
    encode,
)


def done_wells(events) -> dict[str, WellDone]:
    return {e.well: e for e, _, _ in events if isinstance(e, WellDone)}


def test_when_killed_mid_run_then_restart_keeps_finished_wells_and_completes(
    server_factory,
):
    server = server_factory().start()
    client = RawClient(server.address, server.event_address)
    sub = submit(client, slow_pipeline(60))
    client.subscribe(sub.execution_id, sub.stream_key)
    client.events(until=WellDone)
    server.kill()
    client.close()

    server.start()
    client = RawClient(server.address, server.event_address)
    try:
        events, reply = wait_finished(client, sub.execution_id, timeout=120)
        assert reply.state == "done", server.log()
        seqs = [e.seq for e, _, _ in events]
        assert seqs == list(range(1, len(seqs) + 1))
        wells = [e.well for e, _, _ in events if isinstance(e, WellDone)]
        assert sorted(wells) == sorted(sub.wells), "every well exactly once"
        for well in wells:  # resumed wells are announced again when retaken
            kinds = [type(e) for e, _, _ in events if getattr(e, "well", "") == well]
            assert kinds[-2:] == [WellStarted, WellDone], (well, kinds)
        finished = [e for e, _, _ in events if isinstance(e, Finished)]
        assert finished[-1].done == len(sub.wells)
    finally:
        client.close()


def test_when_sigterm_mid_run_then_exit_is_clean_and_restart_resumes(server_factory):
    server = server_factory().start()
    client = RawClient(server.address, server.event_address)
    sub = submit(client, slow_pipeline(60))
    client.subscribe(sub.execution_id, sub.stream_key)
    client.events(until=WellDone)
    assert server.stop() == 0
    client.close()
    assert "stopped" in server.log()

    server.start()
    client = RawClient(server.address, server.event_address)
    try:
        events, reply = wait_finished(client, sub.execution_id, timeout=120)
        assert reply.state == "done"
        assert sorted(done_wells(events)) == sorted(sub.wells)
    finally:
        client.close()


def test_when_hostile_code_submitted_remotely_then_refused_with_position(
    demo_server,
):
    from hostile_corpus import CORPUS

    client = RawClient(demo_server.address)
    try:
        for case in CORPUS:
            reply, _ = client.call(
                Submit(rid=client.rid(), pipeline_code=case.code, plate=SMALL)
            )
            assert isinstance(reply, ErrorReply), case.code[:80]
            assert reply.code in {"bad_pipeline_code", "too_large"}, (reply, case)
            if reply.code == "bad_pipeline_code":
                assert reply.details["line"] >= 1
                assert reply.details["col"] >= 0
    finally:
        client.close()


def test_when_version_differs_then_refusal_names_both_versions(demo_server):
    client = RawClient(demo_server.address)
    try:
        client.send_frames(
            [msgspec.msgpack.encode({"type": "Hello", "v": 99, "rid": 5})]
        )
        reply, _ = client.recv()
        assert isinstance(reply, ErrorReply)
        assert reply.code == "version_mismatch"
        assert "99" in reply.message and str(PROTOCOL_VERSION) in reply.message
        assert reply.rid == 5
    finally:
        client.close()


def test_when_message_exceeds_the_size_limit_then_it_is_refused(server_factory):
    server = server_factory(limits={"max_command_bytes": 1 << 20})
    server.start()
    client = RawClient(server.address)
    try:
        header = encode(Hello(rid=1, client="big"))[0]
        client.send_frames([header, *([b"\0" * (600 << 10)] * 3)])
        reply, _ = client.recv()
        assert isinstance(reply, ErrorReply)
        assert reply.code == "too_large"
        assert reply.rid == 1
        # A frame far over the limit (4x) is cut off by libzmq itself
        # (MAXMSGSIZE) before its payload is read: that connection gets no
        # answer, and the server carries on.
        client.send_frames([header, b"\0" * (5 << 20)])
        with pytest.raises(TimeoutError):
            client.recv(timeout=2)
        client.close()
        client = RawClient(server.address)
        reply, _ = client.call(Hello(rid=2, client="small"))
        assert isinstance(reply, HelloReply)
    finally:
        client.close()


frame = st.binary(max_size=256)
valid_header = st.sampled_from(
    [
        encode(Hello(rid=1, client="x"))[0],
        encode(Status(rid=2, execution_id="ex-1"))[0],
        encode(Submit(rid=3, pipeline_code="p", plate="q"))[0],
    ]
)


@st.composite
def mutated(draw):
    header = bytearray(bytes(draw(valid_header)))
    for _ in range(draw(st.integers(1, 4))):
        if not header:
            break
        i = draw(st.integers(0, len(header) - 1))
        header[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(header)))
    return [bytes(header[:cut]), *draw(st.lists(frame, max_size=2))]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(frames=st.one_of(st.lists(frame, min_size=1, max_size=4), mutated()))
def test_when_command_socket_is_fuzzed_then_server_answers_errors_and_survives(
    demo_server, frames
):
    client = RawClient(demo_server.address)
    try:
        client.send_frames(frames)
        reply, _ = client.recv(timeout=10)
        assert isinstance(reply, (ErrorReply, HelloReply)) or reply.rid in (1, 2, 3)
        if isinstance(reply, ErrorReply):
            assert reply.code in {
                "malformed",
                "unknown_command",
                "version_mismatch",
                "bad_array",
                "too_large",
                "bad_pipeline_code",
                "unknown_execution",
                "unknown_plate",
            }, reply
        ok, _ = client.call(Hello(rid=77, client="after-fuzz"))
        assert isinstance(ok, HelloReply)
    finally:
        client.close()


def test_when_huge_sizes_are_declared_then_bad_array_and_no_allocation(demo_server):
    client = RawClient(demo_server.address)
    try:
        header = msgspec.msgpack.encode(
            {
                "type": "Hello",
                "v": PROTOCOL_VERSION,
                "rid": 4,
                "client": "x",
                "arrays": [
                    {"name": "a", "dtype": "<f8", "shape": [2**40, 2**40], "frame": 0}
                ],
            }
        )
        client.send_frames([header, b"1234"])
        reply, _ = client.recv()
        # Unknown fields are ignored for forward compatibility; the server
        # must not try to allocate anything from a declared shape.
        assert isinstance(reply, (HelloReply, ErrorReply))
        ok, _ = client.call(Hello(rid=5, client="x"))
        assert isinstance(ok, HelloReply)
    finally:
        client.close()


def test_when_demo_default_pipeline_resubmitted_then_results_match(demo_server):
    client = RawClient(demo_server.address, demo_server.event_address)
    try:
        first = submit(client, nuclei_count_pipeline(), wells=["A01", "B03"])
        second = submit(client, nuclei_count_pipeline(), wells=["A01", "B03"])
        a, _ = wait_finished(client, first.execution_id)
        b, _ = wait_finished(client, second.execution_id)
        summary_a = {w: e.summary for w, e in done_wells(a).items()}
        summary_b = {w: e.summary for w, e in done_wells(b).items()}
        # NaN (a std over one object, say) is not == NaN: compare as frames.
        pd.testing.assert_frame_equal(
            pd.DataFrame(summary_a).sort_index(axis=1),
            pd.DataFrame(summary_b).sort_index(axis=1),
        )
    finally:
        client.close()


def test_when_crash_came_after_the_last_well_then_restart_finishes_the_run(
    server_factory, small_plate_path
):
    import msgspec

    from openhcs_nb import compile_pipeline, open_plate
    from openhcs_nb.execution._store_io import store_layout
    from openhcs_nb.results.store import ResultsStore
    from openhcs_nb.server.jobs import EventDraft, ExecutionTrigger, JobStore

    server = server_factory()
    server.results_root.mkdir(parents=True)
    code = nuclei_count_pipeline().to_code()
    plan = compile_pipeline(
        nuclei_count_pipeline(), open_plate(small_plate_path), ["A01"]
    )
    with JobStore(server.results_root / "jobs.sqlite3") as store:
        record = store.create_execution("local", SMALL, code, ["A01"], {})
        store.set_execution_state(record.id, ExecutionTrigger.START)
        store.record_well_started(record.id, "A01")
        summary = {"count": 3}
        store.record_well_done(
            record.id,
            "A01",
            msgspec.msgpack.encode(summary),
            EventDraft("well_done", b"x"),
        )
    ResultsStore(server.results_root / record.id).create(store_layout(plan))
    server.start()
    client = RawClient(server.address)
    try:
        status, _ = client.call(Status(rid=1, execution_id=record.id))
        assert status.execution.state == "done", server.log()
        assert (server.results_root / record.id / "wells.parquet").exists()
    finally:
        client.close()
