"""The device path on the CPU: twins with xp=numpy, placement, transfers, OOM.

The device twins are written against an array namespace, so with NumPy
arrays they run exactly the code a GPU runs. Each is compared with its
reference function: bit for bit, except the two filters whose references
use blocked float32 BLAS products (``gaussian_blur``, and
``subtract_background``'s interpolation) where the twins use ``ndimage``;
those agree to float32 rounding, i.e. a relative 1e-6 of the data's range.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import numpy as np
import pytest
from fn_shapes import discs

from openhcs_nb import (
    Pipeline,
    PipelineError,
    Step,
    compile_pipeline,
    nuclei_count_pipeline,
)
from openhcs_nb import functions as fns
from openhcs_nb.execution.placement import (
    HEADROOM,
    estimate_device_bytes,
    fits_on_device,
    on_cpu,
    transfers,
    uses_device,
)
from openhcs_nb.execution.well import run_well
from openhcs_nb.functions import _gpu
from openhcs_nb.functions._device_measure import object_intensity
from openhcs_nb.functions._features_intensity import intensity_features
from openhcs_nb.functions._xp import NUMPY, ArrayNamespace, is_out_of_memory
from openhcs_nb.plates import open_plate
from openhcs_nb.server._config_sections import ExecutionSection

# Functions that stay on the CPU, and why (docs/gpu.md says the same).
CPU_ONLY = {
    "watershed_split": "watershed: not in cupyx / cuCIM",
    "identify_primary": "declumping is a watershed",
    "identify_secondary": "propagation (a watershed) from the seeds",
    "identify_tertiary": "relates two labels sets on the host",
    "filter_objects": "shape features (skimage regionprops)",
    "measure_image_quality": "focus and saturation measures on the host",
}
# Twins that match to float32 rounding rather than bit for bit.
ROUNDING = {"gaussian_blur", "subtract_background"}


def _inputs() -> dict[str, tuple[str, np.ndarray, dict[str, Any]]]:
    rng = np.random.default_rng(11)
    shape = (96, 128)
    m = discs(shape, [(20, 20, 8), (20, 34, 8), (60, 90, 12), (80, 30, 6)])
    a, b = m[0] | m[1], m[2] | m[3]
    ring = m[2] & ~discs(shape, [(60, 90, 4)])[0]
    image = (rng.normal(100, 5, (3, *shape)) + 400 * np.stack([a, b, a | b])).astype(
        np.uint16
    )
    floats = image.astype(np.float32) / 7
    masks = np.stack([a, b, ring | a])
    labels = fns.label_objects.impl(masks)
    flat = np.linspace(0.5, 1.5, shape[0] * shape[1], dtype=np.float32)
    return {
        "gaussian_blur": ("gaussian_blur", image, {"sigma": 1.5}),
        "gaussian_blur_float": ("gaussian_blur", floats, {"sigma": 3.0}),
        "subtract_background": ("subtract_background", image, {"radius": 12}),
        "subtract_background_tophat": (
            "subtract_background",
            image,
            {"radius": 12, "method": "tophat"},
        ),
        "percentile_normalize": ("percentile_normalize", image, {}),
        "percentile_normalize_float": (
            "percentile_normalize",
            floats,
            {"low": 2.0, "high": 98.0},
        ),
        "correct_illumination_own": ("correct_illumination", image, {}),
        "correct_illumination_fit": (
            "correct_illumination",
            image,
            {"illumination": flat.reshape(shape)},
        ),
        "project_z_max": ("project_z", image, {}),
        "project_z_mean": ("project_z", image, {"method": "mean"}),
        "composite_channels": ("composite_channels", image, {}),
        "composite_channels_percentiles": (
            "composite_channels",
            image,
            {"method": "max", "low": 1.0, "high": 99.0},
        ),
        "threshold_otsu": ("threshold_otsu", image, {}),
        "threshold_otsu_float": ("threshold_otsu", floats, {}),
        "threshold_li": ("threshold_li", image, {}),
        "threshold_li_float": ("threshold_li", floats, {}),
        "threshold_manual": ("threshold_manual", image, {"value": 300.0}),
        "fill_holes": ("fill_holes", masks, {}),
        "label_objects": ("label_objects", masks, {}),
        "label_objects_corners": ("label_objects", masks, {"connectivity": 2}),
        "remove_small_objects": ("remove_small_objects", labels, {"min_size": 250}),
        "expand_labels": ("expand_labels", labels, {"distance": 5}),
        "expand_labels_far": ("expand_labels", labels, {"distance": 60}),
    }


CASES = _inputs()
# Cases that reduce the stack axis (no per-plane equivalent to compare).
REDUCING = {"project_z", "composite_channels"}


def _assert_matches(name: str, result: np.ndarray, expected: np.ndarray) -> None:
    assert result.dtype == expected.dtype
    assert result.shape == expected.shape
    if name in ROUNDING:
        scale = float(np.abs(expected).max()) or 1.0
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6 * scale)
    else:
        np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("case", list(CASES))
def test_when_twin_runs_with_numpy_then_it_matches_the_reference(case):
    name, stack, kwargs = CASES[case]
    result = getattr(_gpu, name)(stack, **kwargs)
    assert isinstance(result, np.ndarray)
    _assert_matches(name, result, getattr(fns, name).impl(stack, **kwargs))


@pytest.mark.parametrize(
    "case", [c for c, (name, _, _) in CASES.items() if name not in REDUCING]
)
def test_when_stack_is_batched_then_it_equals_plane_by_plane(case):
    name, stack, kwargs = CASES[case]
    twin = getattr(_gpu, name)
    batched = twin(stack, **kwargs)
    planes = np.concatenate([twin(plane[None], **kwargs) for plane in stack])
    np.testing.assert_array_equal(batched, planes)


def test_when_catalogue_listed_then_every_function_has_a_twin_or_a_reason():
    catalogue = fns.builtin_catalogue()
    twins = {name for name, fn in catalogue.items() if fn.gpu_impl}
    assert twins | set(CPU_ONLY) == set(catalogue)
    assert not twins & set(CPU_ONLY)
    # measure_objects' twin returns a table: tests/functions/test_device_steps.py.
    assert twins == {name for name, _, _ in CASES.values()} | {"measure_objects"}


def test_when_planes_are_constant_or_empty_then_twins_match_the_reference():
    stack = np.zeros((3, 20, 24), np.float32)
    stack[1] = 5.0
    stack[2, 4:9, 4:9] = 9.0
    for name in ("threshold_otsu", "threshold_li", "percentile_normalize"):
        np.testing.assert_array_equal(
            getattr(_gpu, name)(stack), getattr(fns, name).impl(stack)
        )
    labels = np.zeros((3, 20, 24), np.int32)
    labels[2, 3:6, 3:6] = 1
    for name in ("expand_labels", "remove_small_objects", "label_objects"):
        source = labels > 0 if name == "label_objects" else labels
        np.testing.assert_array_equal(
            getattr(_gpu, name)(source), getattr(fns, name).impl(source)
        )


def test_when_objects_measured_by_labelled_sums_then_they_match_intensity_features():
    _, image, _ = CASES["gaussian_blur"]
    labels = fns.label_objects.impl(fns.threshold_otsu.impl(image[:1]))[0]
    got = object_intensity(labels, image)
    for channel in range(image.shape[0]):
        ref = intensity_features(labels, image[channel])
        np.testing.assert_array_equal(got["label"], ref["label"])
        for column in ("intensity_mean", "intensity_min", "intensity_max"):
            np.testing.assert_allclose(got[column][channel], ref[column], rtol=1e-12)
        np.testing.assert_allclose(
            got["intensity_integrated"][channel],
            ref["intensity_integrated"],
            rtol=1e-12,
        )
        np.testing.assert_allclose(
            got["intensity_std"][channel], ref["intensity_std"], rtol=1e-9
        )
    assert got["area"].sum() == np.count_nonzero(labels)


# --- placement and transfers -------------------------------------------------


def _chain_pipeline(*chain: Any) -> Pipeline:
    return Pipeline(
        name="chain",
        steps=(Step(name="nuclei", func={0: list(chain)}, group_by="channel"),),
    )


def test_when_three_device_calls_chain_then_one_upload_and_one_download(small_plate):
    pipeline = _chain_pipeline(
        (fns.gaussian_blur, {"sigma": 1.0}), fns.threshold_otsu, fns.label_objects
    )
    plan = compile_pipeline(pipeline, small_plate, device="cuda:0")
    calls = plan.steps[0].chains[0].calls
    assert [c.placement for c in calls] == ["gpu", "gpu", "gpu"]
    moves = transfers(plan)
    assert [(t.direction, t.position) for t in moves] == [
        ("to_device", 0),
        ("to_host", 2),
    ]


def test_when_a_cpu_call_sits_in_a_device_chain_then_transfers_surround_it(
    small_plate,
):
    pipeline = _chain_pipeline(
        (fns.subtract_background, {"radius": 10}),
        fns.threshold_otsu,
        fns.fill_holes,
        fns.watershed_split,
        (fns.remove_small_objects, {"min_size": 20}),
    )
    plan = compile_pipeline(pipeline, small_plate, device="cuda:1")
    calls = plan.steps[0].chains[0].calls
    assert [c.placement for c in calls] == ["gpu", "gpu", "gpu", "cpu", "gpu"]
    assert {c.device for c in calls if c.placement == "gpu"} == {"cuda:1"}
    moves = [(t.direction, t.function) for t in transfers(plan)]
    assert moves == [
        ("to_device", "subtract_background"),
        ("to_host", "fill_holes"),
        ("to_device", "remove_small_objects"),
        ("to_host", "remove_small_objects"),
    ]


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU"])
def test_when_device_is_unknown_then_compile_refuses_it(small_plate, device):
    with pytest.raises(PipelineError) as info:
        compile_pipeline(nuclei_count_pipeline(), small_plate, device=device)
    assert info.value.field == "device"


def test_when_compiled_for_the_cpu_then_nothing_is_placed_on_a_device(small_plate):
    plan = compile_pipeline(nuclei_count_pipeline(), small_plate)
    assert not uses_device(plan)
    assert transfers(plan) == ()
    assert estimate_device_bytes(plan) == 0
    gpu = compile_pipeline(nuclei_count_pipeline(), small_plate, device="cuda")
    assert uses_device(gpu)
    assert not uses_device(on_cpu(gpu))
    assert transfers(on_cpu(gpu)) == ()


@dataclasses.dataclass(frozen=True)
class CountingNamespace(ArrayNamespace):
    """NumPy underneath; counts transfers, can fail an upload or report free bytes."""

    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    fail_uploads: list[BaseException] = dataclasses.field(default_factory=list)
    free_value: list[int | None] = dataclasses.field(default_factory=lambda: [None])
    released: list[int] = dataclasses.field(default_factory=list)

    def to_device(self, value: Any) -> Any:
        self.counts["to_device"] = self.counts.get("to_device", 0) + 1
        if self.fail_uploads:
            raise self.fail_uploads.pop()
        return np.asarray(value)

    def to_host(self, value: Any) -> Any:
        self.counts["to_host"] = self.counts.get("to_host", 0) + 1
        return value

    def free_bytes(self) -> int | None:
        return self.free_value[0]


def _numpy_double(**kwargs: Any) -> CountingNamespace:
    released: list[int] = []
    return CountingNamespace(
        "double",
        np,
        NUMPY.ndi,
        release=lambda: released.append(1),
        released=released,
        **kwargs,
    )


def _same_result(a, b) -> None:
    assert a.ok, a.error
    assert b.ok, b.error
    assert a.summary == b.summary
    assert a.objects.keys() == b.objects.keys()
    for key in a.objects:
        np.testing.assert_array_equal(a.objects[key], b.objects[key])


@pytest.fixture(scope="module")
def plans(small_plate_path):
    source = open_plate(small_plate_path)
    cpu = compile_pipeline(nuclei_count_pipeline(), source)
    gpu = compile_pipeline(nuclei_count_pipeline(), source, device="cuda:0")
    well = source.layout.wells[0]
    return source, cpu, gpu, well, run_well(cpu, well, plate=source)


def test_when_gpu_plan_runs_on_the_numpy_namespace_then_it_equals_the_cpu_plan(plans):
    source, _, gpu, well, reference = plans
    ns = _numpy_double()
    result = run_well(gpu, well, plate=source, device=ns)
    # nuclei_count: one device run per field group (2 fields stacked), the
    # watershed on the CPU splits the chain into two device runs. Nothing
    # is left on the device for the measurement, so it is placed on the CPU
    # (its device twin only pays where the planes are already there).
    moves = transfers(gpu)
    assert [(t.step, t.direction) for t in moves] == [
        ("nuclei", "to_device"),
        ("nuclei", "to_host"),
    ] * 2
    assert gpu.steps[1].chains[0].calls[0].placement == "cpu"
    assert ns.counts["to_device"] == 2
    assert ns.counts["to_host"] == 2
    _same_result(result, reference)


class OutOfMemoryError(Exception):
    """Named like cupy.cuda.memory.OutOfMemoryError; matched by name."""


def test_when_name_is_out_of_memory_then_it_is_a_device_error():
    assert is_out_of_memory(OutOfMemoryError("out of memory allocating 1 GiB"))

    class Sub(OutOfMemoryError):
        pass

    assert is_out_of_memory(Sub())
    assert not is_out_of_memory(MemoryError())
    assert not is_out_of_memory(ValueError("OutOfMemoryError"))


def test_when_gpu_runs_out_of_memory_then_the_well_reruns_on_the_cpu(plans):
    source, _, gpu, well, reference = plans
    ns = _numpy_double(fail_uploads=[OutOfMemoryError("allocating 512 MiB")])
    result = run_well(gpu, well, plate=source, device=ns)
    _same_result(result, reference)
    assert ns.counts["to_device"] == 1  # the failed upload; the rerun is CPU only
    assert ns.released == [1]
    # The worker's namespace still works for the next well, on the device.
    again = run_well(gpu, well, plate=source, device=ns)
    _same_result(again, reference)
    uploads = [t for t in transfers(gpu) if t.direction == "to_device"]
    assert ns.counts["to_device"] == 1 + len(uploads)


def test_when_gpu_oom_is_fail_then_the_well_fails_with_gpu_memory(plans):
    source, _, gpu, well, _ = plans
    failing = dataclasses.replace(gpu, gpu_oom="fail")
    ns = _numpy_double(fail_uploads=[OutOfMemoryError("allocating 512 MiB")])
    result = run_well(failing, well, plate=source, device=ns)
    assert not result.ok
    assert result.error.type == "gpu_memory"
    assert "ran out of GPU memory" in result.error.message
    assert 'gpu_oom = "cpu"' in result.error.message
    assert result.error.traceback == ""
    assert "\n" not in str(result.error)


def test_when_well_does_not_fit_the_free_memory_then_it_never_touches_the_gpu(plans):
    source, _, gpu, well, reference = plans
    need = estimate_device_bytes(gpu)
    ns = _numpy_double(free_value=[need // 2])
    result = run_well(gpu, well, plate=source, device=ns)
    _same_result(result, reference)
    assert "to_device" not in ns.counts
    failing = dataclasses.replace(gpu, gpu_oom="fail")
    result = run_well(failing, well, plate=source, device=ns)
    assert result.error.type == "gpu_memory"
    assert f"{need >> 20} MiB" in result.error.message


def test_when_memory_is_compared_then_headroom_is_kept():
    assert fits_on_device(None, 10**12)
    assert fits_on_device(1000, int(1000 * HEADROOM))
    assert not fits_on_device(1000, int(1000 * HEADROOM) + 1)
    assert not fits_on_device(0, 1)


def test_when_estimated_then_memory_grows_with_the_plane_and_the_group(small_plate):
    gpu = compile_pipeline(nuclei_count_pipeline(), small_plate, device="cuda:0")
    layout = small_plate.layout
    bigger = dataclasses.replace(
        gpu, layout=dataclasses.replace(layout, shape=(512, 512))
    )
    assert estimate_device_bytes(bigger) == 4 * estimate_device_bytes(gpu)
    fields = dataclasses.replace(
        gpu, layout=dataclasses.replace(layout, fields=2 * layout.fields)
    )
    assert estimate_device_bytes(fields) == 2 * estimate_device_bytes(gpu)


def test_when_config_sets_gpu_oom_then_only_cpu_or_fail_are_accepted():
    assert ExecutionSection().gpu_oom == "cpu"
    assert msgspec.convert({"gpu_oom": "fail"}, ExecutionSection).gpu_oom == "fail"
    with pytest.raises(msgspec.ValidationError, match="gpu_oom"):
        msgspec.convert({"gpu_oom": "retry"}, ExecutionSection)
