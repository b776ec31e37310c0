"""PipelineBuilder: controls from the catalogue, real Pipelines, live preview."""

from __future__ import annotations

import threading
import time

import ipywidgets as widgets
import pytest
from builder_doubles import PNG, RecordingConnection, controls

from openhcs_nb import (
    Pipeline,
    PipelineError,
    Step,
    nuclei_count_pipeline,
)
from openhcs_nb.client import RemoteError
from openhcs_nb.functions import (
    builtin_catalogue,
    gaussian_blur,
    label_objects,
    subtract_background,
    threshold_otsu,
)
from openhcs_nb.jupyter.builder import PipelineBuilder
from openhcs_nb.protocol import (
    FunctionInfo,
    ParamInfo,
    catalogue_to_wire,
)


def test_when_functions_are_added_then_controls_follow_types_and_ranges():
    builder = PipelineBuilder()
    blur = controls(builder.add_step("gaussian_blur"))["sigma"]
    assert isinstance(blur, widgets.FloatSlider)
    assert (blur.min, blur.max, blur.value, blur.step) == (0.0, 20.0, 2.0, 0.01)
    assert blur.tooltip == "standard deviation in pixels"
    background = controls(builder.add_step("subtract_background"))
    assert isinstance(background["radius"], widgets.IntSlider)
    assert (background["radius"].min, background["radius"].max) == (1, 200)
    assert isinstance(background["method"], widgets.Dropdown)
    assert [v for _, v in background["method"].options] == ["rolling_ball", "tophat"]
    small = controls(builder.add_step("remove_small_objects"))
    assert isinstance(small["min_size"], widgets.IntSlider)
    assert (small["min_size"].min, small["min_size"].max) == (0, 5000)
    # A million positions cannot be aimed with a slider: a bounded number box.
    assert isinstance(small["max_size"], widgets.BoundedIntText)
    assert (small["max_size"].max, small["max_size"].value) == (1_000_000, 100_000)
    manual = controls(builder.add_step("threshold_manual"))["value"]
    assert isinstance(manual, widgets.BoundedFloatText)
    assert (manual.min, manual.max, manual.value) == (0.0, 65535.0, 0.0)
    assert manual.description == "value*"
    low = controls(builder.add_step("percentile_normalize"))["low"]
    assert isinstance(low, widgets.FloatSlider) and low.step == 0.1
    connectivity = controls(builder.add_step("label_objects"))["connectivity"]
    assert [v for _, v in connectivity.options] == [1, 2]


def test_when_a_server_param_is_bool_or_str_then_checkbox_and_text():
    info = FunctionInfo(
        name="gaussian_blur",
        version="1",
        category="x",
        params=[
            ParamInfo(name="flag", type="bool", default=True, help="a flag"),
            ParamInfo(name="mode", type="str", default="abc", help="a mode"),
        ],
    )
    builder = PipelineBuilder([info])
    made = controls(builder.add_step("gaussian_blur"))
    assert isinstance(made["flag"], widgets.Checkbox) and made["flag"].value is True
    assert isinstance(made["mode"], widgets.Text) and made["mode"].value == "abc"


def test_when_a_param_names_a_labels_step_then_it_is_a_text_box():
    info = FunctionInfo(
        name="gaussian_blur",
        version="1",
        category="x",
        params=[
            ParamInfo(name="seeds", type="labels", default="", help="seed objects")
        ],
    )
    builder = PipelineBuilder([info])
    seeds = controls(builder.add_step("gaussian_blur"))["seeds"]
    assert isinstance(seeds, widgets.Text)
    assert (seeds.value, seeds.placeholder) == ("", "latest labels")


def test_when_steps_are_built_then_pipeline_equals_the_hand_built_one():
    builder = PipelineBuilder()
    builder.name.value = "mine"
    blur = builder.add_step("gaussian_blur")
    controls(blur)["sigma"].value = 1.5
    labels = builder.add_step("threshold_otsu")
    labels.chains[0].append(builder.infos["label_objects"])
    labels.chains[0].append(builder.infos["remove_small_objects"], {"min_size": 12})
    expected = Pipeline(
        "mine",
        (
            Step(func=(gaussian_blur, {"sigma": 1.5})),
            Step(
                name="threshold_otsu",
                func=[
                    threshold_otsu,
                    label_objects,
                    (builtin_catalogue()["remove_small_objects"], {"min_size": 12}),
                ],
            ),
        ),
    )
    assert builder.pipeline == expected
    assert builder.to_code() == expected.to_code()
    assert builder.error.value == ""


def test_when_steps_are_moved_and_removed_then_the_order_follows():
    builder = PipelineBuilder()
    first = builder.add_step("gaussian_blur")
    second = builder.add_step("threshold_otsu")
    builder.add_step("gaussian_blur")  # gets a unique name
    assert [s.name for s in builder.pipeline.steps] == [
        "gaussian_blur",
        "threshold_otsu",
        "gaussian_blur_2",
    ]
    builder.move_step(second, -1)
    assert [s.name for s in builder.pipeline.steps][:2] == [
        "threshold_otsu",
        "gaussian_blur",
    ]
    builder.remove_step(first)
    assert [s.name for s in builder.pipeline.steps] == [
        "threshold_otsu",
        "gaussian_blur_2",
    ]
    assert list(builder.steps_box.children) == [s.box for s in builder.steps]


def test_when_step_is_per_channel_then_pipeline_has_a_dict_pattern():
    builder = PipelineBuilder()
    step = builder.add_step("gaussian_blur")
    step.per_channel.value = True
    step.chains[0].channel.value = 2
    other = step._add_chain()
    assert other.key() == 0  # the first channel no chain uses yet
    other.append(builder.infos["subtract_background"], {"radius": 20})
    expected = Step(
        name="gaussian_blur",
        func={2: gaussian_blur, 0: (subtract_background, {"radius": 20})},
        group_by="channel",
    )
    assert builder.pipeline.steps == (expected,)
    other.channel.value = 2
    assert "two chains use channel channel 2" in builder.error.value
    assert "Channel dropdown" in builder.error.value
    with pytest.raises(PipelineError, match="two chains use channel"):
        _ = builder.pipeline


def test_when_loading_an_existing_pipeline_then_it_round_trips():
    builder = PipelineBuilder(pipeline=nuclei_count_pipeline())
    assert builder.pipeline == nuclei_count_pipeline()
    assert builder.to_code() == nuclei_count_pipeline().to_code()
    assert builder.steps[0].per_channel.value is True
    assert len(builder.steps[0].chains[0].calls) == 6


def test_when_server_has_a_function_missing_locally_then_it_cannot_be_added():
    extra = FunctionInfo(
        name="cellpose_segment",
        version="2",
        category="segmentation",
        help="deep learning",
    )
    catalogue = [*catalogue_to_wire(builtin_catalogue()), extra]
    builder = PipelineBuilder(catalogue)
    builder.category.value = "segmentation"
    labels = dict(builder.function.options)
    assert "cellpose_segment (server only)" in labels
    builder.function.value = "cellpose_segment"
    assert builder.add_step_button.disabled
    assert "not in this openhcs-nb" in builder.note.value
    builder.function.value = "threshold_otsu"
    assert not builder.add_step_button.disabled


def test_when_parameters_change_quickly_then_one_preview_runs_with_the_last_value():
    conn = RecordingConnection()
    builder = PipelineBuilder(connection=conn, plate="p", debounce=0.3)
    builder.add_step("subtract_background")
    blur = builder.add_step("gaussian_blur")
    assert builder.wait_preview(30)
    conn.calls.clear()
    for sigma in (1.0, 1.5, 2.5, 3.0, 4.5):
        controls(blur)["sigma"].value = sigma
    assert builder.wait_preview(30)
    assert len(conn.calls) == 1
    call = conn.calls[0]
    assert call["pipeline"].steps[1].chains[0][1][0].kwargs == (("sigma", 4.5),)
    assert (call["well"], call["upto"], call["plate"]) == ("A01", 2, "p")
    assert bytes(builder.preview.before.value).startswith(PNG)
    assert bytes(builder.preview.after.value).startswith(PNG)
    assert "after gaussian_blur" in builder.preview.after_label.value


def test_when_a_step_is_selected_then_preview_stops_after_it():
    conn = RecordingConnection()
    builder = PipelineBuilder(connection=conn, plate="p", debounce=0.05)
    first = builder.add_step("gaussian_blur")
    builder.add_step("threshold_otsu")
    builder.select_step(first)
    assert builder.wait_preview(30)
    assert conn.calls[-1]["upto"] == 1
    builder.preview.site.value = 1
    assert builder.wait_preview(30)
    assert conn.calls[-1]["site"] == 1


def test_when_an_older_preview_returns_late_then_it_is_dropped():
    conn = RecordingConnection()
    builder = PipelineBuilder(connection=conn, plate="p", debounce=0.05)
    blur = builder.add_step("gaussian_blur")
    assert builder.wait_preview(30)
    first = len(conn.calls)
    conn.gates[first] = threading.Event()
    conn.started[first] = threading.Event()
    controls(blur)["sigma"].value = 3.0
    assert conn.started[first].wait(10)  # the slow request is on the server
    controls(blur)["sigma"].value = 4.0
    deadline = time.monotonic() + 30
    while len(conn.calls) < first + 2:  # the newer request reached the server
        assert time.monotonic() < deadline
        time.sleep(0.01)
    conn.gates[first].set()
    assert builder.wait_preview(30)
    assert builder.preview.last_result.objects == first + 1  # the newer one


def test_when_preview_fails_then_one_line_error_shows():
    conn = RecordingConnection()
    conn.fail_with = RemoteError("well A01 cannot be read\nTraceback ...")
    builder = PipelineBuilder(connection=conn, plate="p", debounce=0.05)
    builder.add_step("gaussian_blur")
    assert builder.wait_preview(30)
    status = builder.preview.status.value
    assert "preview failed: RemoteError: well A01 cannot be read" in status
    assert "Traceback" not in status


def test_when_live_preview_is_off_then_only_the_button_previews():
    conn = RecordingConnection()
    builder = PipelineBuilder(connection=conn, plate="p", debounce=0.05)
    builder.preview.live.value = False
    assert builder.wait_preview(30)
    conn.calls.clear()
    builder.add_step("gaussian_blur")
    assert builder.wait_preview(30)
    assert conn.calls == []
    builder.preview.refresh_button.click()
    assert builder.wait_preview(30)
    assert len(conn.calls) == 1
