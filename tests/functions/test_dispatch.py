"""select_impl: CPU, GPU twins, and the missing-CuPy error.

CuPy is not installed on test machines. To exercise the twins and the
NumPy <-> CuPy wrapper anyway, one test installs a stand-in ``cupy`` whose
arrays are NumPy arrays and whose ``cupyx.scipy.ndimage`` is SciPy's (CuPy
mirrors both APIs). It checks our code paths, not CuPy itself.
"""

from __future__ import annotations

import sys
import types
from contextlib import nullcontext

import numpy as np
import pytest
from fn_shapes import discs

from openhcs_nb.errors import OptionalDependencyError, PipelineError
from openhcs_nb.functions import (
    builtin_catalogue,
    expand_labels,
    fill_holes,
    gaussian_blur,
    label_objects,
    measure_image_quality,
    select_impl,
    subtract_background,
    watershed_split,
)
from openhcs_nb.pipeline.catalogue import Function


@pytest.fixture
def numpy_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install a NumPy-backed stand-in for ``cupy`` and ``cupyx.scipy.ndimage``."""
    from scipy import ndimage

    class _CupyStandIn(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            return getattr(np, name)

    cupy = _CupyStandIn("cupy")
    cupy.asnumpy = lambda a: np.array(a, copy=True)  # type: ignore[attr-defined]
    cupy.asarray = lambda a: np.array(a, copy=True)  # type: ignore[attr-defined]
    cupy.cuda = types.SimpleNamespace(Device=lambda index: nullcontext())  # type: ignore[attr-defined]
    cupyx = types.ModuleType("cupyx")
    cupyx_scipy = types.ModuleType("cupyx.scipy")
    cupyx_scipy.ndimage = ndimage  # type: ignore[attr-defined]
    cupyx.scipy = cupyx_scipy  # type: ignore[attr-defined]
    for name, module in [
        ("cupy", cupy),
        ("cupyx", cupyx),
        ("cupyx.scipy", cupyx_scipy),
        ("cupyx.scipy.ndimage", ndimage),
    ]:
        monkeypatch.setitem(sys.modules, name, module)


@pytest.fixture
def no_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import cupy`` fail even where CuPy is installed."""
    monkeypatch.setitem(sys.modules, "cupy", None)


def test_when_device_is_cpu_then_the_numpy_impl_is_used():
    for fn in builtin_catalogue().values():
        assert select_impl(fn, "cpu") is fn.impl


def test_when_function_has_no_twin_then_cuda_uses_the_numpy_impl(no_cupy):
    # The watershed and the image-quality measures have no CuPy / cuCIM twin.
    assert select_impl(watershed_split, "cuda:0") is watershed_split.impl
    assert select_impl(measure_image_quality, "cuda") is measure_image_quality.impl


def test_when_cupy_is_missing_then_cuda_raises_a_clear_error(no_cupy):
    with pytest.raises(OptionalDependencyError, match=r"openhcs-nb\[gpu\]") as info:
        select_impl(gaussian_blur, "cuda:0")
    assert info.value.extra == "gpu"
    assert "gaussian_blur" in str(info.value)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU", ""])
def test_when_device_is_unknown_then_it_is_refused(device):
    with pytest.raises(PipelineError) as info:
        select_impl(gaussian_blur, device)
    assert info.value.field == "device"


def _twin_inputs() -> dict[str, tuple[object, np.ndarray, dict[str, object]]]:
    rng = np.random.default_rng(5)
    shape = (48, 64)
    a, b, c = discs(shape, [(20, 20, 8), (20, 34, 8), (36, 50, 5)])
    ring = a & ~discs(shape, [(20, 20, 3)])[0]
    labels = np.zeros((1, *shape), np.int32)
    labels[0][a], labels[0][c] = 1, 2
    image = (rng.normal(100, 5, (2, *shape)) + 400 * (a | c)).astype(np.uint16)
    return {
        "gaussian_blur": (gaussian_blur, image, {"sigma": 1.5}),
        "subtract_background": (subtract_background, image, {"radius": 12}),
        "subtract_background_tophat": (
            subtract_background,
            image,
            {"radius": 12, "method": "tophat"},
        ),
        "fill_holes": (fill_holes, np.stack([ring, a | b]), {}),
        "label_objects": (label_objects, np.stack([a | c, b]), {"connectivity": 2}),
        "expand_labels": (expand_labels, labels, {"distance": 4}),
    }


@pytest.mark.parametrize("case", list(_twin_inputs()))
def test_when_twin_runs_through_the_wrapper_then_it_matches_the_cpu_impl(
    numpy_cupy, case
):
    fn, stack, kwargs = _twin_inputs()[case]
    on_gpu = select_impl(fn, "cuda:0")
    assert on_gpu is not fn.impl
    result = on_gpu(stack, **kwargs)
    expected = fn.impl(stack, **kwargs)
    assert isinstance(result, np.ndarray)
    assert result.dtype == expected.dtype
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, atol=1e-4)


def _cpu_table(stack: np.ndarray) -> tuple[np.ndarray, dict[str, object]]:
    return stack, {"objects": {"area": np.array([1, 2])}}


def _gpu_table(stack: np.ndarray) -> tuple[np.ndarray, dict[str, object]]:
    return stack + 1, {"objects": {"area": np.array([1, 2])}, "note": "kept"}


def test_when_twin_returns_side_outputs_then_they_come_back_as_numpy(numpy_cupy):
    fn = Function(
        name="with_table",
        version="1",
        impl=_cpu_table,
        help="test function",
        category="measure",
        side_outputs=("objects",),
        memory_type="cupy",
        gpu_impl=f"{__name__}:_gpu_table",
    )
    stack, side = select_impl(fn, "cuda:1")(np.zeros((1, 2, 2)))
    np.testing.assert_array_equal(stack, np.ones((1, 2, 2)))
    np.testing.assert_array_equal(side["objects"]["area"], [1, 2])
    assert side["note"] == "kept"
