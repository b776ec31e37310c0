"""The per-well task a worker runs: read, process, write, summarise.

``run_well`` never raises for a failure inside the pipeline: a well that fails
comes back as a :class:`WellResult` whose ``error`` holds the traceback, so the
rest of the plate carries on. Pixels stay in the worker; only the summary, the
object table and small previews travel back.
"""

from __future__ import annotations

import functools
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.execution.runner import WellState, run_steps
from openhcs_nb.plates._containment import Confinement
from openhcs_nb.plates.model import Plate


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
) -> WellResult:
    """Process ``well`` and, when ``out`` is a results store, write its outputs."""
    start = time.perf_counter()
    try:
        source = (
            plate if plate is not None else open_cached(plan.plate_ref, plan.confine)
        )
        state = WellState.load(source, well)
        run_steps(plan, state)
        objects = concat_tables(state.objects)
        summary = summarise(objects, state)
        if out is not None:
            from openhcs_nb.results.store import ResultsStore

            paths = {
                s: source.pixel_path(well, s)
                for s in sorted({k[0] for k in state.images})
            }
            ResultsStore(Path(out)).write_well(plan, state, objects, paths)
        previews = make_previews(state, preview_size) if preview_size else {}
    except Exception as exc:
        error = WellError(type(exc).__name__, str(exc), traceback.format_exc())
        return WellResult(well, error=error, seconds=time.perf_counter() - start)
    return WellResult(
        well, summary, objects, previews, seconds=time.perf_counter() - start
    )


def concat_tables(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join per-field object tables column by column."""
    if not tables:
        return {}
    columns = list(tables[0])
    return {c: np.concatenate([t[c] for t in tables]) for c in columns}


def summarise(
    objects: dict[str, np.ndarray], state: WellState
) -> dict[str, float | int]:
    """Per-well numbers: object count, mean area and mean intensity per channel.

    Wells without a measurement step count the objects of the last labels set.
    """
    if objects:
        count = len(objects["label"])
        summary: dict[str, float | int] = {"count": count}
        for name, column in objects.items():
            if name == "area" or name.startswith("intensity_mean_"):
                key = "area_mean" if name == "area" else name
                summary[key] = float(column.mean()) if count else float("nan")
        return summary
    if state.labels:
        last = list(state.labels.values())[-1]
        return {"count": sum(len(np.unique(p[p > 0])) for p in last.values())}
    return {}


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
