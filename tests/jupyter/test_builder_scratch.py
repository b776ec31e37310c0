"""PipelineBuilder: "to code", building from scratch, and a real server."""

from __future__ import annotations

import html

import pytest
from builder_doubles import PNG, SMALL, RecordingConnection, controls

from openhcs_nb import (
    default_pipeline,
    load_pipeline,
    nuclei_count_pipeline,
)
from openhcs_nb.client import RemoteCompileError
from openhcs_nb.jupyter.builder import PipelineBuilder


class RecordingShell:
    """An IPython shell where only the namespace and ``set_next_input`` matter."""

    def __init__(self, **user_ns) -> None:
        self.inputs: list[str] = []
        self.user_ns = user_ns

    def set_next_input(self, text: str, replace: bool = False) -> None:
        self.inputs.append(text)


def test_when_to_code_is_clicked_in_lab_then_a_cell_is_asked_for_with_the_variable():
    cells = nuclei_count_pipeline()
    shell = RecordingShell(builder=None, cells=cells)
    builder = PipelineBuilder(pipeline=cells, shell=shell)
    sent = []
    builder.code.cell.can_insert = True  # as the JupyterLab front end reports
    builder.code.cell.send = sent.append
    builder.code_button.click()
    code = cells.to_code().replace("pipeline = Pipeline(", "cells = Pipeline(")
    assert sent == [{"kind": "insert", "code": code}]
    assert shell.inputs == []  # no cell appears later, below the wrong one
    assert not builder.code.cell.show_code
    builder.code.cell._handle_custom_msg({"kind": "inserted", "index": 3}, [])
    assert "new cell below, assigning <code>cells</code>" in builder.code.note.value
    assert load_pipeline(code) == builder.pipeline


def test_when_the_front_end_cannot_insert_then_next_input_and_copyable_code():
    shell = RecordingShell()
    builder = PipelineBuilder(pipeline=nuclei_count_pipeline(), shell=shell)
    builder.code_button.click()
    assert shell.inputs == [nuclei_count_pipeline().to_code()]  # no variable known
    assert builder.code.cell.show_code and builder.code.cell.code == shell.inputs[0]
    assert "cannot add a cell from a widget" in builder.code.note.value
    builder.code.cell.can_insert = True
    builder.code.cell.send = lambda _msg: None
    builder.code_button.click()
    builder.code.cell._handle_custom_msg({"kind": "unavailable"}, [])
    assert len(shell.inputs) == 2 and builder.code.cell.show_code


def test_when_a_variable_is_named_then_to_code_assigns_it():
    shell = RecordingShell()
    builder = PipelineBuilder(shell=shell, variable="mine")
    builder.add_step("gaussian_blur")
    code = builder.to_code_cell()
    assert "\nmine = Pipeline(" in code and "pipeline =" not in code
    assert load_pipeline(code) == builder.pipeline


def test_when_to_code_is_clicked_outside_ipython_then_the_widget_says_so():
    builder = PipelineBuilder(pipeline=nuclei_count_pipeline())
    builder.code_button.click()
    assert "not running in IPython" in builder.error.value
    assert builder.code.cell.show_code


def pick(builder: PipelineBuilder, category: str, function: str) -> None:
    """Add a step the way a user does: category, function, "add step"."""
    builder.category.value = category
    builder.function.value = function
    builder.add_step_button.click()


def test_when_building_from_scratch_then_new_steps_validate_with_defaults():
    conn = RecordingConnection()
    builder = PipelineBuilder(connection=conn, plate="p", debounce=0.05)
    pick(builder, "segmentation", "identify_primary")
    pick(builder, "segmentation", "identify_secondary")
    pick(builder, "measure", "measure_objects")
    assert builder.error.value == ""
    primary, secondary, measure = builder.steps
    assert primary.per_channel.value and primary.chains[0].key() == 0
    assert primary.chains[0].label() == "0: DAPI"
    assert secondary.per_channel.value and secondary.chains[0].key() == 1
    assert controls(secondary)["seeds"].value == "identify_primary"
    assert measure.components.value == ["channel"]
    assert controls(measure)["objects"].value == "identify_secondary"
    assert (controls(measure)["parent"].value, controls(measure)["children"].value) == (
        "",
        "",
    )
    steps = builder.pipeline.steps
    assert (steps[0].group_by, steps[2].variable_components) == (
        "channel",
        ("channel",),
    )
    assert builder.wait_preview(30) and len(conn.calls) >= 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda b: setattr(b.steps[0].per_channel, "value", False),
            "Step 'identify_primary': tick 'per channel' and choose one channel "
            "in the Channel dropdown",
        ),
        (
            lambda b: setattr(b.steps[1].components, "value", ["site"]),
            "Step 'measure_objects': measurements see one field at a time: set the "
            "stack box to 'channel' only",
        ),
        (
            lambda b: b.move_step(b.steps[1], -1),
            "Step 'measure_objects': measure_objects works on objects: add a "
            "segmentation step above it",
        ),
        (
            lambda b: setattr(controls(b.steps[1])["objects"], "value", "cells"),
            "Step 'measure_objects': the objects box of measure_objects names no "
            "earlier segmentation step; type one of: identify_primary",
        ),
        (
            lambda b: b.steps[0].chains[0].remove(b.steps[0].chains[0].calls[0]),
            "Step 'identify_primary': add a function with the 'add function' button",
        ),
    ],
)
def test_when_a_step_does_not_fit_then_the_error_names_the_control(change, expected):
    conn = RecordingConnection()
    builder = PipelineBuilder(connection=conn, plate="p", debounce=0.05)
    pick(builder, "segmentation", "identify_primary")
    pick(builder, "measure", "measure_objects")
    assert builder.wait_preview(30)
    calls = len(conn.calls)
    change(builder)
    assert html.unescape(builder.error.value) == (
        f'<span style="color:#b00">{expected}</span>'
    )
    assert builder.wait_preview(30) and len(conn.calls) == calls  # nothing sent


def test_when_the_server_refuses_the_pipeline_then_no_code_is_quoted():
    conn = RecordingConnection()
    conn.fail_with = RemoteCompileError(
        "step 'blur', key 'variable_components': measurement functions see one "
        "field at a time: use variable_components=['channel']",
        code="compile_error",
        details={"step": "blur", "key": "variable_components"},
    )
    builder = PipelineBuilder(connection=conn, plate="p", debounce=0.05)
    builder.add_step("gaussian_blur")
    assert builder.wait_preview(30)
    shown = html.unescape(builder.error.value)
    assert "Step 'blur': measurement functions see one field at a time" in shown
    assert "(change the stack box)" in shown
    assert "=" not in shown.split(">", 1)[1] and "variable_components" not in shown


def test_when_previewing_on_a_real_server_then_images_and_objects_come_back(conn):
    builder = PipelineBuilder(
        connection=conn,
        plate=SMALL,
        pipeline=nuclei_count_pipeline(),
        debounce=0.05,
        preview_size=64,
    )
    assert builder.functions == conn.catalogue
    assert builder.preview.well.value == "A01"
    assert builder.wait_preview(60)
    result = builder.preview.last_result
    assert result is not None, builder.preview.status.value
    assert result.step_names == ("nuclei", "measure")
    assert result.objects > 0
    assert bytes(builder.preview.before.value).startswith(PNG)
    assert bytes(builder.preview.after.value).startswith(PNG)
    builder.select_step(builder.steps[0])
    assert builder.wait_preview(60)
    assert builder.preview.last_result.step_names == ("nuclei",)


def test_when_built_from_scratch_on_a_real_server_then_the_preview_finds_objects(conn):
    builder = PipelineBuilder(connection=conn, plate=SMALL, debounce=0.05)
    pick(builder, "segmentation", "identify_primary")
    pick(builder, "measure", "measure_objects")
    assert builder.wait_preview(60)
    assert builder.error.value == ""
    result = builder.preview.last_result
    assert result is not None, builder.preview.status.value
    assert result.step_names == ("identify_primary", "measure_objects")
    assert result.objects > 0


def test_when_the_default_pipeline_is_loaded_then_the_builder_shows_no_error():
    builder = PipelineBuilder(
        connection=RecordingConnection(), plate="p", pipeline=default_pipeline()
    )
    assert builder.error.value == ""
    assert builder.pipeline == default_pipeline()
