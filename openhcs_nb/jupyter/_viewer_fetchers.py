"""Where the plate viewer gets the images of a well and field it was asked for.

A fetcher is ``fetch(well, field) -> {name: array}``, called on a background
thread when the user picks a well or field. Three are offered:

- :func:`execution_fetcher`, the default of a viewer that follows an
  execution: field 0 is what the run streamed (kept, or fetched again), any
  other field is read from the run's results on the server;
- :func:`preview_fetcher`: a server-side preview of a pipeline on any well;
- :func:`full_resolution_fetcher`: full-size images of a finished well.

Errors a fetcher raises become one line in the viewer (:func:`fetch_error`),
so they must say what went wrong in words a user can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

FetchWell = Callable[[str, int], Mapping[str, np.ndarray]]


def execution_fetcher(execution: Any) -> FetchWell:
    """``fetch_well`` for a viewer following ``execution``: every field of a well.

    Field 0 comes from ``execution.previews(well)`` (the images the run
    streamed); other fields from ``execution.fetch_full(well, site=field)``,
    the run's stored results of that field. A well without a result yet says
    so in one line.
    """

    def fetch(well: str, field: int) -> Mapping[str, np.ndarray]:
        state = well_state(execution, well)
        if state in ("queued", "running", "cancelled"):
            raise LookupError(f"{well} is {state}: it has no images yet")
        if state == "failed":
            raise LookupError(f"{well} failed, so it has no images")
        if field == 0:
            images = execution.previews(well)
            if images:
                return images
        return execution.fetch_full(well, site=field)

    return fetch


def well_state(execution: Any, well: str) -> str:
    """The execution's state of ``well`` (``done`` when it cannot say)."""
    state_of = getattr(execution, "well_state", None)
    if callable(state_of):
        try:
            return str(state_of(well))
        except KeyError:
            return "done"
    return "done"


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
    """``fetch_well`` that fetches a finished well's full-size images, any field.

    Backed by ``execution.fetch_full(well, site=field)``.
    """

    def fetch(well: str, field: int) -> Mapping[str, np.ndarray]:
        return execution.fetch_full(well, site=field)

    return fetch


def fetch_error(exc: BaseException) -> str:
    """One line for the viewer: the error's own words, no traceback, no quotes."""
    if isinstance(exc, KeyError | LookupError) and exc.args:
        text = str(exc.args[0])
    else:
        text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first
