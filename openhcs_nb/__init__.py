"""openhcs-nb: build screening pipelines in Jupyter, run them next to the data.

The public names live here; everything else is an implementation detail.

``import openhcs_nb`` is cheap on purpose: a worker process, a protocol test or
the server must not pay for the client, pandas, pyarrow, zmq or scikit-image
because the root package imported them. Every public name is therefore
resolved on first use (PEP 562 ``__getattr__``) from the table ``_EXPORTS``;
type checkers see the real imports under ``TYPE_CHECKING``.
``%load_ext openhcs_nb`` loads the IPython magics (imported only then).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from openhcs_nb.client import Connection, Execution, RemoteError, ServerSet
    from openhcs_nb.defaults import (
        cells_pipeline,
        default_pipeline,
        nuclei_count_pipeline,
    )
    from openhcs_nb.errors import (
        CompileError,
        OpenHCSError,
        PipelineCodeError,
        PipelineError,
        PlateError,
        UnknownPlateError,
        UnknownWellError,
    )
    from openhcs_nb.execution.compile import compile_pipeline
    from openhcs_nb.execution.local import run_local
    from openhcs_nb.loading import load_pipeline
    from openhcs_nb.pipeline.model import Pipeline, Step
    from openhcs_nb.plates import open_plate
    from openhcs_nb.plates.demo import demo_plate
    from openhcs_nb.results.store import Results

__version__ = "0.1.0"

#: Where each lazily exported name lives (one row per public name).
_EXPORTS: dict[str, str] = {
    "CompileError": "openhcs_nb.errors",
    "Connection": "openhcs_nb.client",
    "Execution": "openhcs_nb.client",
    "OpenHCSError": "openhcs_nb.errors",
    "Pipeline": "openhcs_nb.pipeline.model",
    "PipelineCodeError": "openhcs_nb.errors",
    "PipelineError": "openhcs_nb.errors",
    "PlateError": "openhcs_nb.errors",
    "RemoteError": "openhcs_nb.client",
    "Results": "openhcs_nb.results.store",
    "ServerSet": "openhcs_nb.client",
    "Step": "openhcs_nb.pipeline.model",
    "UnknownPlateError": "openhcs_nb.errors",
    "UnknownWellError": "openhcs_nb.errors",
    "cells_pipeline": "openhcs_nb.defaults",
    "compile_pipeline": "openhcs_nb.execution.compile",
    "default_pipeline": "openhcs_nb.defaults",
    "demo_plate": "openhcs_nb.plates.demo",
    "function": "openhcs_nb.custom",
    "load_pipeline": "openhcs_nb.loading",
    "nuclei_count_pipeline": "openhcs_nb.defaults",
    "open_plate": "openhcs_nb.plates",
    "run_local": "openhcs_nb.execution.local",
}

__all__ = [
    "CompileError",
    "Connection",
    "Execution",
    "OpenHCSError",
    "Pipeline",
    "PipelineCodeError",
    "PipelineError",
    "PlateError",
    "RemoteError",
    "Results",
    "ServerSet",
    "Step",
    "UnknownPlateError",
    "UnknownWellError",
    "cells_pipeline",
    "compile_pipeline",
    "connect",
    "default_pipeline",
    "demo_plate",
    "function",
    "load_ipython_extension",
    "load_pipeline",
    "nuclei_count_pipeline",
    "open_plate",
    "run_local",
    "show_napari",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'openhcs_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, although most are not imported yet."""
    return sorted({*globals(), *__all__})


def connect(
    address: str | Sequence[str] | None = None,
    server_key: str | Path | Sequence[str | Path] | None = None,
    **options: Any,
) -> Connection | ServerSet:
    """Connect to an openhcs server; see :func:`openhcs_nb.client.connect`.

    Several addresses give a :class:`ServerSet` (``docs/several-servers.md``).

    Same arguments and errors as the client's ``connect``. In a running
    IPython kernel that has ipywidgets, an :class:`Execution` then displays as
    the live run panel (as after ``%load_ext openhcs_nb``) rather than its
    static HTML snapshot. The hook lives here, not in the client, because the
    client never imports the notebook layer.
    """
    from openhcs_nb.client import connect as open_connection

    connection = open_connection(address, server_key, **options)
    _register_display_if_in_ipython()
    return connection


def show_napari(run: Execution, viewer: Any = None) -> Any:
    """Open napari (or use ``viewer``) and add each well of ``run`` as it arrives.

    Needs the ``napari`` extra and a display; without one the error points to
    the inline viewer. Returns the viewer.
    """
    from openhcs_nb.jupyter.napari_view import show_napari as show

    return show(run, viewer)


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%openhcs_*`` magics (``%load_ext openhcs_nb``)."""
    from openhcs_nb.jupyter.magics import register

    register(ipython)


def _register_display_if_in_ipython() -> None:
    """Give executions the live panel when a kernel with ipywidgets runs us.

    Only an IPython that is already imported counts (importing it here would
    make every script pay for it); without ipywidgets nothing is registered
    and executions keep their HTML snapshot.
    """
    ipython_module = sys.modules.get("IPython")
    get_ipython = getattr(ipython_module, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    if importlib.util.find_spec("ipywidgets") is None:
        return
    from openhcs_nb.jupyter._display import register_display

    register_display(shell)
