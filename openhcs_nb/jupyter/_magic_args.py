"""Small parsers for magic arguments: comments, ``key=value`` pairs, plates, wells."""

from __future__ import annotations

import ast
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import parse_argstring

from openhcs_nb.errors import UnknownWellError
from openhcs_nb.plates.model import split_well, well_name


def strip_comment(line: str) -> str:
    """Drop a trailing ``# comment``, as a shell would: a ``#`` that starts a word.

    Users paste magics with comments (``%openhcs_run plate=demo  # all wells``);
    IPython hands the comment to the magic. A ``#`` inside quotes, or inside a
    word (``a#b``), is kept: the prefix before a candidate ``#`` must split
    cleanly with :mod:`shlex` (no open quote, no dangling escape).
    """
    for index, char in enumerate(line):
        if char != "#" or (index and not line[index - 1].isspace()):
            continue
        try:
            shlex.split(line[:index])
        except ValueError:  # the "#" sits inside an open quote
            continue
        return line[:index].rstrip()
    return line


def parse_args(magic: Callable[..., Any], line: str) -> Any:
    """``parse_argstring`` for a magic, after :func:`strip_comment`."""
    return parse_argstring(magic, strip_comment(line))


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


#: What ``%openhcs_run`` says when a pipeline has no step that measures.
NO_MEASUREMENTS = (
    "warning: this pipeline measures nothing, so the result has status columns "
    "only: add measure_objects (e.g. %openhcs_step NAME measure_objects "
    "--vary channel) after a segmentation step"
)


def measures(pipeline: Any) -> bool:
    """Whether any step calls a function with side outputs (a measurement table)."""
    return any(fn.side_outputs for step in pipeline.steps for fn in step.functions())


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
            _inside(text, (first, last), wells)
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
        raise UsageError(f"the plate has no well {missing[0]} ({_extent(wells)})")
    if not chosen:
        raise UsageError(f"{text!r} selects no well of this plate ({_extent(wells)})")
    return chosen


def _inside(
    text: str, corners: Sequence[tuple[str, int]], wells: Sequence[str]
) -> None:
    """Refuse a range whose corners lie off the plate (``A01:Z99``)."""
    rows = {split_well(w)[0] for w in wells}
    columns = {split_well(w)[1] for w in wells}
    for row, column in corners:
        if row not in rows or column not in columns:
            raise UsageError(
                f"wells={text} reaches {well_name(row, column)}, outside the plate "
                f"({_extent(wells)}): give a range inside it"
            )


def _extent(wells: Sequence[str]) -> str:
    """``"rows A-D, columns 1-6"``: what a user may ask for."""
    if not wells:
        return "no wells"
    parts = [split_well(w) for w in wells]
    rows = sorted({r for r, _ in parts}, key=_row_key)
    columns = sorted({c for _, c in parts})
    return f"rows {rows[0]}-{rows[-1]}, columns {columns[0]}-{columns[-1]}"


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
