"""The live plate viewer: an anywidget whose pixels travel as binary buffers.

The browser half is ``static/plate_viewer.js`` (a rendering core plus a thin
anywidget adapter; its header documents the state keys) and
``static/well_view.js`` (the zoomable well canvas), joined by
:func:`build_esm` into anywidget's one module. This half keeps that
state: the plate layout, each well's status and summary values, and the
images of the selected well, packed by :func:`~._images.pack_planes` into
``image_data`` (bytes, which ipywidgets sends as a buffer, never base64) and
``image_meta``.

Where images come from is pluggable and separate from the transport:

- the previews streamed in each ``WellEvent`` (``"image/<ch>"``,
  ``"labels/<name>"``), kept as they arrive within ``preview_budget_bytes``
  (the newest wells; a dropped well is fetched again from the followed
  execution when selected, or says plainly that its preview was not kept); or
- ``fetch_well(well, field) -> {name: array}``, called on a background thread
  when the user picks a well or field (``_viewer_fetchers``). A viewer that
  follows an execution and was given none still browses every field: field 0
  from the streamed previews, the others from the run's results on the server.
  While a fetch is under way the well shows its streamed previews, or says it
  is loading: a server preview can wait behind the run's own wells, and a
  well must not sit black meanwhile.

Per-well state (``status``, ``values``, ``errors``) is readable here but
not widget state: each batch sends the page only the wells that changed, and
a view that opens says "ready" and gets all of them (``_viewer_wells``).
How the selected well's images are shown is in ``_viewer_show``.

A well's status and the run's state are read from the followed execution on
every batch (``well_state``, ``state``), the same source the run panel reads,
so the two never disagree; ``WellStarted`` marks a well running.

Zooming past the preview asks for full-resolution tiles by custom message,
never state: ``tiles=`` (or a followed execution with ``pyramid`` and
``tile``) is a :class:`~._viewer_tiles.TileSource`, read on worker threads
by a :class:`~._viewer_tiles.TileServer`; replies go out through the writer.

Threads: ``follow`` registers callbacks that run on the client's thread; they
only queue. A :class:`~._writer.CoalescingWriter` applies the queue in batches
on the kernel's event loop, so ``_apply`` is the only code that changes traits
after construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anywidget
import numpy as np
import traitlets

from openhcs_nb.client._preview_cache import DEFAULT_PREVIEW_BUDGET, PreviewCache
from openhcs_nb.jupyter._viewer_esm import STATIC, build_esm
from openhcs_nb.jupyter._viewer_fetchers import (
    FetchWell,
    execution_fetcher,
    full_resolution_fetcher,
    preview_fetcher,
)
from openhcs_nb.jupyter._viewer_items import (
    Fetched,
    Load,
    Queued,
    Ready,
    RunState,
    Started,
    TileReply,
)
from openhcs_nb.jupyter._viewer_objects import FetchObjects, ObjectServer
from openhcs_nb.jupyter._viewer_show import ImageDisplay, Refetch
from openhcs_nb.jupyter._viewer_state import (
    FINISHED,
    clean_summary,
    ex_error,
    run_state_text,
    settle_unfinished,
)
from openhcs_nb.jupyter._viewer_tiles import TileServer, TileSource, tile_source_of
from openhcs_nb.jupyter._viewer_wells import KEYS, READY, delta, snapshot
from openhcs_nb.jupyter._writer import DEFAULT_INTERVAL, CoalescingWriter

__all__ = [
    "STATIC",
    "build_esm",
    "FetchWell",
    "PlateViewer",
    "full_resolution_fetcher",
    "preview_fetcher",
]


class PlateViewer(ImageDisplay, anywidget.AnyWidget):
    """Plate map coloured by status or a measurement, plus the selected well.

    Build it with a plate layout (``Connection.plate_info(plate)``, a
    ``PlateLayout`` or anything with ``rows``, ``columns``, ``wells``,
    ``fields`` and ``name``) and call :meth:`follow` with an execution.
    Streamed previews are kept up to ``preview_budget_bytes`` (newest wells).
    """

    _esm = traitlets.Unicode().tag(sync=True)
    _css = STATIC / "plate_viewer.css"

    plate_name = traitlets.Unicode("").tag(sync=True)
    rows = traitlets.List(traitlets.Unicode()).tag(sync=True)
    columns = traitlets.List(traitlets.Int()).tag(sync=True)
    wells = traitlets.List(traitlets.Unicode()).tag(sync=True)
    fields = traitlets.Int(1).tag(sync=True)
    # Per-well state, readable and observable here but not synced: the page
    # gets per-batch deltas and a snapshot when a view opens (_viewer_wells).
    status = traitlets.Dict()
    errors = traitlets.Dict()
    values = traitlets.Dict()
    measurement = traitlets.Unicode("status").tag(sync=True)
    measurements = traitlets.List(traitlets.Unicode()).tag(sync=True)
    plot_x = traitlets.Unicode("").tag(sync=True)  # scatter axes; "": the first
    plot_y = traitlets.Unicode("").tag(sync=True)  # two measurements
    selected_well = traitlets.Unicode("").tag(sync=True)
    field = traitlets.Int(0).tag(sync=True)
    channels = traitlets.List(traitlets.Dict()).tag(sync=True)
    show_labels = traitlets.Bool(True).tag(sync=True)
    label_mode = traitlets.Enum(("outline", "filled"), "outline").tag(sync=True)
    image_data = traitlets.Bytes(b"").tag(sync=True)
    image_meta = traitlets.Dict().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    run_state = traitlets.Unicode("").tag(sync=True)
    pixel_size = traitlets.Float(0.0).tag(sync=True)  # µm per pixel; 0: unknown

    def __init__(
        self,
        plate: Any = None,
        *,
        fetch_well: FetchWell | None = None,
        interval: float = DEFAULT_INTERVAL,
        loop: Any | None = None,
        preview_budget_bytes: int = DEFAULT_PREVIEW_BUDGET,
        tiles: TileSource | None = None,
        objects: FetchObjects | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(_esm=build_esm(), **kwargs)
        self._tiles: TileServer | None = None
        self._fetch_well = fetch_well
        self._fetch_field: FetchWell | None = None  # other fields, when following
        self._execution: Any = None
        self._previews: PreviewCache[str] = PreviewCache(preview_budget_bytes)
        self._streamed: set[str] = set()  # wells that came with previews
        self._refetch: Refetch | None = None
        self._request = 0
        self._serial = 0
        self._writer: CoalescingWriter[Any] = CoalescingWriter(
            self._apply, interval=interval, loop=loop
        )
        if plate is not None:
            self.set_plate(plate)
        self.observe(self._on_selection, names=["selected_well", "field"])
        # objects(well, field) -> rows for inspection; else a followed run's
        self._objects = ObjectServer(
            objects, lambda c, b: self._writer.put(TileReply(c, b))
        )
        self.on_msg(self._on_msg)
        if tiles is not None:
            self.serve_tiles(tiles)

    # --- public API -------------------------------------------------------------

    def set_plate(self, plate: Any) -> None:
        """Show the layout of ``plate`` (rows, columns, wells, fields, name)."""
        with self.hold_sync():
            self.plate_name = str(getattr(plate, "name", ""))
            self.rows = [str(r) for r in plate.rows]
            self.columns = [int(c) for c in plate.columns]
            self.wells = [str(w) for w in plate.wells]
            self.fields = max(1, int(getattr(plate, "fields", 1)))
            size = getattr(plate, "pixel_size_um", None) or getattr(
                plate, "pixel_size", None
            )
            self.pixel_size = float(size) if isinstance(size, int | float) else 0.0

    def serve_tiles(self, source: TileSource) -> None:
        """Answer the page's zoom requests with tiles of ``source``'s pyramids."""
        if self._tiles is not None:
            self._tiles.close()
        self._tiles = TileServer(source, lambda c, b: self._writer.put(TileReply(c, b)))

    def follow(self, execution: Any) -> PlateViewer:
        """Fill the plate in as ``execution`` reports wells; returns ``self``.

        ``execution`` needs ``on_well(callback)``. Used when present:
        ``add_done_callback``, ``requested_wells``, ``state``,
        ``well_state(well)``, ``on_well_started(callback)`` (running wells),
        ``previews(well)`` (a well whose previews were not kept) and
        ``fetch_full(well, site=...)`` (fields other than 0, when no
        ``fetch_well`` was given).
        """
        self._execution = execution
        self._objects.follow(execution)  # execution.objects, for inspection
        source = tile_source_of(execution)
        if self._tiles is None and source is not None:
            self.serve_tiles(source)
        refetch = getattr(execution, "previews", None)
        self._refetch = refetch if callable(refetch) else None
        if callable(getattr(execution, "fetch_full", None)):
            self._fetch_field = execution_fetcher(execution)
        requested = tuple(getattr(execution, "requested_wells", ()) or ())
        self._writer.put(Queued(requested or tuple(self.wells)))
        self._writer.put(RunState(str(getattr(execution, "state", "running"))))
        execution.on_well(self._writer.put)
        on_started = getattr(execution, "on_well_started", None)
        if callable(on_started):
            on_started(lambda well: self._writer.put(Started(str(well))))
        add_done = getattr(execution, "add_done_callback", None)
        if add_done is not None:
            add_done(
                lambda ex: self._writer.put(
                    RunState(str(getattr(ex, "state", "done")), ex_error(ex), True)
                )
            )
        return self

    def show_well(
        self, well: str, images: Mapping[str, np.ndarray], field: int = 0
    ) -> None:
        """Keep ``images`` as ``well``'s and show them (any thread)."""
        self._writer.put(Fetched(-1, well, field, dict(images), None))

    def flush(self) -> int:
        """Apply queued updates now (scripts and tests); returns how many."""
        return self._writer.flush()

    def close(self) -> None:
        """Stop updating and close the widget."""
        self._writer.close()
        if self._tiles is not None:
            self._tiles.close()
        self._objects.close()
        super().close()

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """A custom message from the page: a view is ready, or tile requests."""
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == READY:  # a new view: it needs every well (_viewer_wells)
            self._writer.put(Ready())
            return
        # (Other page requests are routed here by their "type".)
        if self._objects.handle(content):  # object inspection (_viewer_objects)
            return
        if self._tiles is not None:
            self._tiles.handle(content)
        elif content.get("type") == "pyramid":  # no tiles: zoom the preview only
            head = {k: content.get(k) for k in ("type", "id", "well", "field")}
            self._writer.put(TileReply({**head, "levels": {}}, []))

    # --- the single writer ------------------------------------------------------

    def _on_selection(self, _change: Any) -> None:
        """The user picked a well or field: load its images (via the writer)."""
        self._request += 1
        request, well, field = self._request, self.selected_well, self.field
        if not well:
            return
        fetch = self._fetch_well or (self._fetch_field if field else None)
        # Show what is here now (the streamed previews, or "loading"): a fetch
        # can wait behind the run's own wells on the server.
        self._writer.put(Load(request, well, field, loading=fetch is not None))
        if fetch is not None:
            self._start_fetch(request, well, field, fetch, keep=False)

    def _apply(self, items: list[Any]) -> None:
        """Apply one batch: one trait assignment per changed trait."""
        status = dict(self.status)
        values = dict(self.values)
        errors = dict(self.errors)
        reload_selected = False
        first_with_images = last_with_images = ""
        shown: Fetched | None = None
        load: Load | None = None
        run_state = self.run_state
        ended = ready = False
        for item in items:
            if isinstance(item, Queued):
                for well in item.wells:
                    status.setdefault(well, "queued")
            elif isinstance(item, RunState):
                run_state = item.state + (f": {item.error}" if item.error else "")
                ended |= item.final
            elif isinstance(item, Started):
                if status.get(item.well) not in FINISHED:
                    status[item.well] = "running"
            elif isinstance(item, Load):
                if item.request == self._request:
                    load = item
            elif isinstance(item, TileReply):
                self.send(item.content, item.buffers)
            elif isinstance(item, Ready):
                ready = True
            elif isinstance(item, Fetched):
                if item.request == -1 or item.keep:
                    self._keep(item.well, item.images or {})
                if item.request in (-1, self._request):
                    shown = item
            else:  # a WellEvent
                well = str(item.well)
                status[well] = str(item.status)
                if run_state in ("", "queued"):
                    run_state = "running"
                summary = clean_summary(getattr(item, "summary", {}) or {})
                if summary:
                    values[well] = summary
                if getattr(item, "error", None):
                    errors[well] = str(item.error)
                previews = getattr(item, "previews", None)
                if previews:
                    self._keep(well, previews)
                    first_with_images = first_with_images or well
                    last_with_images = well
                elif getattr(item, "previews_dropped", False):
                    self._streamed.add(well)  # replayed after the client dropped them
                reload_selected |= well == self.selected_well
        if self._execution is not None:
            run_state = run_state_text(self._execution, run_state)
            if ended and self._execution_ended():
                settle_unfinished(status, self._execution)
        with self.hold_sync():
            self._grow_layout(status)
            after = {"status": status, "values": values, "errors": errors}
            change = snapshot(after) if ready else delta(self._well_state(), after)
            self.status = status
            self.values = values
            self.errors = errors
            self.measurements = sorted({k for row in values.values() for k in row})
            self.run_state = run_state
            if shown is not None:
                self._show_fetched(shown)
            elif load is not None:
                self._show_local(load.well, load.field, loading=load.loading)
            elif reload_selected and self.selected_well:
                if self._fetch_well is None and not (self.field and self._fetch_field):
                    self._show_local(self.selected_well, self.field)
                elif status.get(self.selected_well) == "done":
                    self._on_selection(None)
        if change is not None:
            self.send(change)
        if not self.selected_well and first_with_images:
            # The first well to finish, unless a long batch already dropped it.
            kept = first_with_images in self._previews
            self.selected_well = first_with_images if kept else last_with_images

    def _well_state(self) -> dict[str, Mapping[str, Any]]:
        return {key: getattr(self, key) for key in KEYS}

    def _execution_ended(self) -> bool:
        done = getattr(self._execution, "done", None)
        return bool(done()) if callable(done) else True
