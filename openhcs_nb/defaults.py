"""The default nuclei pipeline that the demo and the CLI use.

It segments nuclei in the first channel, whatever that channel is called
(dict key ``0``), splits touching nuclei, and measures every channel inside the
nuclei. Pass ``channel="DAPI"`` to pick the nuclear channel by name instead.
"""

from __future__ import annotations

from openhcs_nb.functions import (
    fill_holes,
    gaussian_blur,
    measure_objects,
    remove_small_objects,
    subtract_background,
    threshold_otsu,
    watershed_split,
)
from openhcs_nb.pipeline.model import Pipeline, Step


def default_pipeline(channel: int | str = 0) -> Pipeline:
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
