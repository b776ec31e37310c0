"""How the plate viewer shows the selected well's images (a mixin of ``PlateViewer``).

Split from ``viewer.py`` so the widget keeps its traits, its public API and
its single writer, and this module the rules for what the well view shows:

- fetched images are shown as they came, or the fetch error as one line;
- a well's streamed previews are field 0 only; another field says so, or
  waits for the fetch that is under way ("loading ...");
- a well whose previews fell out of the preview budget is fetched again from
  the followed execution when it can be, else the message says why it is
  blank;
- every new image bumps ``image_meta["serial"]`` so the page redraws even
  when only the bytes differ.

Only the writer (``PlateViewer._apply``) calls the ``_show_*`` methods, so
they may set traits; fetches run on threads and hand back through the writer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from openhcs_nb.client._preview_cache import PreviewCache
from openhcs_nb.jupyter._images import pack_planes
from openhcs_nb.jupyter._viewer_fetchers import FetchWell, fetch_error
from openhcs_nb.jupyter._viewer_items import Fetched
from openhcs_nb.jupyter._viewer_state import channel_settings, grown_layout
from openhcs_nb.jupyter._writer import CoalescingWriter

#: Fetches a finished well's streamed previews again (``Execution.previews``).
Refetch = Callable[[str], Mapping[str, np.ndarray]]


class ImageDisplay:
    """The well-view half of ``PlateViewer``; it owns no state of its own."""

    # Set by PlateViewer (traits and the attributes its __init__ makes).
    selected_well: str
    message: str
    channels: list[dict[str, Any]]
    image_meta: dict[str, Any]
    image_data: bytes
    errors: dict[str, str]
    rows: list[str]
    columns: list[int]
    wells: list[str]
    _previews: PreviewCache[str]
    _streamed: set[str]
    _refetch: Refetch | None
    _request: int
    _serial: int

    _writer: CoalescingWriter[Any]

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
            error = fetch_error(exc)
            self._writer.put(Fetched(request, well, field, None, error))
            return
        self._writer.put(Fetched(request, well, field, images, None, keep))

    def _show_fetched(self, item: Fetched) -> None:
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

    def _show_local(self, well: str, field: int, *, loading: bool = False) -> None:
        """Show the streamed previews of ``well`` (field 0 only), or say why not."""
        images = self._previews.get(well) or {}
        if loading:  # a fetch of this very field will follow
            self._show_images(well, field, images if field == 0 else {})
            if not images or field != 0:
                self.message = f"loading {well} field {field}…"
            return
        if not images and well in self._streamed:
            self._show_dropped(well, field)
            return
        self._show_images(well, field, images)
        if not images:
            why = self.errors.get(well) or f"no images for {well} yet"
            self.message = f"{well} failed: {why}" if well in self.errors else why
        elif field != 0:
            self.message = f"{well} field {field}: only field 0 was sent to this viewer"

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
        # ``serial`` makes every new image a change of image_meta, so the page
        # redraws even when only the bytes differ (a refetch of the same field).
        self._serial += 1
        meta = {**meta, "well": well, "field": field, "serial": self._serial}
        self.channels = channel_settings(self.channels, data, meta)
        self.image_meta = meta
        self.image_data = data
        self.message = ""

    def _grow_layout(self, status: Mapping[str, str]) -> None:
        """Add rows and columns for wells outside the layout (no layout given)."""
        grown = grown_layout(self.rows, self.columns, self.wells, status)
        if grown is not None:
            self.rows, self.columns, self.wells = grown
