"""The plate viewer's JavaScript, joined into the one module anywidget loads."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
#: The viewer's JS, in load order; see :func:`build_esm`.
ESM_PARTS = (
    "object_inspect.js",
    "well_view.js",
    "colors.js",
    "sources.js",
    "histogram.js",
    "feature_plot.js",
    "plate_map.js",
    "plate_viewer.js",
)


def build_esm() -> str:
    """The viewer's one ES module: its parts joined, local imports dropped.

    anywidget loads ``_esm`` from a blob URL, where ``./x.js`` imports cannot
    resolve; each part imports the earlier ones as ``import ... from "./x.js"``
    on one line (so node and plain pages can load the files as they are), and
    those lines are dropped here, since the joined text defines them already.
    """
    parts = [(STATIC / name).read_text() for name in ESM_PARTS]
    kept = [
        line
        for part in parts
        for line in part.splitlines()
        if not (line.startswith("import ") and 'from "./' in line)
    ]
    return "\n".join(kept) + "\n"
