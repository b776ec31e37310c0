"""WellEvent and PreviewResult from decoded wire messages with their arrays."""

from __future__ import annotations

import numpy as np

from openhcs_nb.client import WellEvent
from openhcs_nb.client._wells import preview_result, state_name, well_event
from openhcs_nb.protocol import (
    PreviewReply,
    WellDone,
    WellFailed,
    decode_event_frames,
    decode_server,
    encode,
    event_frames,
    pack_arrays,
)


def test_when_welldone_with_previews_then_event_holds_writable_copies():
    image = np.arange(12, dtype=np.uint16).reshape(3, 4)
    labels = np.eye(3, dtype=np.int32)
    refs, buffers = pack_arrays({"image/DAPI": image, "labels/nuclei": labels})
    sent = WellDone(
        execution_id="ex-1",
        seq=4,
        time=1.5,
        well="B03",
        summary={"count": 3, "area_mean": 41.5},
        previews=refs,
        elapsed=0.25,
    )
    event, received = decode_event_frames(event_frames(sent, buffers))
    result = well_event(event, received)
    assert isinstance(result, WellEvent)
    assert (result.well, result.status, result.seq, result.ok) == (
        "B03",
        "done",
        4,
        True,
    )
    assert result.summary == {"count": 3, "area_mean": 41.5}
    assert set(result.previews) == {"image/DAPI", "labels/nuclei"}
    np.testing.assert_array_equal(result.previews["image/DAPI"], image)
    assert result.previews["labels/nuclei"].dtype == np.int32
    assert result.previews["image/DAPI"].flags.writeable
    result.previews["image/DAPI"][0, 0] = 99  # a copy: the frame is untouched
    assert np.frombuffer(received[0], np.uint16)[0] == 0


def test_when_wellfailed_then_event_carries_error_and_traceback():
    sent = WellFailed(
        execution_id="ex-1",
        seq=7,
        time=2.0,
        well="A01",
        error="ValueError: bad",
        remote_traceback="Traceback ...",
    )
    event, received = decode_event_frames(event_frames(sent))
    result = well_event(event, received)
    assert (result.status, result.ok, result.error) == (
        "failed",
        False,
        "ValueError: bad",
    )
    assert result.traceback == "Traceback ..."
    assert result.previews == {} and result.summary == {}


def test_when_preview_reply_then_images_are_named_writable_copies():
    raw = np.full((4, 4), 7, dtype=np.float32)
    refs, buffers = pack_arrays({"input/DAPI": raw})
    reply, received = decode_server(
        encode(
            PreviewReply(
                rid=1,
                well="A02",
                step_names=["blur"],
                images=refs,
                measurements={"count": 2.0},
                site=1,
            ),
            buffers,
        )
    )
    result = preview_result(reply, received)
    assert (result.well, result.site, result.step_names) == ("A02", 1, ("blur",))
    assert result.measurements == {"count": 2.0}
    result.images["input/DAPI"] += 1
    np.testing.assert_array_equal(result.images["input/DAPI"], raw + 1)


def test_when_server_says_finished_then_client_says_done():
    assert state_name("finished") == "done"
    assert state_name("cancelled") == "cancelled"
