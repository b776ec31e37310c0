"""The shipped pipelines: nuclei, cells and cytoplasm, and a quick nuclei count.

:func:`default_pipeline` (what a run without a pipeline gets, and what
``openhcs-nb demo`` runs) is :func:`cells_pipeline`, a Cell Painting-style
primary / secondary / tertiary pipeline tuned on the demo plate
(``docs/analysis.md`` has the figures):

1. ``illumination``: flat-field correction of every channel, fitted over the
   whole plate before any well (a plate-level phase).
2. ``nuclei`` in the first channel: a small rolling-ball background
   subtraction (it opens the dim seams between touching nuclei), a Li
   threshold (lower than Otsu, so dim nuclei beside bright ones stay whole),
   and clumps split at the peaks of shape plus a blob response
   (``declump="blob"``), which finds one centre per nucleus even where
   rim-bright nuclei touch without a seam.
3. ``cells`` in the second channel, grown from the nuclei (propagation,
   a triangle threshold on log intensity, at most 80 px from the nucleus).
4. ``cytoplasm``: each cell minus its nucleus.
5. Measurements of nuclei and cells in every channel (cells know their
   nucleus, nuclei count their cells) and per-field image quality. The
   cytoplasm labels are stored; measuring them is one more step,
   ``Step(name="measure_cytoplasm", func=(measure_objects, {"objects":
   "cytoplasm", "parent": "nuclei"}), variable_components=["channel"])``.

:func:`nuclei_count_pipeline` segments nuclei in the first channel (dict
key ``0``, or ``channel="DAPI"`` by name), splits touching nuclei and
measures every channel inside them: the quick count, for plumbing and tests.
"""

from __future__ import annotations

from openhcs_nb.functions import (
    correct_illumination,
    fill_holes,
    gaussian_blur,
    identify_primary,
    identify_secondary,
    identify_tertiary,
    measure_image_quality,
    measure_objects,
    remove_small_objects,
    subtract_background,
    threshold_otsu,
    watershed_split,
)
from openhcs_nb.pipeline.model import Pipeline, Step

NUCLEI = [
    (subtract_background, {"radius": 15}),
    (
        identify_primary,
        {
            "threshold": "li",
            "declump": "blob",
            "min_distance": 7,
            "smoothing": 1.0,
            "min_size": 80,
        },
    ),
]
CELLS = (
    identify_secondary,
    {"seeds": "nuclei", "distance": 80},
)


def cells_pipeline(
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
        steps.append(
            Step(
                name="measure_cells",
                func=(measure_objects, {"objects": "cells", "parent": "nuclei"}),
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


def nuclei_count_pipeline(channel: int | str = 0) -> Pipeline:
    """Segment nuclei in ``channel`` and measure all channels per nucleus."""
    nuclei = [
        (subtract_background, {"radius": 40}),
        (gaussian_blur, {"sigma": 1.5}),
        threshold_otsu,
        fill_holes,
        (watershed_split, {"min_distance": 6}),
        (remove_small_objects, {"min_size": 40}),
    ]
    return Pipeline(
        name="nuclei",
        steps=(
            Step(name="nuclei", func={channel: nuclei}, group_by="channel"),
            Step(name="measure", func=measure_objects, variable_components=["channel"]),
        ),
    )


def default_pipeline(
    channel: int | str = 0, cell_channel: int | str | None = 1
) -> Pipeline:
    """What a run without a pipeline gets: :func:`cells_pipeline`."""
    return cells_pipeline(channel, cell_channel)
