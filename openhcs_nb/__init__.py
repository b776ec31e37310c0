"""openhcs-nb: build screening pipelines in Jupyter, run them next to the data.

The public names live here; everything else is an implementation detail.
``%load_ext openhcs_nb`` loads the IPython magics (imported only then).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from openhcs_nb.client import Connection, Execution, RemoteError, connect
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
    "Step",
    "UnknownPlateError",
    "UnknownWellError",
    "__version__",
    "compile_pipeline",
    "connect",
    "cells_pipeline",
    "default_pipeline",
    "demo_plate",
    "load_ipython_extension",
    "load_pipeline",
    "nuclei_count_pipeline",
    "open_plate",
    "run_local",
]


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%openhcs_*`` magics (``%load_ext openhcs_nb``)."""
    from openhcs_nb.jupyter.magics import register

    register(ipython)
