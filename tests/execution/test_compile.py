from __future__ import annotations

import pickle

import pytest

from openhcs_nb import (
    CompileError,
    Pipeline,
    PipelineError,
    Step,
    compile_pipeline,
    nuclei_count_pipeline,
)
from openhcs_nb.errors import UnknownWellError
from openhcs_nb.functions import (
    expand_labels,
    fill_holes,
    gaussian_blur,
    measure_objects,
    project_z,
    threshold_manual,
    threshold_otsu,
    watershed_split,
)
from openhcs_nb.plates.model import Plate, PlateLayout, row_letters, well_name


class LayoutOnlyPlate(Plate):
    """A plate with a layout and no pixels: compile never reads a pixel."""

    def read_image(self, well, site, channel, z=0, t=0):
        raise AssertionError("compile must not read pixels")


def layout_plate(rows=8, columns=12, channels=("DAPI", "GFP"), fields=4) -> Plate:
    row_names = tuple(row_letters(i) for i in range(rows))
    wells = tuple(well_name(r, c) for r in row_names for c in range(1, columns + 1))
    layout = PlateLayout(
        name="layout",
        rows=row_names,
        columns=tuple(range(1, columns + 1)),
        wells=wells,
        fields=fields,
        channels=channels,
        z=1,
        t=1,
        dtype="uint16",
        shape=(1024, 1024),
    )
    return LayoutOnlyPlate("layout-only", layout)


def test_when_default_pipeline_compiled_then_plan_covers_every_well():
    plate = layout_plate()
    plan = compile_pipeline(nuclei_count_pipeline(), plate)
    assert plan.wells == plate.wells
    assert [s.output for s in plan.steps] == ["labels", "measure"]
    assert plan.steps[1].labels_source == "nuclei"
    assert plan.labels_names == ("nuclei",)


def test_when_key_names_a_missing_channel_then_error_names_step_and_key():
    pipeline = Pipeline(
        "p",
        (Step(name="seg", func={"Hoechst": threshold_otsu}, group_by="channel"),),
    )
    with pytest.raises(CompileError) as info:
        compile_pipeline(pipeline, layout_plate())
    assert info.value.step == "seg"
    assert info.value.key == "Hoechst"
    assert "DAPI" in str(info.value)


def test_when_channel_index_out_of_range_then_error_says_how_many():
    pipeline = Pipeline(
        "p", (Step(name="seg", func={5: threshold_otsu}, group_by="channel"),)
    )
    with pytest.raises(CompileError, match="has 2 channels"):
        compile_pipeline(pipeline, layout_plate())


def test_when_name_and_index_pick_same_channel_then_error():
    pipeline = Pipeline(
        "p",
        (
            Step(
                name="s",
                func={0: gaussian_blur, "DAPI": gaussian_blur},
                group_by="channel",
            ),
        ),
    )
    with pytest.raises(CompileError, match="same channel"):
        compile_pipeline(pipeline, layout_plate())


def test_when_required_parameter_missing_then_error_names_parameter():
    # Caught as early as possible: when the step is built.
    with pytest.raises(PipelineError) as info:
        Step(name="seg", func={0: threshold_manual}, group_by="channel")
    assert info.value.field == "value"
    assert info.value.step == "seg"


def test_when_chain_kinds_do_not_connect_then_error_names_both_functions():
    pipeline = Pipeline(
        "p",
        (
            Step(
                name="seg",
                func={0: [threshold_otsu, gaussian_blur]},
                group_by="channel",
            ),
        ),
    )
    with pytest.raises(
        CompileError,
        match="gaussian_blur takes an image, but the chain gives it a mask",
    ):
        compile_pipeline(pipeline, layout_plate())


def test_when_chain_starts_with_a_mask_function_then_error():
    pipeline = Pipeline(
        "p", (Step(name="s", func={0: fill_holes}, group_by="channel"),)
    )
    with pytest.raises(CompileError, match="takes a mask"):
        compile_pipeline(pipeline, layout_plate())


def test_when_labels_read_before_made_then_error():
    for step in (
        Step(name="grow", func=expand_labels),
        Step(name="m", func=measure_objects, variable_components=["channel"]),
    ):
        with pytest.raises(CompileError, match="no earlier step produces"):
            compile_pipeline(Pipeline("p", (step,)), layout_plate())


def test_when_labels_step_spans_channels_then_error_suggests_dict():
    pipeline = Pipeline(
        "p", (Step(name="seg", func=[threshold_otsu, watershed_split]),)
    )
    with pytest.raises(CompileError, match="one channel"):
        compile_pipeline(pipeline, layout_plate())


def test_when_a_labels_step_has_a_chain_per_channel_then_error_says_the_rule():
    per_channel = {0: threshold_otsu, 1: threshold_otsu}
    pipeline = Pipeline("p", (Step(name="seg", func=per_channel, group_by="channel"),))
    with pytest.raises(CompileError) as caught:
        compile_pipeline(pipeline, layout_plate())
    text = str(caught.value)
    assert "segments exactly one channel" in text
    assert "0, 1" in text  # names the chains it found
    # The advice is a pattern that compiles, not the one that was refused.
    assert "one labels step per channel" in text
    fixed = Pipeline(
        "p",
        (
            Step(name="nuclei", func={0: threshold_otsu}, group_by="channel"),
            Step(name="cells", func={1: threshold_otsu}, group_by="channel"),
        ),
    )
    assert compile_pipeline(fixed, layout_plate()).labels_names == ("nuclei", "cells")


def test_when_measure_stacks_sites_then_error():
    pipeline = Pipeline(
        "p",
        (
            Step(name="seg", func={0: threshold_otsu}, group_by="channel"),
            Step(name="m", func=measure_objects),
        ),
    )
    with pytest.raises(CompileError, match="variable_components"):
        compile_pipeline(pipeline, layout_plate())


def test_when_wells_given_then_names_are_canonical_and_unknown_wells_refused():
    plan = compile_pipeline(
        nuclei_count_pipeline(), layout_plate(), wells=["b3", "A01"]
    )
    assert plan.wells == ("B03", "A01")
    with pytest.raises(UnknownWellError, match="Z99"):
        compile_pipeline(nuclei_count_pipeline(), layout_plate(), wells=["Z99"])


def test_when_projection_pipeline_compiled_then_parameters_are_resolved():
    pipeline = Pipeline(
        "p",
        (
            Step(
                name="mip",
                func=(project_z, {"method": "mean"}),
                variable_components=["z"],
            ),
        ),
    )
    plan = compile_pipeline(pipeline, layout_plate())
    assert dict(plan.steps[0].chains[0].calls[0].kwargs) == {"method": "mean"}


def test_when_384_well_plate_compiled_then_plan_is_small_and_picklable():
    plate = layout_plate(rows=16, columns=24)
    plan = compile_pipeline(nuclei_count_pipeline(), plate)
    assert len(plan.wells) == 384
    blob = pickle.dumps(plan)
    # Workers receive plans, not pixels: the whole plan is a few KB.
    assert len(blob) < 64 * 1024
    assert pickle.loads(blob).steps == plan.steps
