"""Plain data the results store takes in and hands out.

The store sits below execution in the layering, so it never sees a plan or a
well's running state: the caller converts those into the frozen records here
(``openhcs_nb.execution._store_io`` does it for the runner). Pixel arrays in a
:class:`WellOutputs` are references to what the pipeline produced, never
copies, and raw input planes are absent from it by construction: the store
points to the input plate for those.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

ZARR_NAME = "results.ome.zarr"

PlaneKey = tuple[int, int, int, int]  # site, t, channel, z
LabelKey = tuple[int, int, int]  # site, t, z
Table = Mapping[str, np.ndarray]


def pipeline_hash(code: str) -> str:
    """The fingerprint of pipeline code everywhere: SHA-256 of its UTF-8, in hex.

    The job store, the audit log, provenance and OMERO write-back all use it,
    so one run can be followed across all of them.
    """
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoreLayout:
    """What a new store must know about the run: names, plate ref, grid."""

    pipeline_name: str
    pipeline_code: str
    plate_ref: str
    plate_name: str
    wells: tuple[str, ...]
    fields: int
    channels: tuple[str, ...]


@dataclass(frozen=True)
class WellOutputs:
    """One well's outputs, as the store writes them.

    ``planes`` lists every plane of the well's final images, whether the
    pipeline changed it or not, so readers know which raw planes to fetch from
    the input plate. ``derived`` holds only the planes a step replaced.
    ``shape`` and ``dtype`` describe a plane, for fields with nothing derived.
    """

    well: str
    channels: tuple[str, ...]
    shape: tuple[int, int]
    dtype: str
    planes: frozenset[PlaneKey]
    derived: Mapping[PlaneKey, np.ndarray] = field(default_factory=dict)
    labels: Mapping[str, Mapping[LabelKey, np.ndarray]] = field(default_factory=dict)
    objects: Table = field(default_factory=dict)
    pixel_paths: Mapping[int, str] = field(default_factory=dict)
    field_table: Table = field(default_factory=dict)

    @property
    def sites(self) -> tuple[int, ...]:
        """Fields of the well that have any output, in order."""
        found = {k[0] for k in self.planes}
        found |= {k[0] for planes in self.labels.values() for k in planes}
        return tuple(sorted(found))


class WellFailure(Protocol):
    """Why a well failed (structurally: ``execution.well.WellError`` fits)."""

    @property
    def type(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def traceback(self) -> str: ...


class WellOutcome(Protocol):
    """What ``finalize`` needs of a finished well (``WellResult`` fits)."""

    @property
    def well(self) -> str: ...

    @property
    def summary(self) -> Mapping[str, float | int]: ...

    @property
    def error(self) -> WellFailure | None: ...


@dataclass
class Results:
    """Finished results: per-well, per-object and per-field tables."""

    path: Path
    wells: pd.DataFrame
    objects: pd.DataFrame
    failed: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    fields: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def zarr_path(self) -> Path:
        """The OME-Zarr plate of labels and derived images."""
        return self.path / ZARR_NAME

    @property
    def input_plate(self) -> str:
        """The plate ref the raw pixels are read from (they are not copied)."""
        return str(self.provenance.get("plate", ""))

    def __repr__(self) -> str:
        return (
            f"<Results {len(self.wells)} wells, {len(self.objects)} objects, "
            f"{len(self.failed)} failed at {self.path}>"
        )
