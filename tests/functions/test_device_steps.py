"""Data stays on the device across Steps: the plan's ``stays`` and the runner.

A counting stand-in namespace (NumPy underneath) is injected as the worker's
device; it counts every host/device copy the runner makes. The pipelines use
twins that agree with their references bit for bit (illumination, percentile
normalisation, thresholds, labelling), so a GPU plan run on the stand-in must
give exactly the CPU plan's planes and labels.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import numpy as np
import pytest

from openhcs_nb import Pipeline, Step, compile_pipeline, default_pipeline
from openhcs_nb import functions as fns
from openhcs_nb.execution.placement import transfers
from openhcs_nb.execution.runner import WellState, run_steps
from openhcs_nb.execution.well import run_well
from openhcs_nb.functions import _gpu
from openhcs_nb.functions._xp import NUMPY, ArrayNamespace


@dataclasses.dataclass(frozen=True)
class Counting(ArrayNamespace):
    """NumPy underneath; counts copies per direction and per stack shape."""

    moves: list[tuple[str, tuple[int, ...]]] = dataclasses.field(default_factory=list)

    def to_device(self, value: Any) -> Any:
        self.moves.append(("to_device", np.shape(value)))
        return np.asarray(value)

    def to_host(self, value: Any) -> Any:
        self.moves.append(("to_host", np.shape(value)))
        return value

    def count(self, direction: str) -> int:
        return sum(d == direction for d, _ in self.moves)


def _counting() -> Counting:
    return Counting("counting", np, NUMPY.ndi)


IMAGE_STEPS = (
    Step(name="illumination", func=fns.correct_illumination),
    Step(name="normalize", func=(fns.percentile_normalize, {"high": 99.0})),
)
NUCLEI = Step(
    name="nuclei",
    func={
        0: [
            fns.threshold_otsu,
            fns.fill_holes,
            fns.label_objects,
            (fns.remove_small_objects, {"min_size": 20}),
        ]
    },
    group_by="channel",
)


def _run(plan, plate, well, device=None) -> WellState:
    state = WellState.load(plate, well)
    state.device = device
    run_steps(plan, state)
    return state


def _assert_same_state(got: WellState, expected: WellState) -> None:
    assert got.images.keys() == expected.images.keys()
    for key, plane in expected.images.items():
        assert type(got.images[key]) is np.ndarray
        np.testing.assert_array_equal(got.images[key], plane)
    assert got.labels.keys() == expected.labels.keys()
    for name, planes in expected.labels.items():
        assert planes.keys() == got.labels[name].keys()
        for key, plane in planes.items():
            np.testing.assert_array_equal(got.labels[name][key], plane)


def test_when_two_image_steps_run_on_the_device_then_each_group_moves_once(
    small_plate,
):
    pipeline = Pipeline(name="two", steps=IMAGE_STEPS)
    plan = compile_pipeline(pipeline, small_plate, device="cuda:0")
    assert [c.stays for c in plan.steps[0].chains] == [(0, 1)]
    assert [c.stays for c in plan.steps[1].chains] == [()]
    well = small_plate.layout.wells[0]
    ns = _counting()
    got = _run(plan, small_plate, well, ns)
    channels = len(small_plate.layout.channels)
    # One group per channel (its fields stacked): one upload, one download.
    assert ns.count("to_device") == channels
    assert ns.count("to_host") == channels
    fields = small_plate.layout.fields
    assert {shape[0] for _, shape in ns.moves} == {fields}
    moves = Counter(t.direction for t in transfers(plan))
    assert moves == {"to_device": channels, "to_host": channels}
    _assert_same_state(
        got, _run(compile_pipeline(pipeline, small_plate), small_plate, well)
    )


def test_when_a_labels_step_follows_on_the_device_then_it_takes_the_held_planes(
    small_plate,
):
    pipeline = Pipeline(name="nuclei", steps=(*IMAGE_STEPS, NUCLEI))
    plan = compile_pipeline(pipeline, small_plate, device="cuda:0")
    # Channel 0 is read next by the device labels chain; channel 1 by no one.
    assert [c.stays for c in plan.steps[1].chains] == [(0,)]
    well = small_plate.layout.wells[0]
    ns = _counting()
    got = _run(plan, small_plate, well, ns)
    # Channel 0: one upload; its labels and (at the end) its image come back.
    # Channel 1: one upload, one download. Before keeping planes across
    # steps this was 3 + 2 uploads and as many downloads.
    assert ns.count("to_device") == 2
    assert ns.count("to_host") == 3
    listed = [(t.step, t.direction, t.channel) for t in transfers(plan)]
    assert listed == [
        ("illumination", "to_device", 0),
        ("illumination", "to_device", 1),
        ("normalize", "to_host", 1),
        ("nuclei", "to_host", 0),
        ("(end)", "to_host", 0),
    ]
    cpu = compile_pipeline(pipeline, small_plate)
    _assert_same_state(got, _run(cpu, small_plate, well))


def test_when_a_preview_stops_early_then_held_planes_still_come_back(small_plate):
    pipeline = Pipeline(name="nuclei", steps=(*IMAGE_STEPS, NUCLEI))
    plan = compile_pipeline(pipeline, small_plate, device="cuda:0")
    well = small_plate.layout.wells[0]
    ns = _counting()
    state = WellState.load(small_plate, well)
    state.device = ns
    run_steps(plan, state, upto=1)
    assert not state.held.where
    # Corrected planes count as raw (not stored as derived) after the copy too.
    assert all(state.raw[key] is plane for key, plane in state.images.items())
    assert (ns.count("to_device"), ns.count("to_host")) == (2, 2)
    reference = WellState.load(small_plate, well)
    run_steps(compile_pipeline(pipeline, small_plate), reference, upto=1)
    _assert_same_state(state, reference)


def _by_runner(plan) -> Counter:
    """The plan's copies the runner makes (not those inside a twin)."""
    return Counter(t.direction for t in transfers(plan) if not t.inside)


def _same_tables(result, reference) -> None:
    assert result.ok, result.error
    assert reference.ok, reference.error
    assert result.summary == reference.summary
    assert list(result.objects) == list(reference.objects)
    for column, values in reference.objects.items():
        assert result.objects[column].dtype == values.dtype, column
        np.testing.assert_array_equal(result.objects[column], values)


def test_when_a_cpu_step_reads_held_planes_then_it_downloads_them_once(small_plate):
    quality = Step(
        name="quality",
        func=fns.measure_image_quality,
        variable_components=["channel"],
    )
    pipeline = Pipeline(name="qc", steps=(*IMAGE_STEPS, NUCLEI, quality))
    gpu = compile_pipeline(pipeline, small_plate, device="cuda:0")
    listed = [(t.step, t.direction, t.channel) for t in transfers(gpu)]
    assert listed == [
        ("illumination", "to_device", 0),
        ("illumination", "to_device", 1),
        ("normalize", "to_host", 1),  # quality (CPU) reads it next
        ("nuclei", "to_host", 0),  # the labels
        ("quality", "to_host", 0),  # the held image, for the CPU reader
    ]
    well = small_plate.layout.wells[0]
    ns = _counting()
    result = run_well(gpu, well, plate=small_plate, device=ns)
    assert (ns.count("to_device"), ns.count("to_host")) == (2, 3)
    cpu = compile_pipeline(pipeline, small_plate)
    _same_tables(result, run_well(cpu, well, plate=small_plate))


def test_when_a_device_measurement_reads_held_planes_then_only_labels_move(
    small_plate,
):
    measure = Step(
        name="measure", func=fns.measure_objects, variable_components=["channel"]
    )
    pipeline = Pipeline(name="measured", steps=(*IMAGE_STEPS, NUCLEI, measure))
    gpu = compile_pipeline(pipeline, small_plate, device="cuda:0")
    assert gpu.steps[-1].chains[0].calls[0].placement == "gpu"
    # Both channels stay on the device until the measurement, which stacks
    # them there per field; each field's labels go up.
    fields = small_plate.layout.fields
    measured = [
        (t.direction, t.function)
        for t in transfers(gpu)
        if t.step == "measure" and not t.inside
    ]
    assert measured == [("to_device", "measure_objects labels")] * fields
    well = small_plate.layout.wells[0]
    ns = _counting()
    result = run_well(gpu, well, plate=small_plate, device=ns)
    planned = _by_runner(gpu)
    assert ns.count("to_device") == planned["to_device"] == 2 + fields
    assert ns.count("to_host") == planned["to_host"] == 3
    # The device's sums give the CPU's table exactly on NumPy: the same
    # pixels are summed in the same (raster) order per object.
    cpu = compile_pipeline(pipeline, small_plate)
    _same_tables(result, run_well(cpu, well, plate=small_plate))


def test_when_default_pipeline_is_compiled_then_illumination_stays_for_the_nuclei(
    small_plate,
):
    plan = compile_pipeline(default_pipeline(), small_plate, device="cuda:0")
    illumination = plan.steps[0].chains[0]
    assert illumination.calls[0].placement == "gpu"
    # The nuclei step starts on the device (background); cells start on the CPU.
    assert illumination.stays == (0,)
    nuclei = [t for t in transfers(plan) if t.step == "nuclei"]
    assert [t.direction for t in nuclei] == ["to_host"]
    # The cells channel comes back for identify_secondary (CPU), so the
    # measurements find only the nuclei channel on the device: on the CPU.
    measures = [s for s in plan.steps if s.output == "measure"]
    assert len(measures) == 3
    assert {s.chains[0].calls[0].placement for s in measures} == {"cpu"}
    well = small_plate.layout.wells[0]
    ns = _counting()
    result = run_well(plan, well, plate=small_plate, device=ns)
    assert result.ok, result.error
    planned = _by_runner(plan)
    assert ns.count("to_device") == planned["to_device"]
    assert ns.count("to_host") == planned["to_host"]


def _field(plate, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    data = plate.read_well(plate.layout.wells[0]).data
    stack = np.asarray(data[0, 0, :, 0]).astype(dtype)  # both channels of field 0
    labels = fns.label_objects.impl(fns.threshold_otsu.impl(stack[:1]))[0]
    return stack, labels


@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"shape": False},
        {"intensity": False},
        {"shape": False, "intensity": False},
        {"texture": True, "radial": True},
    ],
)
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_when_measure_objects_twin_runs_with_numpy_then_its_table_is_the_cpu_table(
    small_plate, flags, dtype
):
    stack, labels = _field(small_plate, dtype)
    assert labels.max() > 1
    kwargs = {"labels": labels, "names": ("DAPI", "GFP"), **flags}
    passed, side = _gpu.measure_objects(stack, **kwargs)
    assert passed is stack
    _, expected = fns.measure_objects.impl(stack, **kwargs)
    got, want = side["objects"], expected["objects"]
    assert list(got) == list(want)
    for column, values in want.items():
        assert got[column].dtype == values.dtype, column
        np.testing.assert_array_equal(got[column], values, err_msg=column)


def test_when_a_field_has_no_objects_then_the_twin_gives_an_empty_table(small_plate):
    stack, _ = _field(small_plate)
    empty = np.zeros(stack.shape[1:], np.int32)
    _, side = _gpu.measure_objects(stack, labels=empty, names=("DAPI", "GFP"))
    _, expected = fns.measure_objects.impl(stack, labels=empty, names=("DAPI", "GFP"))
    assert list(side["objects"]) == list(expected["objects"])
    assert all(len(v) == 0 for v in side["objects"].values())


def test_when_planes_stay_between_steps_then_the_memory_estimate_counts_them(
    small_plate,
):
    from openhcs_nb.execution.placement import (
        BYTES_PER_PIXEL,
        HELD_BYTES_PER_PIXEL,
        estimate_device_bytes,
        on_cpu,
    )

    layout = small_plate.layout
    pixels = layout.shape[0] * layout.shape[1]
    one = compile_pipeline(
        Pipeline(name="one", steps=IMAGE_STEPS[:1]), small_plate, device="cuda:0"
    )
    assert estimate_device_bytes(one) == layout.fields * pixels * BYTES_PER_PIXEL
    two = compile_pipeline(
        Pipeline(name="two", steps=IMAGE_STEPS), small_plate, device="cuda:0"
    )
    held = len(layout.channels) * layout.fields * pixels * HELD_BYTES_PER_PIXEL
    assert estimate_device_bytes(two) == estimate_device_bytes(one) + held
    assert estimate_device_bytes(on_cpu(two)) == 0
