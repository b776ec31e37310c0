"""Array namespaces: one body of device code for NumPy (CPU) and CuPy (GPU).

The device functions (``_device_*.py``) are written once against ``xp``
(``numpy`` or ``cupy``) and ``ndi`` (``scipy.ndimage`` or
``cupyx.scipy.ndimage``), picked from the type of the array they are given.
So the CPU test suite runs exactly the code a GPU runs, with NumPy as the
backend, and compares it with the reference functions.

An :class:`ArrayNamespace` also owns the transfers (``to_device`` /
``to_host``) and the free-memory query the well runner needs. CuPy is an
optional extra: it is imported only when a CuPy namespace is asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from scipy import ndimage

from openhcs_nb.errors import OptionalDependencyError


def _host(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class ArrayNamespace:
    """The array module, its ``ndimage`` and how to move arrays in and out.

    ``upload`` and ``download`` convert one array; ``free`` returns the
    device's free bytes (None on the host); ``select`` is a context manager
    making device ``index`` current; ``release`` hands cached blocks back
    (after an out-of-memory error).
    """

    name: str
    xp: ModuleType
    ndi: ModuleType
    upload: Callable[[Any], Any] = _host
    download: Callable[[Any], Any] = _host
    free: Callable[[], int | None] = lambda: None
    select: Callable[[int], contextlib.AbstractContextManager[Any]] = lambda index: (
        contextlib.nullcontext()
    )
    release: Callable[[], None] = lambda: None

    def to_device(self, value: Any) -> Any:
        """``value`` as an array of this namespace (no copy on the host)."""
        return self.upload(value)

    def to_host(self, value: Any) -> Any:
        """NumPy copies of this namespace's arrays, also inside tuples and dicts."""
        if isinstance(value, tuple):
            return tuple(self.to_host(item) for item in value)
        if isinstance(value, Mapping):
            return {key: self.to_host(item) for key, item in value.items()}
        if hasattr(value, "shape") and not isinstance(value, np.ndarray):
            return self.download(value)
        return value

    def free_bytes(self) -> int | None:
        """Free device memory in bytes, or None where there is no device."""
        return self.free()

    @contextlib.contextmanager
    def on(self, index: int) -> Iterator[None]:
        """Run the block with device ``index`` current."""
        with self.select(index):
            yield


NUMPY = ArrayNamespace("numpy", np, ndimage, upload=np.asarray)


def cupy_namespace() -> ArrayNamespace:
    """The CuPy namespace (imports CuPy).

    Raises
    ------
    OptionalDependencyError
        CuPy is not installed (the ``gpu`` extra).
    """
    try:
        import cupy
        from cupyx.scipy import ndimage as cundi
    except ImportError as exc:
        raise OptionalDependencyError(
            "running functions on a GPU", extra="gpu", package="cupy"
        ) from exc
    return ArrayNamespace(
        "cupy",
        cupy,
        cundi,
        upload=cupy.asarray,
        download=cupy.asnumpy,
        free=lambda: int(cupy.cuda.runtime.memGetInfo()[0]),
        select=cupy.cuda.Device,
        release=cupy.get_default_memory_pool().free_all_blocks,
    )


def namespace_of(array: Any) -> ArrayNamespace:
    """The namespace of ``array``: CuPy for CuPy arrays, else NumPy."""
    module = type(array).__module__ or ""
    if module.split(".", 1)[0] == "cupy":
        return cupy_namespace()
    return NUMPY


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device out-of-memory error, checked by class name.

    CuPy raises ``cupy.cuda.memory.OutOfMemoryError`` (and cuFFT/cuBLAS
    their own ``...OutOfMemoryError``); matching the name keeps CPU code free
    of a CuPy import. A host ``MemoryError`` is not a device error.
    """
    return any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__)
