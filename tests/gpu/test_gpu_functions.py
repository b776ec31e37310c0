"""Device twins on a real GPU, compared with the CPU reference functions.

Run with ``pytest -m gpu`` on a host with CuPy and a CUDA device; elsewhere
every test skips, naming what is missing. Tolerances: thresholds, labelling
and label clean-up must match bit for bit; float filters to float32
rounding (1e-5 of the data's range: cupyx's kernels sum in another order);
``expand_labels`` may break distance ties differently from SciPy, so at most
0.1% of its pixels may differ.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_device_path import CASES

from openhcs_nb import compile_pipeline, nuclei_count_pipeline
from openhcs_nb import functions as fns
from openhcs_nb.execution.placement import transfers
from openhcs_nb.execution.well import run_well
from openhcs_nb.functions import _gpu

pytestmark = pytest.mark.gpu


def _cupy():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (openhcs-nb[gpu])")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        pytest.skip(f"CuPy found no CUDA device: {exc}")
    if count < 1:
        pytest.skip("CuPy found no CUDA device")
    return cupy


@pytest.mark.parametrize("case", list(CASES))
def test_when_twin_runs_on_the_gpu_then_it_matches_the_cpu_reference(case):
    cupy = _cupy()
    name, stack, kwargs = CASES[case]
    moved = {
        k: cupy.asarray(v) if isinstance(v, np.ndarray) else v
        for k, v in kwargs.items()
    }
    result = getattr(_gpu, name)(cupy.asarray(stack), **moved)
    assert isinstance(result, cupy.ndarray), "the twin must stay on the device"
    got = cupy.asnumpy(result)
    expected = getattr(fns, name).impl(stack, **kwargs)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    if name == "expand_labels":
        assert np.mean(got != expected) <= 1e-3
    elif expected.dtype.kind == "f":
        scale = float(np.abs(expected).max()) or 1.0
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * scale)
    else:
        np.testing.assert_array_equal(got, expected)


def test_when_a_well_runs_on_the_gpu_then_it_matches_the_cpu_well(small_plate):
    _cupy()
    well = small_plate.layout.wells[0]
    cpu = compile_pipeline(nuclei_count_pipeline(), small_plate)
    gpu = compile_pipeline(nuclei_count_pipeline(), small_plate, device="cuda:0")
    assert transfers(gpu)
    a = run_well(cpu, well, plate=small_plate)
    b = run_well(gpu, well, plate=small_plate)
    assert a.ok and b.ok, (a.error, b.error)
    assert b.summary["count"] == a.summary["count"]


def test_when_measure_objects_runs_on_the_gpu_then_its_table_matches_the_cpu(
    small_plate,
):
    """Labels, areas and min/max exactly; sums to 1e-9 (atomics reorder them)."""
    cupy = _cupy()
    data = small_plate.read_well(small_plate.layout.wells[0]).data
    stack = np.asarray(data[0, 0, :, 0]).astype(np.float32)
    labels = fns.label_objects.impl(fns.threshold_otsu.impl(stack[:1]))[0]
    kwargs = {"names": ("DAPI", "GFP")}
    passed, side = _gpu.measure_objects(
        cupy.asarray(stack), labels=cupy.asarray(labels), **kwargs
    )
    assert isinstance(passed, cupy.ndarray), "the stack stays on the device"
    _, expected = fns.measure_objects.impl(stack, labels=labels, **kwargs)
    got, want = side["objects"], expected["objects"]
    assert list(got) == list(want)
    for column, values in want.items():
        assert isinstance(got[column], np.ndarray), column
        if values.dtype.kind in "iub" or "_min_" in column or "_max_" in column:
            np.testing.assert_array_equal(got[column], values, err_msg=column)
        else:
            np.testing.assert_allclose(got[column], values, rtol=1e-9, err_msg=column)


def test_when_device_steps_follow_each_other_then_the_gpu_well_matches_the_cpu(
    small_plate,
):
    """Planes kept on the GPU across Steps give the CPU's labels."""
    _cupy()
    from openhcs_nb import Pipeline, Step

    pipeline = Pipeline(
        name="kept",
        steps=(
            Step(name="illumination", func=fns.correct_illumination),
            Step(
                name="nuclei",
                func={0: [fns.threshold_otsu, fns.fill_holes, fns.label_objects]},
                group_by="channel",
            ),
        ),
    )
    gpu = compile_pipeline(pipeline, small_plate, device="cuda:0")
    assert gpu.steps[0].chains[0].stays == (0,)
    well = small_plate.layout.wells[0]
    a = run_well(compile_pipeline(pipeline, small_plate), well, plate=small_plate)
    b = run_well(gpu, well, plate=small_plate)
    assert a.ok and b.ok, (a.error, b.error)
    assert b.summary["count"] == a.summary["count"]
