"""Small parsers for magic arguments: ``key=value`` pairs, plates, well ranges."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from IPython.core.error import UsageError

from openhcs_nb.errors import UnknownWellError
from openhcs_nb.plates.model import split_well, well_name


def key_values(items: Sequence[str], *, strings: bool = False) -> dict[str, Any]:
    """``["sigma=2", "mode='max'"]`` -> ``{"sigma": 2, "mode": "max"}``.

    Values are Python literals when they parse as one (never evaluated beyond
    ``ast.literal_eval``), else plain text; ``strings=True`` keeps every value
    as text (plate ids like ``123`` stay ``"123"``).

    Raises
    ------
    UsageError
        An item has no ``=`` or an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"expected key=value, got {item!r}")
        out[key.strip()] = raw if strings else _literal(raw)
    return out


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def plate_ref(text: str) -> str:
    """An OMERO plate id (``123``) becomes ``omero:123``; anything else stays."""
    text = text.strip()
    return f"omero:{text}" if text.isdigit() else text


def well_range(text: str, wells: Sequence[str]) -> list[str]:
    """``"A01:B12"`` -> every plate well in that rectangle; ``"A01,B03"`` -> those.

    Raises
    ------
    UsageError
        A well name is malformed, or the range selects no well of the plate.
    """
    try:
        if ":" in text:
            first, last = (split_well(part) for part in text.split(":", 1))
            rows = sorted([_row_key(first[0]), _row_key(last[0])])
            cols = sorted((first[1], last[1]))
            chosen = [
                w
                for w in wells
                if rows[0] <= _row_key(split_well(w)[0]) <= rows[1]
                and cols[0] <= split_well(w)[1] <= cols[1]
            ]
        else:
            chosen = [well_name(*split_well(part)) for part in text.split(",")]
    except UnknownWellError as exc:
        raise UsageError(str(exc)) from None
    missing = [w for w in chosen if w not in wells]
    if missing:
        raise UsageError(f"the plate has no well {missing[0]} (wells: {wells[0]}...)")
    if not chosen:
        raise UsageError(f"{text!r} selects no well of this plate")
    return chosen


def _row_key(row: str) -> tuple[int, str]:
    """Rows sort A..Z, then AA..AF (1536-well plates)."""
    return (len(row), row)


def preview_figure(result: Any) -> Any:
    """Before/after images of a preview, side by side, as binary image widgets."""
    import ipywidgets as widgets

    from openhcs_nb.jupyter._images import auto_composite, encode_png
    from openhcs_nb.jupyter._preview_pane import before_after

    before, after = before_after(result.images, result.step_names)
    panels = []
    for title, images in (
        ("input", before),
        ("after " + " > ".join(result.step_names), after),
    ):
        if not images:
            continue
        png = encode_png(auto_composite(images))
        panels.append(
            widgets.VBox(
                [
                    widgets.HTML(f"<b>{title}</b>"),
                    widgets.Image(value=png, format="png"),
                ]
            )
        )
    facts = ", ".join(f"{k} {v:g}" for k, v in result.measurements.items())
    caption = widgets.HTML(
        f"{result.well} field {result.site}: {facts or 'no measurements'}"
    )
    return widgets.VBox([widgets.HBox(panels), caption])
