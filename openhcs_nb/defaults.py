"""The default pipeline: nuclei, cells and cytoplasm, measured, with QC.

It is a Cell Painting-style primary / secondary / tertiary pipeline, tuned
on the demo plate (``docs/pipeline-model.md`` gives the figures):

1. ``illumination``: flat-field correction of every channel, fitted over the
   whole plate before any well (a plate-level phase).
2. ``nuclei`` in the first channel: a small rolling-ball background
   subtraction (it opens the dim seams between touching nuclei), then
   threshold and split clumps by shape.
3. ``cells`` in the second channel, grown from the nuclei (propagation,
   a triangle threshold on log intensity, at most 80 px from the nucleus).
4. ``cytoplasm``: each cell minus its nucleus.
5. Measurements of all three sets in every channel (cells know their
   nucleus, nuclei count their cells) and per-field image quality.

Pass ``channel=``/``cell_channel=`` (an index or a channel name) for plates
whose nuclear or cell channel is elsewhere; a one-channel plate gets nuclei
only.
"""

from __future__ import annotations

from openhcs_nb.functions import (
    correct_illumination,
    identify_primary,
    identify_secondary,
    identify_tertiary,
    measure_image_quality,
    measure_objects,
    subtract_background,
)
from openhcs_nb.pipeline.model import Pipeline, Step

NUCLEI = [
    (subtract_background, {"radius": 15}),
    (identify_primary, {"min_distance": 7, "smoothing": 1.0, "min_size": 80}),
]
CELLS = (
    identify_secondary,
    {"seeds": "nuclei", "threshold": "log_triangle", "distance": 80},
)


def default_pipeline(
    channel: int | str = 0, cell_channel: int | str | None = 1
) -> Pipeline:
    """Nuclei in ``channel``, cells in ``cell_channel`` (None: nuclei only)."""
    per_channel = ["channel"]
    steps = [
        Step(name="illumination", func=correct_illumination),
        Step(name="nuclei", func={channel: NUCLEI}, group_by="channel"),
    ]
    if cell_channel is not None:
        steps += [
            Step(name="cells", func={cell_channel: CELLS}, group_by="channel"),
            Step(
                name="cytoplasm",
                func=(identify_tertiary, {"subtract": "nuclei"}),
            ),
        ]
    nuclei_kw: dict[str, object] = {"objects": "nuclei"}
    if cell_channel is not None:
        nuclei_kw["children"] = "cells"
    steps.append(
        Step(
            name="measure_nuclei",
            func=(measure_objects, nuclei_kw),
            variable_components=per_channel,
        )
    )
    if cell_channel is not None:
        for name in ("cells", "cytoplasm"):
            steps.append(
                Step(
                    name=f"measure_{name}",
                    func=(measure_objects, {"objects": name, "parent": "nuclei"}),
                    variable_components=per_channel,
                )
            )
    steps.append(
        Step(
            name="quality",
            func=measure_image_quality,
            variable_components=per_channel,
        )
    )
    return Pipeline(
        name="cells" if cell_channel is not None else "nuclei", steps=tuple(steps)
    )
