"""The live plate viewer: an anywidget whose pixels travel as binary buffers.

The browser half is ``static/plate_viewer.js`` (a rendering core plus a thin
anywidget adapter; its header documents the state keys). This half keeps that
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
  when the user picks a well or field: :func:`preview_fetcher` (a server-side
  preview of any well and field) or :func:`full_resolution_fetcher` (the full
  size images of a finished well).

Threads: ``follow`` registers callbacks that run on the client's thread; they
only queue. A :class:`~._writer.CoalescingWriter` applies the queue in batches
on the kernel's event loop, so ``_apply`` is the only code that changes traits
after construction.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from openhcs_nb.client._preview_cache import DEFAULT_PREVIEW_BUDGET, PreviewCache
from openhcs_nb.jupyter._images import (
    CHANNEL_COLORS,
    auto_contrast,
    pack_planes,
    unpack_planes,
)
from openhcs_nb.jupyter._writer import DEFAULT_INTERVAL, CoalescingWriter
from openhcs_nb.plates.model import split_well, well_name

STATIC = Path(__file__).parent / "static"

FetchWell = Callable[[str, int], Mapping[str, np.ndarray]]
#: Fetches a finished well's streamed previews again (``Execution.previews``).
Refetch = Callable[[str], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class _Queued:
    wells: tuple[str, ...]


@dataclass(frozen=True)
class _RunState:
    state: str
    error: str | None = None


@dataclass(frozen=True)
class _Load:
    """Show the images of (well, field) as request number ``request``."""

    request: int
    well: str
    field: int


@dataclass(frozen=True)
class _Fetched:
    request: int
    well: str
    field: int
    images: Mapping[str, np.ndarray] | None
    error: str | None
    keep: bool = False  # keep the images as the well's previews


class PlateViewer(anywidget.AnyWidget):
    """Plate map coloured by status or a measurement, plus the selected well.

    Build it with a plate layout (``Connection.plate_info(plate)``, a
    ``PlateLayout`` or anything with ``rows``, ``columns``, ``wells``,
    ``fields`` and ``name``) and call :meth:`follow` with an execution.
    Streamed previews are kept up to ``preview_budget_bytes`` (newest wells).
    """

    _esm = STATIC / "plate_viewer.js"
    _css = STATIC / "plate_viewer.css"

    plate_name = traitlets.Unicode("").tag(sync=True)
    rows = traitlets.List(traitlets.Unicode()).tag(sync=True)
    columns = traitlets.List(traitlets.Int()).tag(sync=True)
    wells = traitlets.List(traitlets.Unicode()).tag(sync=True)
    fields = traitlets.Int(1).tag(sync=True)
    status = traitlets.Dict().tag(sync=True)
    errors = traitlets.Dict().tag(sync=True)
    values = traitlets.Dict().tag(sync=True)
    measurement = traitlets.Unicode("status").tag(sync=True)
    measurements = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_well = traitlets.Unicode("").tag(sync=True)
    field = traitlets.Int(0).tag(sync=True)
    channels = traitlets.List(traitlets.Dict()).tag(sync=True)
    show_labels = traitlets.Bool(True).tag(sync=True)
    image_data = traitlets.Bytes(b"").tag(sync=True)
    image_meta = traitlets.Dict().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    run_state = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        plate: Any = None,
        *,
        fetch_well: FetchWell | None = None,
        interval: float = DEFAULT_INTERVAL,
        loop: Any | None = None,
        preview_budget_bytes: int = DEFAULT_PREVIEW_BUDGET,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._fetch_well = fetch_well
        self._previews: PreviewCache[str] = PreviewCache(preview_budget_bytes)
        self._streamed: set[str] = set()  # wells that came with previews
        self._refetch: Refetch | None = None
        self._request = 0
        self._writer: CoalescingWriter[Any] = CoalescingWriter(
            self._apply, interval=interval, loop=loop
        )
        if plate is not None:
            self.set_plate(plate)
        self.observe(self._on_selection, names=["selected_well", "field"])

    # --- public API -------------------------------------------------------------

    def set_plate(self, plate: Any) -> None:
        """Show the layout of ``plate`` (rows, columns, wells, fields, name)."""
        with self.hold_sync():
            self.plate_name = str(getattr(plate, "name", ""))
            self.rows = [str(r) for r in plate.rows]
            self.columns = [int(c) for c in plate.columns]
            self.wells = [str(w) for w in plate.wells]
            self.fields = max(1, int(getattr(plate, "fields", 1)))

    def follow(self, execution: Any) -> PlateViewer:
        """Fill the plate in as ``execution`` reports wells; returns ``self``.

        ``execution`` needs ``on_well(callback)``; ``add_done_callback``,
        ``requested_wells`` and ``previews(well)`` (to load a well whose
        previews were not kept) are used when present.
        """
        refetch = getattr(execution, "previews", None)
        self._refetch = refetch if callable(refetch) else None
        requested = tuple(getattr(execution, "requested_wells", ()) or ())
        self._writer.put(_Queued(requested or tuple(self.wells)))
        self._writer.put(_RunState(str(getattr(execution, "state", "running"))))
        execution.on_well(self._writer.put)
        add_done = getattr(execution, "add_done_callback", None)
        if add_done is not None:
            add_done(
                lambda ex: self._writer.put(
                    _RunState(str(getattr(ex, "state", "done")), ex_error(ex))
                )
            )
        return self

    def show_well(
        self, well: str, images: Mapping[str, np.ndarray], field: int = 0
    ) -> None:
        """Keep ``images`` as ``well``'s and show them (any thread)."""
        self._writer.put(_Fetched(-1, well, field, dict(images), None))

    def flush(self) -> int:
        """Apply queued updates now (scripts and tests); returns how many."""
        return self._writer.flush()

    def close(self) -> None:
        """Stop updating and close the widget."""
        self._writer.close()
        super().close()

    # --- the single writer ------------------------------------------------------

    def _on_selection(self, _change: Any) -> None:
        """The user picked a well or field: load its images (via the writer)."""
        self._request += 1
        request, well, field = self._request, self.selected_well, self.field
        if not well:
            return
        if self._fetch_well is None:
            self._writer.put(_Load(request, well, field))
            return
        self._start_fetch(request, well, field, self._fetch_well, keep=False)

    def _start_fetch(
        self, request: int, well: str, field: int, fetch: FetchWell, *, keep: bool
    ) -> None:
        """Run ``fetch(well, field)`` off the kernel's thread; the writer shows it."""
        threading.Thread(
            target=self._fetch,
            args=(request, well, field, fetch, keep),
            name=f"openhcs-viewer-fetch {well}",
            daemon=True,
        ).start()

    def _fetch(
        self, request: int, well: str, field: int, fetch: FetchWell, keep: bool
    ) -> None:
        try:
            images = dict(fetch(well, field))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._writer.put(_Fetched(request, well, field, None, error))
            return
        self._writer.put(_Fetched(request, well, field, images, None, keep))

    def _apply(self, items: list[Any]) -> None:
        """Apply one batch: one trait assignment per changed trait."""
        status = dict(self.status)
        values = dict(self.values)
        errors = dict(self.errors)
        reload_selected = False
        first_with_images = last_with_images = ""
        shown: _Fetched | None = None
        run_state = self.run_state
        for item in items:
            if isinstance(item, _Queued):
                for well in item.wells:
                    status.setdefault(well, "queued")
            elif isinstance(item, _RunState):
                run_state = item.state + (f": {item.error}" if item.error else "")
            elif isinstance(item, _Load):
                if item.request == self._request:
                    reload_selected = True
            elif isinstance(item, _Fetched):
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
        with self.hold_sync():
            self._grow_layout(status)
            self.status = status
            self.values = values
            self.errors = errors
            self.measurements = sorted({k for row in values.values() for k in row})
            self.run_state = run_state
            if shown is not None:
                self._show_fetched(shown)
            elif reload_selected and self.selected_well:
                if self._fetch_well is None:
                    self._show_local(self.selected_well, self.field)
                elif status.get(self.selected_well) == "done":
                    self._on_selection(None)
        if not self.selected_well and first_with_images:
            # The first well to finish, unless a long batch already dropped it.
            kept = first_with_images in self._previews
            self.selected_well = first_with_images if kept else last_with_images

    def _show_fetched(self, item: _Fetched) -> None:
        if item.request == -1 and item.well != self.selected_well:
            self.selected_well = item.well  # _Load queued; it shows the same images
            return
        if item.error is not None:
            self._show_images(item.well, item.field, {})
            self.message = f"{item.well} field {item.field}: {item.error}"
            return
        self._show_images(item.well, item.field, item.images or {})
        if not item.images:
            self.message = f"no images for {item.well} field {item.field}"

    def _keep(self, well: str, images: Mapping[str, np.ndarray]) -> None:
        """Keep ``images`` as ``well``'s previews, within the byte budget."""
        if images:
            self._streamed.add(well)
        self._previews.put(well, images)

    def _show_local(self, well: str, field: int) -> None:
        images = self._previews.get(well) or {}
        if not images and well in self._streamed:
            self._show_dropped(well, field)
            return
        self._show_images(well, field, images)
        if not images:
            why = self.errors.get(well) or f"no images for {well} yet"
            self.message = f"{well} failed: {why}" if well in self.errors else why
        elif field != 0:
            self.message = (
                f"only field 0 of {well} was streamed; pass fetch_well=... to "
                "PlateViewer to browse other fields"
            )

    def _show_dropped(self, well: str, field: int) -> None:
        """A well whose previews were not kept: load them again, or say so."""
        self._show_images(well, field, {})
        if self._refetch is None:
            self.message = (
                f"{well}: its preview was not kept in memory (newer wells "
                "filled the preview budget)"
            )
            return
        refetch = self._refetch
        self.message = f"{well}: loading its preview (it was not kept in memory)…"
        self._start_fetch(
            self._request, well, field, lambda w, _field: refetch(w), keep=True
        )

    def _show_images(
        self, well: str, field: int, images: Mapping[str, np.ndarray]
    ) -> None:
        data, meta = pack_planes(images) if images else (b"", {"planes": []})
        meta = {**meta, "well": well, "field": field}
        self.channels = self._channel_settings(data, meta)
        self.image_meta = meta
        self.image_data = data
        self.message = ""

    def _channel_settings(
        self, data: bytes, meta: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Keep the user's settings; new channels get a colour and auto-contrast."""
        settings = [dict(c) for c in self.channels]
        known = {c["name"] for c in settings}
        planes = unpack_planes(data, meta) if meta.get("planes") else {}
        for plane in meta.get("planes", []):
            name = plane["name"]
            if plane["kind"] != "image" or name in known:
                continue
            lo, hi = auto_contrast(planes[name])
            color = CHANNEL_COLORS[len(settings) % len(CHANNEL_COLORS)]
            settings.append(
                {
                    "name": name,
                    "color": color,
                    "visible": True,
                    "min": math.floor(lo),
                    "max": math.ceil(hi),
                }
            )
            known.add(name)
        return settings

    def _grow_layout(self, status: Mapping[str, str]) -> None:
        """Add rows and columns for wells outside the layout (no layout given)."""
        missing = [w for w in status if w not in set(self.wells)]
        if not missing:
            return
        rows, columns = set(self.rows), set(self.columns)
        for well in missing:
            row, column = split_well(well)
            rows.add(row)
            columns.add(column)
        self.rows = sorted(rows, key=lambda r: (len(r), r))
        self.columns = sorted(columns)
        self.wells = list(self.wells) + [well_name(*split_well(w)) for w in missing]


def clean_summary(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """Numbers only, as floats; NaN and infinities become None (JSON-safe)."""
    out: dict[str, float | None] = {}
    for key, value in summary.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            continue
        number = float(value)
        out[str(key)] = number if math.isfinite(number) else None
    return out


def ex_error(execution: Any) -> str | None:
    """An execution's overall error, if it has one."""
    error = getattr(execution, "error", None)
    return None if error is None else str(error)


def preview_fetcher(
    connection: Any, pipeline: Any, plate: str, *, max_size: int = 512
) -> FetchWell:
    """``fetch_well`` that previews ``pipeline`` on the server for any well/field.

    Each call runs ``connection.preview(...)`` (on the viewer's fetch thread).
    """

    def fetch(well: str, field: int) -> Mapping[str, np.ndarray]:
        result = connection.preview(
            pipeline, plate, well, site=field, max_size=max_size
        )
        return result.images

    return fetch


def full_resolution_fetcher(execution: Any) -> FetchWell:
    """``fetch_well`` that fetches a finished well's full-size images.

    Backed by ``execution.fetch_full(well)``; results keep the first field
    only, so other fields raise ``LookupError`` (shown in the viewer).
    """

    def fetch(well: str, field: int) -> Mapping[str, np.ndarray]:
        if field != 0:
            raise LookupError(
                f"results keep field 0 only; field {field} of {well} was not stored"
            )
        return execution.fetch_full(well)

    return fetch
