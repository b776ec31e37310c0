"""Object inspection for the plate viewer: a field's object rows on request.

The page asks by anywidget custom message, never through state:

- ``{"type": "objects", "id", "well", "field"}`` is answered with
  ``{"type": "objects", "id", "well", "field", "columns": [...],
  "units": {column: unit}, "rows": [[...], ...], "total": n}``;
- or, when the viewer has no measurements (a ``fetch_well`` viewer given no
  ``objects=``), with ``{..., "none": "no measurements for this view"}``;
- errors come back as ``{..., "error": "<one line>"}`` (a well still running,
  a pipeline without a measure step) and are not kept, so asking again later
  can succeed.

Why every row of the field at once, looked up by label in the page: the
cursor crosses many objects a second, and a round trip per object through
the kernel and the server would lag behind it and spend the user's request
rate. A field's rows are small (tens to a few thousand objects, some forty
numbers each), so one reply per (well, field) makes every later hover
instant. Replies are bounded (``max_rows``; ``total`` says how many there
were) and the last ``cache_size`` fields are kept here, so going back to a
well asks the server nothing.

Only rows of the first t and z are sent: the well view shows those planes,
and label ids repeat across planes. Values are JSON-safe: NaN (a column of
another object set) becomes null.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from openhcs_nb.jupyter._viewer_fetchers import fetch_error

#: ``(well, field) -> DataFrame`` of object rows (``Execution.objects`` fits).
FetchObjects = Callable[[str, int], Any]
#: Sends one reply to the page: (content, buffers).
Reply = Callable[[dict[str, Any], list[bytes]], None]

KIND = "objects"
NO_MEASUREMENTS = "no measurements for this view"
DEFAULT_MAX_ROWS = 20_000
DEFAULT_CACHE_SIZE = 16


def objects_of(execution: Any) -> FetchObjects | None:
    """``execution.objects`` when it can list a well's objects, else None."""
    fetch = getattr(execution, "objects", None)
    return fetch if callable(fetch) else None


def rows_content(frame: Any, max_rows: int = DEFAULT_MAX_ROWS) -> dict[str, Any]:
    """A DataFrame of object rows as the page's reply: columns, units, rows."""
    for axis in ("t", "z"):
        if axis in frame:
            frame = frame[frame[axis] == 0]
    columns = [str(c) for c in frame.columns]
    units = dict(getattr(frame, "attrs", {}).get("units", {}) or {})
    rows = [
        [_json_value(v) for v in row]
        for row in frame.head(max_rows).itertuples(index=False, name=None)
    ]
    return {
        "columns": columns,
        "units": {c: str(u) for c, u in units.items() if c in columns},
        "rows": rows,
        "total": len(frame),
    }


def _json_value(value: Any) -> Any:
    """A plain JSON value: numbers stay numbers, NaN and NA become None."""
    if value is None:
        return None
    if isinstance(value, bool | str):
        return value
    item = getattr(value, "item", None)
    if callable(item):  # numpy scalars
        value = item()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    import pandas as pd

    return None if pd.isna(value) else str(value)


class ObjectServer:
    """Answers the page's object requests on a worker thread, with a cache."""

    def __init__(
        self,
        fetch: FetchObjects | None,
        reply: Reply,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._fetch = fetch
        self._given = fetch is not None  # an explicit objects= wins over follow
        self._reply = reply
        self._max_rows = max_rows
        self._cache_size = max(1, cache_size)
        self._cache: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, "openhcs-viewer-objects")
        self._closed = False

    def follow(self, execution: Any) -> None:
        """Read objects from ``execution`` (unless ``objects=`` was given)."""
        if self._given:
            return
        with self._lock:
            self._fetch = objects_of(execution)
            self._cache.clear()

    def handle(self, content: Mapping[str, Any]) -> bool:
        """Take one message from the page; False when it is not ours."""
        if content.get("type") != KIND:
            return False
        with self._lock:
            if self._closed:
                return True
        self._pool.submit(self._send, dict(content))
        return True

    def answer(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The reply to one request (on the calling thread); never raises."""
        head = {k: request.get(k) for k in ("type", "id", "well", "field")}
        try:
            well, field = str(request["well"]), int(request["field"])
        except (KeyError, TypeError, ValueError):
            return {**head, "error": "an objects request names a well and a field"}
        key = (well, field)
        with self._lock:
            fetch = self._fetch
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None:
            return {**head, **cached}
        if fetch is None:
            return {**head, "none": NO_MEASUREMENTS}
        try:
            content = rows_content(fetch(well, field), self._max_rows)
        except Exception as exc:  # one line for the page, never a traceback
            return {**head, "error": fetch_error(exc)}
        with self._lock:
            if fetch is self._fetch:  # not from an execution since replaced
                self._cache[key] = content
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return {**head, **content}

    def close(self) -> None:
        """Stop answering; queued requests are dropped."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _send(self, request: dict[str, Any]) -> None:
        self._reply(self.answer(request), [])
