"""Execution state to store records: only planes a step made count as derived."""

from __future__ import annotations

import numpy as np

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.execution._store_io import store_layout, well_outputs
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.execution.runner import WellState, run_steps
from openhcs_nb.functions import gaussian_blur
from openhcs_nb.pipeline.model import Pipeline, Step


def _blur_gfp_then_segment() -> Pipeline:
    base = nuclei_count_pipeline("DAPI")
    blur = Step(
        name="smooth", func={"GFP": (gaussian_blur, {"sigma": 2.0})}, group_by="channel"
    )
    return Pipeline(name="smooth-gfp", steps=(blur, *base.steps))


def test_when_one_channel_is_processed_then_only_its_planes_are_derived(small_plate):
    plan = compile_pipeline(_blur_gfp_then_segment(), small_plate, ["A02"])
    state = WellState.load(small_plate, "A02")
    loaded = dict(state.images)
    run_steps(plan, state)
    out = well_outputs(state, {}, {0: "file"})
    assert set(out.derived) == {(s, 0, 1, 0) for s in range(2)}
    for key, plane in out.derived.items():
        assert plane is state.images[key]  # a reference, never a copy
        assert not np.array_equal(plane, loaded[key])
    assert out.planes == frozenset(loaded)
    assert set(out.labels) == {"nuclei"}
    assert out.shape == small_plate.shape
    assert out.dtype == small_plate.dtype.name


def test_when_pipeline_only_segments_then_nothing_is_derived(small_plate):
    plan = compile_pipeline(nuclei_count_pipeline(), small_plate, ["B01"])
    state = WellState.load(small_plate, "B01")
    run_steps(plan, state)
    out = well_outputs(state, {})
    assert out.derived == {}
    assert len(out.planes) == 2 * 2  # fields x channels, all left in the plate
    layout = store_layout(plan)
    assert layout.plate_ref == small_plate.ref
    assert layout.channels == ("DAPI", "GFP")
    assert layout.wells == ("B01",)
