"""The napari pop-out: the same well stream, as layers tiled like the plate.

``show_napari(execution)`` opens (or reuses) a napari viewer and adds each
finished well's preview images and labels as layers named ``"B03 DAPI"`` and
``"B03 nuclei"``, translated so that wells sit where they are on the plate.

Threads: ``execution.on_well`` runs on the client's callback thread and only
puts the event on a queue; a napari ``thread_worker`` generator drains the
queue, and its ``yielded`` signal delivers each event on the Qt main thread,
where layers are added. Failed wells are listed in the canvas's text overlay
(napari itself overwrites the status bar). The generator ends when the
execution ends or the viewer window is destroyed.

napari needs a display: on Linux without ``DISPLAY`` or ``WAYLAND_DISPLAY``
(and without Qt's offscreen platform) a :class:`NoDisplayError` points to the
inline viewer instead. :func:`check_napari` asks both questions (display,
napari installed) without importing napari, so the magics can refuse
``viewer=napari`` before anything is submitted.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from openhcs_nb.errors import NoDisplayError, OptionalDependencyError
from openhcs_nb.jupyter._images import auto_contrast, split_planes
from openhcs_nb.plates.model import split_well

if TYPE_CHECKING:
    import napari

#: napari colormaps given to channels in the order they first appear.
COLORMAPS: tuple[str, ...] = ("blue", "green", "magenta", "red", "yellow", "cyan")
_END = object()


def row_index(row: str) -> int:
    """``"A"`` -> 0, ``"Z"`` -> 25, ``"AA"`` -> 26 (inverse of ``row_letters``)."""
    if len(row) == 1:
        return ord(row) - ord("A")
    return (ord(row[0]) - ord("A") + 1) * 26 + ord(row[1]) - ord("A")


#: Qt platforms that draw without a display server.
HEADLESS_QT = frozenset({"offscreen", "minimal", "vnc"})


def check_display() -> None:
    """Raise when no display is reachable (Linux without X11 or Wayland).

    Raises
    ------
    NoDisplayError
        ``DISPLAY`` and ``WAYLAND_DISPLAY`` are both unset on Linux, and Qt is
        not told to draw offscreen (``QT_QPA_PLATFORM``).
    """
    if not sys.platform.startswith("linux"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in HEADLESS_QT:
        return
    raise NoDisplayError(
        "napari needs a display, and this machine has none (DISPLAY and "
        "WAYLAND_DISPLAY are unset); use the inline viewer instead: "
        'viewer="inline", or PlateViewer(...).follow(execution)'
    )


def check_napari() -> None:
    """Raise unless napari could open a window here; imports nothing heavy.

    Raises
    ------
    NoDisplayError
        No display on this machine: use the inline viewer.
    OptionalDependencyError
        napari is not installed (``pip install 'openhcs-nb[napari]'``).
    """
    check_display()
    try:
        found = importlib.util.find_spec("napari") is not None
    except (ImportError, ValueError):  # a broken or stubbed-out napari
        found = False
    if not found:
        raise OptionalDependencyError("the napari viewer", "napari", "napari")


class WellFeed:
    """A queue fed by an execution's callbacks, drained by a napari worker."""

    def __init__(self, execution: Any) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        execution.on_well(self._queue.put)
        add_done = getattr(execution, "add_done_callback", None)
        if add_done is not None:
            add_done(lambda _execution: self._queue.put(_END))

    def events(self) -> Iterator[Any]:
        """Yield well events until the execution ends or :meth:`stop` is called."""
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item

    def stop(self, *_args: Any) -> None:
        """End :meth:`events` (the viewer was closed)."""
        self._stop.set()


class WellTiler:
    """Adds each well's images and labels as layers at the well's plate position."""

    def __init__(self, viewer: napari.Viewer, gap: float = 0.1) -> None:
        self.viewer = viewer
        self.gap = gap
        self._pitch: tuple[float, float] | None = None
        self._colormaps: dict[str, str] = {}
        self._limits: dict[str, tuple[float, float]] = {}
        self.failed: dict[str, str] = {}

    def translate(self, well: str, shape: tuple[int, ...]) -> tuple[float, float]:
        """Where ``well``'s top-left corner goes (the first well fixes the pitch)."""
        if self._pitch is None:
            self._pitch = (shape[0] * (1 + self.gap), shape[1] * (1 + self.gap))
        row, column = split_well(well)
        return row_index(row) * self._pitch[0], (column - 1) * self._pitch[1]

    def add(self, event: Any) -> None:
        """Qt main thread: add one well's layers; list a failure in the overlay."""
        if getattr(event, "status", "done") != "done":
            self.failed[event.well] = str(event.error)
            overlay = self.viewer.text_overlay
            overlay.text = "failed: " + "; ".join(
                f"{well} ({error})" for well, error in self.failed.items()
            )
            overlay.color = "red"
            overlay.visible = True
            self.viewer.status = f"{event.well} failed: {event.error}"
            return
        channels, labels = split_planes(event.previews or {})
        if not channels and not labels:
            return
        first = next(iter({**channels, **labels}.values()))
        offset = self.translate(event.well, first.shape)
        for name, plane in channels.items():
            colormap = self._colormaps.setdefault(
                name, COLORMAPS[len(self._colormaps) % len(COLORMAPS)]
            )
            limits = self._limits.setdefault(name, auto_contrast(plane))
            self.viewer.add_image(
                plane,
                name=f"{event.well} {name}",
                translate=offset,
                colormap=colormap,
                contrast_limits=limits,
                blending="additive",
            )
        for name, plane in labels.items():
            layer = self.viewer.add_labels(
                np.asarray(plane, dtype=np.int32),
                name=f"{event.well} {name}",
                translate=offset,
            )
            layer.contour = 1
        self.viewer.status = f"{event.well} done"


def show_napari(
    execution: Any, viewer: napari.Viewer | None = None, *, gap: float = 0.1
) -> napari.Viewer:
    """Open napari and add each well of ``execution`` as layers when it arrives.

    Returns the viewer at once; layers appear while the Qt event loop runs
    (in Jupyter, after ``%gui qt``).

    Raises
    ------
    NoDisplayError
        No display on this machine: use the inline viewer.
    OptionalDependencyError
        napari is not installed (``pip install 'openhcs-nb[napari]'``).
    """
    check_display()
    try:
        import napari
        from napari.qt.threading import thread_worker
    except ImportError as exc:
        raise OptionalDependencyError("the napari viewer", "napari", "napari") from exc
    if viewer is None:
        viewer = napari.Viewer(
            title=f"openhcs {getattr(execution, 'id', '')} on "
            f"{getattr(execution, 'plate', '')}"
        )
    feed = WellFeed(execution)
    tiler = WellTiler(viewer, gap)
    worker = thread_worker(feed.events, start_thread=False)()

    def deliver(event: Any) -> None:
        # A closure, not the bound method: PyQt holds bound methods weakly,
        # and nothing else keeps the tiler alive once show_napari returns.
        tiler.add(event)

    worker.yielded.connect(deliver)
    window = getattr(viewer.window, "_qt_window", None)
    if window is not None:
        window.destroyed.connect(feed.stop)
    worker.start()
    return viewer
