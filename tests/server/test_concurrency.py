"""Twenty clients at once against one real server: every well, exactly once each."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from openhcs_nb import connect, nuclei_count_pipeline

CLIENTS = 20
SMALL = "small.ome.zarr"


def test_when_twenty_clients_run_at_once_then_none_loses_a_well(fresh_server):
    expected = None
    seen: dict[int, Counter] = {i: Counter() for i in range(CLIENTS)}
    lock = threading.Lock()

    def one_client(index: int):
        with connect(fresh_server.address, timeout=30) as conn:
            run = conn.submit(nuclei_count_pipeline(), SMALL, label=f"client {index}")

            def record(well):
                with lock:
                    seen[index][well.well] += 1

            run.on_well(record)
            table = run.result(timeout=300)
            # Let queued callbacks drain before the connection closes.
            drained = threading.Event()
            run.add_done_callback(lambda _: drained.set())
            assert drained.wait(30)
            return run.id, table

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(one_client, range(CLIENTS)))

    ids = {execution_id for execution_id, _ in outcomes}
    assert len(ids) == CLIENTS
    for index, (_, table) in enumerate(outcomes):
        assert (table.status == "done").all()
        counts = table.set_index("well")["count"]
        expected = counts if expected is None else expected
        assert counts.equals(expected), "every client gets the same numbers"
        assert set(seen[index]) == set(table.well)
        assert set(seen[index].values()) == {1}, f"client {index}: {seen[index]}"
