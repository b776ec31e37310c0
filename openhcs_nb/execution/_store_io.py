"""Turn execution objects into the plain records the results store takes.

The store sits below execution and never imports it, so this is the one place
that knows both sides. A plane counts as derived when a step replaced it: the
well state keeps references to the planes it loaded (``WellState.raw``), and
any final plane that is not one of those objects was produced by a step.
Identity, not equality, decides: it costs nothing and never copies pixels.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.runner import WellState
from openhcs_nb.results.records import StoreLayout, Table, WellOutputs


def store_layout(plan: ExecutionPlan) -> StoreLayout:
    """What the store records about a run, taken from its compiled plan."""
    return StoreLayout(
        pipeline_name=plan.pipeline_name,
        pipeline_code=plan.pipeline_code,
        plate_ref=plan.plate_ref,
        plate_name=plan.layout.name,
        wells=tuple(plan.wells),
        fields=plan.layout.fields,
        channels=tuple(plan.layout.channels),
    )


def well_outputs(
    state: WellState,
    objects: Table,
    pixel_paths: Mapping[int, str] | None = None,
    field_table: Table | None = None,
) -> WellOutputs:
    """The outputs of a finished well; raw planes are referenced, not included."""
    derived = {
        key: plane
        for key, plane in state.images.items()
        if state.raw.get(key) is not plane
    }
    sample = next(iter(state.raw.values()), None)
    if sample is None:
        sample = next(iter(state.images.values()))
    return WellOutputs(
        well=state.well,
        channels=tuple(state.channels),
        shape=(int(sample.shape[-2]), int(sample.shape[-1])),
        dtype=np.dtype(sample.dtype).name,
        planes=frozenset(state.images),
        derived=derived,
        labels=state.labels,
        objects=objects,
        pixel_paths=pixel_paths or {},
        field_table=field_table or {},
    )
