"""Preview one field of one well after the first ``upto`` steps.

Previews are what a user looks at while tuning a step, so they read a single
field rather than the whole well, and return small images: the input planes
("input/<channel>"), the planes after the last step run ("<step>/<channel>")
and any labels made so far ("labels/<name>").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.runner import WellState, run_steps
from openhcs_nb.execution.well import (
    concat_tables,
    make_previews,
    open_cached,
    summarise,
)
from openhcs_nb.plates.model import Plate


@dataclass
class PreviewResult:
    """Before/after images of one field and the measurements made on it."""

    well: str
    site: int
    step_names: tuple[str, ...]
    images: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, float | int] = field(default_factory=dict)


def preview_well(
    plan: ExecutionPlan,
    well: str,
    upto: int | None = None,
    site: int = 0,
    max_size: int = 512,
    plate: Plate | None = None,
) -> PreviewResult:
    """Run the first ``upto`` steps (all when None) on one field of ``well``.

    Raises
    ------
    UnknownWellError
        The well is not on the plate.
    ExecutionError
        The site is out of range, or a step produced an unusable value.
    """
    source = plate if plate is not None else open_cached(plan.plate_ref, plan.confine)
    state = WellState.load(source, well, site=site)
    images = make_previews(state, max_size, site=site, prefix="input")
    run_steps(plan, state, upto)
    steps = plan.steps[:upto]
    if steps:
        after = make_previews(state, max_size, site=site, prefix=steps[-1].name)
        images.update(after)
    summary = summarise(concat_tables(state.objects), state)
    return PreviewResult(
        state.well, site, tuple(s.name for s in steps), images, summary
    )
