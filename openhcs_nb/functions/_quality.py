"""Per-field image quality, so a QC column can flag blurred or clipped fields.

One row per channel of each field goes into the ``fields`` side table:
focus score, local focus, the power spectrum's log-log slope, the saturated
fraction and intensity percentiles (CellProfiler's MeasureImageQuality), and
``qc_pass``, False when the slope says blur or too much of the field is
clipped. After the well, :func:`flag_blurred_fields` also fails a field
whose share of fine detail falls well below its siblings'. The images pass through.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from msgspec import Meta

from openhcs_nb.functions._common import as_stack
from openhcs_nb.functions._features_quality import flag_field, image_quality
from openhcs_nb.spec import Function


def _measure_image_quality(
    stack: np.ndarray,
    *,
    min_slope: Annotated[
        float,
        Meta(
            ge=-10,
            le=0,
            description="power log-log slope below this flags blur",
        ),
    ] = -4.5,
    max_saturated: Annotated[
        float,
        Meta(ge=0, le=1, description="saturated fraction above this flags clipping"),
    ] = 0.01,
    names: tuple[str, ...] = (),
) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """Quality of each channel's plane of one field; the stack passes through."""
    stack = as_stack(stack, "measure_image_quality")
    channels = names or tuple(str(i) for i in range(stack.shape[0]))
    rows = [image_quality(plane) for plane in stack]
    table: dict[str, np.ndarray] = {"channel": np.array(channels, dtype=object)}
    for key in rows[0]:
        table[key] = np.array([row[key] for row in rows], dtype=np.float64)
    table["qc_pass"] = np.array(
        [
            not flag_field(row, min_slope=min_slope, max_saturated=max_saturated)
            for row in rows
        ]
    )
    return stack, {"fields": table}


measure_image_quality = Function(
    name="measure_image_quality",
    version="2",  # 2: detail_fraction, which the relative focus flag uses
    impl=_measure_image_quality,
    help=(
        "Measure each field's focus, blur (power spectrum slope) and saturation "
        "per channel into a 'fields' table with a qc_pass column."
    ),
    category="measure",
    input="image",
    output="image",
    side_outputs=("fields",),
    needs_context=True,
)


#: A field whose detail fraction is below this fraction of its well's
#: median (same channel) is flagged as out of focus.
RELATIVE_FOCUS = 0.8


def flag_blurred_fields(
    fields: dict[str, np.ndarray], ratio: float = RELATIVE_FOCUS
) -> dict[str, np.ndarray]:
    """Add ``focus_ratio`` and fold "blurred next to its siblings" into qc_pass.

    The score is ``detail_fraction``, which does not grow with how many
    objects a field holds (``focus_score`` does: a sparse, sharp field of
    the demo plate's well C01 fell to 0.80 of its well's median on it). The
    stain and optics still set its level, so a field is compared with the
    other fields of its well in the same channel: the well is the natural
    reference a per-well task can see.
    """
    if not fields or "detail_fraction" not in fields:
        return fields
    score = np.asarray(fields["detail_fraction"], dtype=np.float64)
    channel = np.asarray(fields["channel"])
    ratio_column = np.full(score.shape, np.nan)
    for name in dict.fromkeys(channel):
        rows = channel == name
        median = np.nanmedian(score[rows])
        if median > 0:
            ratio_column[rows] = score[rows] / median
    blurred = ratio_column < ratio
    out = dict(fields)
    out["focus_ratio"] = ratio_column
    out["qc_pass"] = np.asarray(fields["qc_pass"], dtype=bool) & ~blurred
    return out
