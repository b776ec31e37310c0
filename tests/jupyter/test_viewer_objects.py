"""The viewer's Python side of object inspection: objects requests and replies."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.jupyter._viewer_objects import (
    NO_MEASUREMENTS,
    ObjectServer,
    rows_content,
)
from openhcs_nb.jupyter.viewer import PlateViewer

SMALL = "small.ome.zarr"


def _ask(well: str = "A01", field: int = 0, rid: object = "o1") -> dict:
    return {"type": "objects", "id": rid, "well": well, "field": field}


def _sent_by(viewer: PlateViewer, monkeypatch) -> list[dict]:
    """The objects replies the viewer sends (not its other messages)."""
    sent: list[dict] = []

    def send(content: dict, buffers: object = None) -> None:
        if content.get("type") == "objects":
            sent.append(content)

    monkeypatch.setattr(viewer, "send", send)
    return sent


def _wait_sent(viewer: PlateViewer, sent: list[dict], n: int) -> list[dict]:
    deadline = time.monotonic() + 60
    while len(sent) < n:
        assert time.monotonic() < deadline, sent
        viewer.flush()
        time.sleep(0.01)
    return sent


class Counting:
    """Wraps a fetch and counts the calls that reach it."""

    def __init__(self, fetch) -> None:
        self.fetch, self.calls = fetch, []

    def __call__(self, well: str, field: int):
        self.calls.append((well, field))
        return self.fetch(well, field)


def test_when_the_page_asks_a_followed_run_then_the_fields_rows_come_once(
    conn, monkeypatch
) -> None:
    execution = conn.submit(nuclei_count_pipeline(), SMALL, wells=["B03"])
    assert execution.wait(120)
    viewer = PlateViewer(conn.plate_info(SMALL), interval=0.01).follow(execution)
    sent = _sent_by(viewer, monkeypatch)
    viewer._on_msg(viewer, _ask("B03", 1), [])
    (content,) = _wait_sent(viewer, sent, 1)
    want = execution.objects("B03", 1)
    assert content["type"] == "objects" and content["id"] == "o1"
    assert content["columns"] == list(want.columns)
    assert content["total"] == len(want) == len(content["rows"]) > 0
    got = pd.DataFrame(content["rows"], columns=content["columns"])
    for name in ("label", "area", "intensity_mean_DAPI", "centroid_x"):
        np.testing.assert_array_equal(got[name], want[name], name)
    assert content["units"]["area"] == "px²"
    json.dumps(content, allow_nan=False)  # a plain JSON message, no NaN
    viewer.close()


def test_when_a_field_is_asked_again_then_the_cache_answers() -> None:
    frame = pd.DataFrame({"object_set": ["nuclei"], "label": [1], "area": [9]})
    fetch = Counting(lambda well, field: frame)
    server = ObjectServer(fetch, lambda c, b: None, cache_size=2)
    for field in (0, 0, 1, 0, 2, 1):
        assert server.answer(_ask("A01", field))["rows"] == [["nuclei", 1, 9]]
    # least recently used goes first: 2 pushed 1 out (0 was just used), and
    # asking for 1 again pushed 0 out
    assert [f for _, f in fetch.calls] == [0, 1, 2, 1]
    assert server.answer(_ask("A01", 2))["total"] == 1
    assert len(fetch.calls) == 4  # 2 is still kept
    assert server.answer(_ask("A01", 0))["total"] == 1
    assert fetch.calls[-1] == ("A01", 0)  # dropped earlier, asked again
    server.close()


def test_when_the_fetch_fails_then_one_line_and_the_next_ask_tries_again() -> None:
    outcomes = [LookupError("well A01 is still running\n(more)"), None]
    frame = pd.DataFrame({"label": [3], "area": [12]})

    def fetch(well: str, field: int) -> pd.DataFrame:
        error = outcomes.pop(0)
        if error is not None:
            raise error
        return frame

    server = ObjectServer(fetch, lambda c, b: None)
    failed = server.answer(_ask())
    assert failed["error"] == "well A01 is still running"
    assert "rows" not in failed
    assert server.answer(_ask())["rows"] == [[3, 12]]
    server.close()


def test_when_a_viewer_has_no_measurements_then_it_says_so(monkeypatch) -> None:
    viewer = PlateViewer(fetch_well=lambda well, field: {}, interval=0.01)
    sent = _sent_by(viewer, monkeypatch)
    viewer._on_msg(viewer, _ask("C02", 3, rid="o9"), [])
    (content,) = _wait_sent(viewer, sent, 1)
    assert content == {
        "type": "objects",
        "id": "o9",
        "well": "C02",
        "field": 3,
        "none": NO_MEASUREMENTS,
    }
    viewer.close()


def test_when_objects_is_given_then_the_viewer_reads_rows_from_it(monkeypatch) -> None:
    frame = pd.DataFrame({"label": [1, 2], "area": [5, 6]})
    seen: list[tuple[str, int]] = []

    def objects(well: str, field: int) -> pd.DataFrame:
        seen.append((well, field))
        return frame

    viewer = PlateViewer(fetch_well=lambda w, f: {}, objects=objects, interval=0.01)
    sent = _sent_by(viewer, monkeypatch)
    viewer._on_msg(viewer, _ask("A02", 1), [])
    (content,) = _wait_sent(viewer, sent, 1)
    assert seen == [("A02", 1)] and content["rows"] == [[1, 5], [2, 6]]
    viewer.close()


def test_rows_content_keeps_first_planes_nulls_nan_and_bounds_rows() -> None:
    frame = pd.DataFrame(
        {
            "object_set": pd.array(["nuclei", "cells", "nuclei", None], "string"),
            "t": [0, 0, 1, 0],
            "z": [0, 0, 0, 0],
            "label": np.array([1, 1, 1, 2], np.int32),
            "area": [10.5, np.nan, 3.0, 4.0],
        }
    )
    frame.attrs["units"] = {"area": "px²", "gone": "px"}
    content = rows_content(frame, max_rows=2)
    assert content["total"] == 3  # the t=1 row is not in the view
    assert content["rows"] == [["nuclei", 0, 0, 1, 10.5], ["cells", 0, 0, 1, None]]
    assert content["units"] == {"area": "px²"}
    assert all(type(v) in (str, int, float, type(None)) for v in content["rows"][0])
    assert rows_content(frame)["rows"][-1][0] is None  # a missing set
