"""The client keeps every well's summary but previews only within a byte budget."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest
from client_helpers import SMALL

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import WellEvent, connect
from openhcs_nb.client._dispatch import CallbackThread
from openhcs_nb.client._preview_cache import PreviewCache, previews_nbytes
from openhcs_nb.client.execution import Execution
from openhcs_nb.protocol import Finished, WellDone, WellFailed, pack_arrays

KIB = 1024


def block(kib: int, fill: int = 0) -> dict[str, np.ndarray]:
    """Previews of exactly ``kib`` KiB: an image and a labels layer."""
    half = kib * KIB // 2
    return {
        "image/DAPI": np.full(half // 2, fill, np.uint16),
        "labels/nuclei": np.full(half // 4, fill, np.int32),
    }


# --- the cache alone ------------------------------------------------------------


def test_when_over_budget_then_the_oldest_entries_go_first():
    cache: PreviewCache[str] = PreviewCache(budget_bytes=100 * KIB)
    for well, kib in (("A01", 40), ("A02", 30), ("A03", 20)):
        assert cache.put(well, block(kib))
    assert cache.keys() == ["A01", "A02", "A03"]
    assert cache.nbytes == 90 * KIB
    assert cache.put("A04", block(50))  # 140 KiB: A01 (40) must go, then fits
    assert cache.keys() == ["A02", "A03", "A04"]
    assert cache.nbytes == 100 * KIB
    assert cache.put("A05", block(25))  # 125 KiB: A02 (30) goes -> 95
    assert cache.keys() == ["A03", "A04", "A05"]
    assert cache.nbytes == 95 * KIB
    assert "A01" not in cache and cache.get("A01") is None


def test_when_reading_then_the_order_stays_but_a_re_put_becomes_newest():
    cache: PreviewCache[str] = PreviewCache(budget_bytes=60 * KIB)
    cache.put("A01", block(20, fill=1))
    cache.put("A02", block(20, fill=2))
    assert cache.get("A01") is not None  # reading does not refresh
    cache.put("A03", block(30))
    assert cache.keys() == ["A02", "A03"]
    cache.put("A02", block(20, fill=3))  # again: newest, counted once
    assert cache.keys() == ["A03", "A02"]
    assert cache.nbytes == 50 * KIB
    assert int(cache.get("A02")["image/DAPI"][0]) == 3


def test_when_one_entry_exceeds_the_budget_then_it_is_not_kept_at_all():
    cache: PreviewCache[str] = PreviewCache(budget_bytes=64 * KIB)
    cache.put("A01", block(16))
    assert not cache.put("B01", block(65))
    assert cache.keys() == ["A01"]  # the big one evicted nothing
    assert not cache.put("A01", block(128))  # an over-budget re-put drops the old
    assert len(cache) == 0 and cache.nbytes == 0
    nothing: PreviewCache[str] = PreviewCache(budget_bytes=0)
    assert not nothing.put("A01", block(1))
    assert not cache.put("C01", {})  # nothing to keep
    with pytest.raises(ValueError, match=">= 0"):
        PreviewCache(budget_bytes=-1)


def test_when_an_execution_goes_then_its_entries_can_be_discarded():
    cache: PreviewCache[tuple[str, str]] = PreviewCache(budget_bytes=1 << 20)
    for key in (("ex-1", "A01"), ("ex-2", "A01"), ("ex-1", "A02")):
        cache.put(key, block(4))
    assert cache.discard_if(lambda key: key[0] == "ex-1") == 2
    assert cache.keys() == [("ex-2", "A01")]
    assert cache.nbytes == previews_nbytes(block(4))


# --- one Execution fed events directly ---------------------------------------------


class FetchingConnection:
    """Stands in for the Connection: answers a preview re-fetch from a table."""

    def __init__(self, stored: dict[int, dict[str, np.ndarray]]) -> None:
        self.stored = stored
        self.fetched: list[tuple[int, bool]] = []

    def _fetch_images(self, execution_id, seq, timeout, *, full_resolution=True):
        self.fetched.append((seq, full_resolution))
        return {name: array.copy() for name, array in self.stored[seq].items()}


def noisy_previews(seed: int) -> dict[str, np.ndarray]:
    """64² uint16 image with noise and uneven light, and touching labels."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(200, 900, 64)[None, :]
    image = (ramp + rng.normal(0, 40, (64, 64))).clip(0, 4095).astype(np.uint16)
    labels = np.zeros((64, 64), np.int32)
    labels[10:30, 10:30] = 1
    labels[10:30, 30:45] = 2  # touches object 1
    return {"image/DAPI": image, "labels/nuclei": labels}


def test_when_wells_outgrow_the_budget_then_records_stay_and_previews_refetch():
    per_well = previews_nbytes(noisy_previews(0))  # 64² * (2 + 4) = 24 KiB
    cache: PreviewCache[tuple[str, str]] = PreviewCache(budget_bytes=2 * per_well)
    sent = {seq: noisy_previews(seq) for seq in range(1, 6)}
    connection = FetchingConnection(sent)
    dispatcher = CallbackThread("test-callbacks")
    execution = Execution(
        connection, "ex-1", "plate", dispatcher=dispatcher, previews=cache
    )
    seen: list[WellEvent] = []
    execution.on_well(seen.append)
    wells = ["A01", "A02", "A03", "B01", "B02"]
    for seq, well in enumerate(wells, start=1):
        refs, buffers = pack_arrays(sent[seq])
        execution._apply(
            WellDone(
                execution_id="ex-1",
                seq=seq,
                time=0.0,
                well=well,
                summary={"count": seq},
                previews=refs,
            ),
            buffers,
        )
        assert cache.nbytes <= cache.budget_bytes
    execution._apply(
        WellFailed(execution_id="ex-1", seq=6, time=0.0, well="B03", error="bad"), []
    )
    finished = Finished(
        execution_id="ex-1",
        seq=7,
        time=0.0,
        state="finished",
        done=5,
        failed=1,
        total=6,
    )
    execution._apply(finished, [])
    dispatcher.close()  # runs the queued callbacks first
    # Callbacks saw every image as it arrived.
    assert [w.well for w in seen] == [*wells, "B03"]
    assert all(w.previews for w in seen[:5])
    # Every summary is kept; only the two newest wells keep their images.
    records = execution.wells
    assert [records[w].summary["count"] for w in wells] == [1, 2, 3, 4, 5]
    assert [bool(records[w].previews) for w in wells] == [0, 0, 0, 1, 1]
    assert [records[w].previews_dropped for w in wells] == [1, 1, 1, 0, 0]
    assert records["B03"].previews == {} and not records["B03"].previews_dropped
    assert execution.progress == (5, 1, 6)
    assert execution.previews("B03") == {}  # failed: nothing to fetch
    # A kept well comes from memory, a dropped one from the server, exactly.
    kept = execution.previews("B02")
    assert np.array_equal(kept["image/DAPI"], sent[5]["image/DAPI"])
    assert connection.fetched == []
    again = execution.previews("A01")
    assert connection.fetched == [(1, False)]  # the streamed previews, not full
    for name in sent[1]:
        assert np.array_equal(again[name], seen[0].previews[name])
    # The re-fetched well is kept again as the newest; the oldest kept goes.
    assert cache.keys() == [("ex-1", "B02"), ("ex-1", "A01")]
    assert [e.well for e in execution if e.previews] == ["A01", "B02"]
    with pytest.raises(KeyError, match="C01"):
        execution.previews("C01")


# --- a real server on loopback ------------------------------------------------------

WELLS = ["A01", "A02", "A03", "B01", "B02", "B03"]


def test_when_a_plate_outgrows_the_budget_then_kept_bytes_stay_under_it(demo_server):
    # Two wells of 128² previews: 2 uint16 channels + int32 nuclei = 128 KiB each.
    budget = 300_000
    with connect(demo_server.address, preview_budget_bytes=budget) as conn:
        execution = conn.submit(nuclei_count_pipeline(), SMALL, preview_size=128)
        peaks: list[int] = []
        streamed: dict[str, dict[str, np.ndarray]] = {}

        def watch(event: WellEvent) -> None:
            peaks.append(conn.preview_cache.nbytes)
            streamed[event.well] = event.previews

        execution.on_well(watch)
        table = execution.result(timeout=120)
        drained = threading.Event()
        execution.add_done_callback(lambda _: drained.set())
        assert drained.wait(30)

        assert sorted(table["well"]) == WELLS
        assert (table["status"] == "done").all() and (table["count"] > 0).all()
        assert len(peaks) == 6 and max(peaks) <= budget
        assert conn.preview_cache.nbytes <= budget
        records = execution.wells
        assert all(records[w].summary["count"] > 0 for w in WELLS)
        kept = [w for w in WELLS if records[w].previews]
        dropped = [w for w in WELLS if records[w].previews_dropped]
        assert 1 <= len(kept) < 6 and sorted(kept + dropped) == WELLS
        oldest = min(dropped, key=lambda w: records[w].seq)
        again = execution.previews(oldest)
        assert set(again) == set(streamed[oldest]) and any(
            k.startswith("labels/") for k in again
        )
        for name, array in streamed[oldest].items():
            assert np.array_equal(again[name], array)
        assert conn.preview_cache.keys()[-1] == (execution.id, oldest)
        assert conn.preview_cache.nbytes <= budget


def test_when_a_finished_handle_is_dropped_then_its_previews_go_too(demo_server):
    with connect(demo_server.address) as conn:
        execution = conn.submit(nuclei_count_pipeline(), SMALL, wells=["A01", "B02"])
        execution.result(timeout=120)
        done = threading.Event()
        execution.add_done_callback(lambda _: done.set())
        assert done.wait(30)
        execution_id = execution.id
        assert len(conn.preview_cache) == 2
        del execution
        deadline = time.monotonic() + 10  # the callback thread lets go just after
        while len(conn.preview_cache) and time.monotonic() < deadline:
            gc.collect()
            time.sleep(0.01)
        assert len(conn.preview_cache) == 0
        assert execution_id not in conn._handles
        again = conn.attach(execution_id)  # a new handle fetches everything again
        assert again.wait(60)
        assert sorted(again.wells) == ["A01", "B02"]
        assert again.previews("B02")
