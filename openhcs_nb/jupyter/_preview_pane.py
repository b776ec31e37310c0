"""The builder's preview area: well and field pickers, before/after images.

"Before" is the input channels of the previewed field; "after" is the output
of the selected step with the outlines of any labels made so far. Both are
composited with automatic contrast and sent as PNG (``_images.encode_png``).
A failed preview shows as one red line; the last good images stay.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np

from openhcs_nb.jupyter._images import auto_composite, encode_png


@dataclass(frozen=True)
class PreviewRequest:
    """What one preview asks the server for."""

    pipeline: Any
    well: str
    site: int
    upto: int


def _image() -> widgets.Image:
    return widgets.Image(
        format="png", layout=widgets.Layout(max_width="320px", width="auto")
    )


def before_after(
    images: Mapping[str, np.ndarray], step_names: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split a preview's images into (input channels, step output + labels)."""
    before = {k: v for k, v in images.items() if k.startswith("input/")}
    labels = {k: v for k, v in images.items() if k.startswith("labels/")}
    prefix = f"{step_names[-1]}/" if step_names else "input/"
    after = {k: v for k, v in images.items() if k.startswith(prefix)}
    return before, {**after, **labels}


class PreviewPane:
    """Widgets of the preview; the builder decides when to ask for one."""

    def __init__(self, well: str | None = None, wells: Sequence[str] = ()) -> None:
        first = well or (wells[0] if wells else "")
        self.well = widgets.Combobox(
            value=first,
            options=list(wells),
            description="well",
            placeholder="e.g. B03",
            ensure_option=False,
            continuous_update=False,
            layout=widgets.Layout(width="180px"),
        )
        self.site = widgets.BoundedIntText(
            value=0,
            min=0,
            max=9999,
            description="field",
            layout=widgets.Layout(width="140px"),
        )
        self.live = widgets.Checkbox(value=True, description="live", indent=False)
        self.refresh_button = widgets.Button(description="preview", icon="refresh")
        self.before = _image()
        self.after = _image()
        self.before_label = widgets.HTML("<b>input</b>")
        self.after_label = widgets.HTML("<b>output</b>")
        self.status = widgets.HTML()
        self.last_result: Any = None
        self._force = False
        self.box = widgets.VBox(
            [
                widgets.HBox([self.well, self.site, self.live, self.refresh_button]),
                widgets.HBox(
                    [
                        widgets.VBox([self.before_label, self.before]),
                        widgets.VBox([self.after_label, self.after]),
                    ]
                ),
                self.status,
            ]
        )

    def on_request(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the well, field or live switch changes."""
        for control in (self.well, self.site, self.live):
            control.observe(lambda _c: callback(), names="value")

        def forced(_button: Any) -> None:
            self._force = True
            try:
                callback()
            finally:
                self._force = False

        self.refresh_button.on_click(forced)

    def request(self, pipeline: Any, upto: int) -> PreviewRequest | None:
        """The request to send now, or None (live preview off, no well)."""
        if not (self.live.value or self._force):
            return None
        well = self.well.value.strip().upper()
        if not well:
            self.status.value = "pick a well to preview"
            return None
        self.status.value = f"previewing {html.escape(well)}..."
        return PreviewRequest(pipeline, well, int(self.site.value), upto)

    def show(self, result: Any) -> None:
        """Show a preview result, or the one-line error it is."""
        if isinstance(result, BaseException):
            first = str(result).splitlines()[0] if str(result) else ""
            text = f"{type(result).__name__}: {first}"
            self.status.value = (
                f'<span style="color:#b00">preview failed: {html.escape(text)}</span>'
            )
            return
        self.last_result = result
        steps = tuple(getattr(result, "step_names", ()))
        before, after = before_after(result.images, steps)
        self.before.value = encode_png(auto_composite(before)) if before else b""
        self.after.value = encode_png(auto_composite(after)) if after else b""
        self.after_label.value = (
            f"<b>after {html.escape(steps[-1])}</b>" if steps else "<b>input</b>"
        )
        objects = getattr(result, "objects", 0)
        elapsed = float(getattr(result, "elapsed", 0.0))
        measured = ", ".join(
            f"{k} {v:.4g}"
            for k, v in dict(getattr(result, "measurements", {})).items()
            if isinstance(v, int | float)
        )
        self.status.value = html.escape(
            f"{result.well} field {getattr(result, 'site', 0)}: "
            f"{len(steps)} step(s), {objects} objects, {elapsed:.2f} s"
            + (f"; {measured}" if measured else "")
        )
