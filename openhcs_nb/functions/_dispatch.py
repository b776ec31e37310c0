"""Choosing the implementation of a function for a device.

``select_impl(fn, "cpu")`` is ``fn.impl``. On ``"cuda"`` or ``"cuda:N"`` a
function with a ``gpu_impl`` runs its CuPy twin, wrapped so callers still
pass and receive NumPy arrays; functions without a twin run on the CPU.

If a GPU device is asked for and CuPy cannot be imported, this raises
:class:`~openhcs_nb.errors.OptionalDependencyError` rather than silently
running on the CPU: a worker bound to a GPU without CuPy is misconfigured,
and a quiet fallback would hide that (and its cost) from the user.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from openhcs_nb.errors import OptionalDependencyError, PipelineError
from openhcs_nb.spec import Function


def _device_index(device: str) -> int | None:
    """``None`` for the CPU, else the CUDA device index (``"cuda"`` is 0).

    Raises
    ------
    PipelineError
        The device string is neither ``"cpu"`` nor ``"cuda[:N]"``.
    """
    if device == "cpu":
        return None
    head, _, index = device.partition(":")
    if head == "cuda" and (not index or index.isdigit()):
        return int(index) if index else 0
    raise PipelineError(
        f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'", field="device"
    )


def _resolve(path: str) -> Callable[..., Any]:
    """Import ``"module:function"``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def device_twin(fn: Function) -> Callable[..., Any] | None:
    """``fn``'s device twin (runs on its input's array namespace), or None."""
    return None if fn.gpu_impl is None else _resolve(fn.gpu_impl)


def device_index(device: str) -> int | None:
    """``None`` for ``"cpu"``, else the CUDA index of ``"cuda[:N]"``.

    Raises
    ------
    PipelineError
        The device string is neither ``"cpu"`` nor ``"cuda[:N]"``.
    """
    return _device_index(device)


def _to_host(value: Any, cupy: Any) -> Any:
    """Copy CuPy arrays (also inside tuples and dicts) back to NumPy."""
    if isinstance(value, cupy.ndarray):
        return cupy.asnumpy(value)
    if isinstance(value, tuple):
        return tuple(_to_host(item, cupy) for item in value)
    if isinstance(value, Mapping):
        return {key: _to_host(item, cupy) for key, item in value.items()}
    return value


def select_impl(fn: Function, device: str) -> Callable[..., Any]:
    """The callable that runs ``fn`` on ``device``, taking and returning NumPy.

    Raises
    ------
    PipelineError
        ``device`` is not ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    OptionalDependencyError
        A CUDA device was asked for, ``fn`` has a GPU twin and CuPy is missing.
    """
    index = _device_index(device)
    if index is None or fn.gpu_impl is None:
        return fn.impl
    try:
        import cupy
    except ImportError as exc:
        raise OptionalDependencyError(
            f"running {fn.name} on {device}", extra="gpu", package="cupy"
        ) from exc
    twin = _resolve(fn.gpu_impl)

    def on_gpu(stack: Any, **kwargs: Any) -> Any:
        with cupy.cuda.Device(index):
            moved = {
                key: cupy.asarray(value)
                if key == "labels" and value is not None
                else value
                for key, value in kwargs.items()
            }
            return _to_host(twin(cupy.asarray(stack), **moved), cupy)

    on_gpu.__name__ = f"{fn.name}_on_{device.replace(':', '_')}"
    on_gpu.__doc__ = f"{fn.name} on {device} (CuPy twin {fn.gpu_impl})."
    return on_gpu
