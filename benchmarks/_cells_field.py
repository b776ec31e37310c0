"""The field and the parameters both chains of ``bench_cells.py`` share.

The parameters are the default pipeline's (``openhcs_nb.defaults``), so the
scikit-image chain (``_cells_reference.py``) does the same work as ours.
Import this after pinning BLAS threads, as ``bench_cells.py`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

SMOOTHING = 1.0
MIN_DISTANCE = 7
DECLUMP_SIGMA = 2.0
MIN_SIZE = 80
MAX_SIZE = 20_000
CELL_DISTANCE = 80
REGULARIZATION = 0.05
TEXTURE_SCALE = 3
LEVELS = 256
CHANNELS = ("DAPI", "Cyto")
SHAPE_PROPS = (
    *("label", "area", "perimeter", "area_convex", "solidity", "extent"),
    *("eccentricity", "axis_major_length", "axis_minor_length", "orientation"),
    *("feret_diameter_max", "centroid"),
    *(f"intensity_{stat}" for stat in ("mean", "min", "max", "std", "median")),
)
Times = dict[str, float]
Clock = Callable[[], float]


class Field(NamedTuple):
    """One field: raw channels, the prepared nuclear plane and the truth masks."""

    stack: np.ndarray  # (2, y, x) uint16: DAPI, cytoplasm
    nuclear: np.ndarray  # (y, x) float32, background subtracted
    truth_nuclei: np.ndarray
    truth_cells: np.ndarray


class Outcome(NamedTuple):
    """What one chain produced: labels, and the outputs checked across chains."""

    nuclei: np.ndarray
    cells: np.ndarray
    cytoplasm: np.ndarray
    cell_table: dict[str, np.ndarray]  # the cells' measurement columns
    texture: np.ndarray  # (nuclei, 13) Haralick features
    slopes: np.ndarray  # power-spectrum slope per channel


def make_field(size: int, confluence: float = 0.5) -> Field:
    """The second well of a 1 x 2 realistic demo plate, scaled to ``size``.

    ``confluence`` is the demo spec's chance that a nucleus touches another
    in that well; the demo plate's own last column uses 1.0.
    """
    from openhcs_nb import functions as fn
    from openhcs_nb.plates.demo import DEMO_SPEC
    from openhcs_nb.plates.synthetic import plate_light, render_field_with_masks

    nuclei = max(8, round(450 * (size / 1024) ** 2))
    spec = dataclasses.replace(
        DEMO_SPEC,
        rows=1,
        columns=2,
        fields=1,
        shape=(size, size),
        min_nuclei=nuclei // 4,
        max_nuclei=nuclei,
        out_of_focus=0.0,
        confluence=confluence,
    )
    image, _, masks = render_field_with_masks(spec, 0, 1, 0, plate_light(spec))
    stack = np.ascontiguousarray(image[0, :, 0])
    nuclear = fn.subtract_background(stack[:1], radius=15)[0].astype(np.float32)
    return Field(stack, nuclear, masks["nuclei"], masks["cells"])


def timed_on(times: Times, name: str, step: Callable[[], Any], clock: Clock) -> Any:
    """Run ``step``, add its time on ``clock`` to ``times[name]``, return its value."""
    t0 = clock()
    value = step()
    times[name] = times.get(name, 0.0) + clock() - t0
    return value
