"""ParentWatch calls back once the watched process has exited, and not before."""

from __future__ import annotations

import subprocess
import threading

from openhcs_nb.server.parent_watch import ParentWatch, process_alive


def test_when_watched_process_exits_then_on_gone_is_called_once() -> None:
    child = subprocess.Popen(["sleep", "60"])
    calls: list[int] = []
    gone = threading.Event()

    def on_gone() -> None:
        calls.append(child.pid)
        gone.set()

    watch = ParentWatch(child.pid, on_gone, every_s=0.05).start()
    try:
        assert watch.alive() and process_alive(child.pid)
        assert not gone.wait(0.3), "called while the process still ran"
        child.kill()
        child.wait(10)
        assert gone.wait(10), "never noticed the process had gone"
        assert not watch.alive()
        assert calls == [child.pid]
    finally:
        watch.stop()
        child.kill()
