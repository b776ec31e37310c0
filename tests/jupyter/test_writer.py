"""CoalescingWriter: batches from many threads, applied on one loop, serially."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tornado.ioloop import IOLoop

from openhcs_nb.jupyter._writer import CoalescingWriter, kernel_loop


class LoopThread:
    """A real event loop (tornado or asyncio) running on a thread of its own."""

    def __init__(self, kind: str) -> None:
        self.loop = None
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(asyncio.new_event_loop())
            if kind == "tornado":
                self.loop = IOLoop.current()
                ready.set()
                self.loop.start()
            else:
                self.loop = asyncio.get_event_loop()
                ready.set()
                self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        if isinstance(self.loop, IOLoop):
            self.loop.add_callback(self.loop.stop)
        else:
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.mark.parametrize("kind", ["tornado", "asyncio"])
def test_when_items_come_from_many_threads_then_batches_apply_on_the_loop_thread(
    kind,
):
    looper = LoopThread(kind)
    seen: list[int] = []
    threads: set[int] = set()
    everything = threading.Event()

    def apply(batch: list[int]) -> None:
        threads.add(threading.get_ident())
        seen.extend(batch)
        if len(seen) == 400:
            everything.set()

    writer = CoalescingWriter(apply, interval=0.05, loop=looper.loop)
    assert writer.in_kernel
    producers = [
        threading.Thread(
            target=lambda k=k: [writer.put(k * 100 + i) for i in range(100)]
        )
        for k in range(4)
    ]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    assert everything.wait(10)
    looper.stop()
    assert threads == {looper.thread.ident}
    assert sorted(seen) == list(range(400))
    for k in range(4):  # each producer's items stay in order
        mine = [x for x in seen if x // 100 == k]
        assert mine == sorted(mine)


def test_when_outside_a_kernel_then_a_timer_thread_flushes():
    applied = threading.Event()
    batches: list[list[str]] = []

    def apply(batch: list[str]) -> None:
        batches.append(batch)
        applied.set()

    writer = CoalescingWriter(apply, interval=0.01)
    assert kernel_loop() is None
    assert not writer.in_kernel
    writer.put("a")
    assert applied.wait(10)
    assert batches[0] == ["a"]


def test_when_apply_raises_then_later_batches_still_apply():
    batches: list[list[int]] = []

    def apply(batch: list[int]) -> None:
        batches.append(batch)
        if batch == [1]:
            raise ValueError("bad update")

    writer = CoalescingWriter(apply, interval=3600)
    writer.put(1)
    assert writer.flush() == 1
    writer.put(2)
    writer.put(3)
    assert writer.flush() == 2
    assert batches == [[1], [2, 3]]


def test_when_closed_then_puts_are_ignored():
    batches: list[list[int]] = []
    writer = CoalescingWriter(batches.append, interval=3600)
    writer.put(1)
    writer.close()
    writer.put(2)
    assert writer.flush() == 0
    assert batches == []


KERNEL_SETUP = """
import threading
from openhcs_nb.jupyter.viewer import PlateViewer
from openhcs_nb.client import WellEvent
viewer = PlateViewer()
on_main = []
apply = viewer._writer._apply
def spy(items):
    on_main.append(threading.current_thread() is threading.main_thread())
    apply(items)
viewer._writer._apply = spy
def emit():
    for i in range(20):
        viewer._writer.put(WellEvent(f"A{i + 1:02d}", "done", {"count": i}))
threading.Thread(target=emit).start()
print(viewer._writer.in_kernel)
"""


def test_when_in_a_real_kernel_then_updates_apply_on_its_main_thread_between_cells():
    import time

    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    out: list[str] = []

    def run(code: str) -> str:
        out.clear()
        kc.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda m: out.append(
                m["content"].get("text", m["content"].get("evalue", ""))
            ),
        )
        return "".join(out).strip()

    try:
        assert run(KERNEL_SETUP) == "True"
        deadline = time.monotonic() + 30
        while (seen := run("print(len(viewer.status), on_main)")).split()[0] != "20":
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        assert seen.startswith("20 [True")
        assert "False" not in seen
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
