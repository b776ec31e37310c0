"""The per-well task a worker runs: read, process, write, summarise.

``run_well`` never raises for a failure inside the pipeline: a well that fails
comes back as a :class:`WellResult` whose ``error`` holds the traceback, so the
rest of the plate carries on. Pixels stay in the worker; only the summary, the
object table and small previews travel back.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openhcs_nb.execution.placement import (
    estimate_device_bytes,
    fits_on_device,
    on_cpu,
    uses_device,
)
from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.runner import WellState, run_steps
from openhcs_nb.execution.worker_limits import memory_cap_bytes, memory_message
from openhcs_nb.functions._aggregate import well_aggregates
from openhcs_nb.functions._quality import flag_blurred_fields
from openhcs_nb.functions._xp import ArrayNamespace, cupy_namespace, is_out_of_memory
from openhcs_nb.plates._containment import Confinement
from openhcs_nb.plates.model import Plate

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WellError:
    """Why a well failed: exception type, message and the formatted traceback."""

    type: str
    message: str
    traceback: str

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass
class WellResult:
    """What one well produced; ``error`` is None when it succeeded."""

    well: str
    summary: dict[str, float | int] = field(default_factory=dict)
    objects: dict[str, np.ndarray] = field(default_factory=dict)
    previews: dict[str, np.ndarray] = field(default_factory=dict)
    error: WellError | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the well finished without error."""
        return self.error is None


@functools.lru_cache(maxsize=8)
def open_cached(ref: str, confine: Confinement | None = None) -> Plate:
    """Plates are reopened once per worker process, not once per well.

    A plan compiled on a server carries its plate roots, so the worker reopens
    the plate under the same confinement as the server did.
    """
    from openhcs_nb.plates import open_plate

    return open_plate(ref, confine)


def run_well(
    plan: ExecutionPlan,
    well: str,
    out: str | Path | None = None,
    preview_size: int = 0,
    plate: Plate | None = None,
    device: ArrayNamespace | None = None,
) -> WellResult:
    """Process ``well`` and, when ``out`` is a results store, write its outputs.

    A plan with GPU calls checks the device's free memory first and handles
    a GPU out-of-memory error as ``plan.gpu_oom`` says (rerun on the CPU or
    fail with ``gpu_memory``); the worker lives on either way. ``device`` is
    the namespace for device calls (None: CuPy).
    """
    start = time.perf_counter()
    short_of_memory = ""
    try:
        if uses_device(plan):
            device = device if device is not None else cupy_namespace()
            need, free = estimate_device_bytes(plan), device.free_bytes()
            if not fits_on_device(free, need):
                short_of_memory = (
                    f"needs about {need >> 20} MiB of GPU memory and "
                    f"{(free or 0) >> 20} MiB are free"
                )
                raise _DeviceShort
        source = (
            plate if plate is not None else open_cached(plan.plate_ref, plan.confine)
        )
        state = WellState.load(source, well)
        state.device = device
        if plan.plate_phase is not None and out is not None:
            from openhcs_nb.execution.plate_phase import load_fit

            state.flat_fields = load_fit(out)
        run_steps(plan, state)
        objects = concat_tables(state.objects)
        if state.fields:
            state.fields = [flag_blurred_fields(concat_tables(state.fields))]
        summary = summarise(objects, state)
        if out is not None:
            from openhcs_nb.execution._store_io import well_outputs
            from openhcs_nb.results.store import ResultsStore

            paths = {
                s: source.pixel_path(well, s)
                for s in sorted({k[0] for k in state.images})
            }
            fields = concat_tables(state.fields)
            outputs = well_outputs(state, objects, paths, field_table=fields)
            ResultsStore(Path(out)).write_well(outputs)
        previews = make_previews(state, preview_size) if preview_size else {}
    except _DeviceShort:
        pass
    except MemoryError:
        # Past the worker's RLIMIT_DATA: this well fails, the worker lives on.
        error = WellError("well_memory", memory_message(well, memory_cap_bytes()), "")
        return WellResult(well, error=error, seconds=time.perf_counter() - start)
    except Exception as exc:
        if not (is_out_of_memory(exc) and uses_device(plan)):
            error = WellError(type(exc).__name__, str(exc), traceback.format_exc())
            return WellResult(well, error=error, seconds=time.perf_counter() - start)
        first = str(exc).splitlines()[0] if str(exc) else ""
        short_of_memory = f"ran out of GPU memory ({type(exc).__name__}: {first})"
    if short_of_memory:
        return _after_gpu_memory(
            plan, well, (out, preview_size, plate), device, short_of_memory, start
        )
    return WellResult(
        well, summary, objects, previews, seconds=time.perf_counter() - start
    )


class _DeviceShort(Exception):
    """The well's estimate does not fit the GPU's free memory (internal)."""


def _after_gpu_memory(
    plan: ExecutionPlan,
    well: str,
    rest: tuple[str | Path | None, int, Plate | None],
    device: ArrayNamespace | None,
    why: str,
    start: float,
) -> WellResult:
    """Rerun ``well`` on the CPU, or fail it with ``gpu_memory``, per the plan."""
    if device is not None:
        device.release()
    if plan.gpu_oom == "cpu":
        _log.warning("well %s %s: running it on the CPU", well, why)
        result = run_well(on_cpu(plan), well, *rest)
        result.seconds = time.perf_counter() - start
        return result
    message = (
        f'well {well} {why}; set [execution] gpu_oom = "cpu" to run such '
        "wells on the CPU"
    )
    error = WellError("gpu_memory", message, "")
    return WellResult(well, error=error, seconds=time.perf_counter() - start)


def concat_tables(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join per-field tables column by column.

    Tables of different object sets carry different columns (cells have a
    parent, nuclei do not): the result has every column, NaN where a table
    lacks it.
    """
    if not tables:
        return {}
    columns = list(dict.fromkeys(c for t in tables for c in t))
    out: dict[str, np.ndarray] = {}
    for c in columns:
        parts = []
        for t in tables:
            if c in t:
                parts.append(np.asarray(t[c]))
            else:
                rows = len(next(iter(t.values()))) if t else 0
                parts.append(np.full(rows, np.nan))
        out[c] = np.concatenate(parts)
    return out


#: Columns that identify an object or a place; they are not averaged per well.
_IDENTIFIERS = ("label", "site", "t", "z", "centroid_y", "centroid_x")


def summarise(
    objects: dict[str, np.ndarray], state: WellState
) -> dict[str, float | int]:
    """Per-well numbers: counts and the mean, median and std of every feature.

    The first measured object set (usually the nuclei) gives the plain
    names (``count``, ``area_mean``, ``intensity_mean_DAPI_mean``...); the
    others are prefixed with their set (``cells_count``). Wells without a
    measurement step count the objects of the last labels set; fields that
    fail image QC are counted in ``fields_failing_qc``.
    """
    summary: dict[str, float | int] = {}
    if objects:
        sets = objects.get("object_set")
        names = list(dict.fromkeys(sets)) if sets is not None else [None]
        for index, name in enumerate(names):
            rows = slice(None) if name is None else np.asarray(sets) == name
            table = {k: np.asarray(v)[rows] for k, v in objects.items()}
            prefix = "" if index == 0 else f"{name}_"
            summary |= {f"{prefix}{k}": v for k, v in _aggregates(table).items()}
    elif state.labels:
        last = list(state.labels.values())[-1]
        summary["count"] = sum(len(np.unique(p[p > 0])) for p in last.values())
    if state.fields:
        quality = concat_tables(state.fields)
        failing = {
            (s, t, z)
            for s, t, z, ok in zip(
                quality["site"],
                quality["t"],
                quality["z"],
                quality["qc_pass"],
                strict=True,
            )
            if not ok
        }
        summary["fields_failing_qc"] = len(failing)
    return summary


def _aggregates(table: dict[str, np.ndarray]) -> dict[str, float | int]:
    """Count plus mean, median and std of each numeric feature of one set."""
    features = [
        k
        for k, v in table.items()
        if k not in _IDENTIFIERS
        and not k.startswith("parent_")
        and k != "nearest_neighbor_label"
        and v.dtype.kind in "iufb"
    ]
    out = well_aggregates(table, features=features)
    count = int(out.pop("count"))
    renamed: dict[str, float | int] = {"count": count}
    for key, value in out.items():
        # The well's mean of object mean intensities keeps its short,
        # long-standing name (intensity_mean_DAPI, not ..._DAPI_mean).
        short = key
        if key.startswith("intensity_mean_") and key.endswith("_mean"):
            short = key[: -len("_mean")]
        renamed[short] = value
    return renamed


def make_previews(
    state: WellState, size: int, site: int = 0, prefix: str = "image"
) -> dict[str, np.ndarray]:
    """Downsampled planes of one field: one per channel, one per labels set."""
    previews: dict[str, np.ndarray] = {}
    for (s, t, c, z), plane in sorted(state.images.items()):
        if s == site and t == 0 and z == 0:
            previews[f"{prefix}/{state.channels[c]}"] = shrink(
                plane, size, average=True
            )
    for name, planes in state.labels.items():
        first = planes.get((site, 0, 0))
        if first is not None:
            previews[f"labels/{name}"] = shrink(first, size, average=False)
    return previews


def shrink(plane: np.ndarray, size: int, *, average: bool) -> np.ndarray:
    """Downsample ``plane`` by an integer factor so its longest side is <= size.

    Images are block-averaged; labels are subsampled so ids stay intact.
    """
    step = max(1, -(-max(plane.shape) // size))
    if step == 1:
        return np.ascontiguousarray(plane)
    if not average:
        return np.ascontiguousarray(plane[::step, ::step])
    h, w = (plane.shape[0] // step) * step, (plane.shape[1] // step) * step
    blocks = plane[:h, :w].reshape(h // step, step, w // step, step)
    return blocks.mean(axis=(1, 3), dtype=np.float32).astype(plane.dtype)
