"""The results store: Parquet tables plus an OME-Zarr plate of outputs.

Layout of a store directory::

    provenance.json      pipeline code hash, versions, plate, time, raw pixels
    pipeline.py          the exact pipeline code that ran
    wells.parquet        one row per well (written by ``finalize``)
    objects.parquet      one row per object, all object sets (``finalize``)
    fields.parquet       one row per field, when the wells measured fields
    results.ome.zarr/    OME-Zarr 0.4 plate mirroring the input wells and fields;
                         each field holds labels/<name> and the derived images
    pixel_paths.json     per well and field, how the pixels were read
    failures.json        failed wells with their tracebacks
    parts/<well>.*       per-well tables and pixel paths, from the workers

Raw input pixels are never copied: ``provenance.json`` (``raw_pixels``) and the
zarr attributes name the input plate, and :meth:`ResultsStore.read_field`
reads unchanged channels from it through an opener the caller injects (on a
server, one that respects the plate roots and the user's session).

The store takes plain records (:mod:`openhcs_nb.results.records`) and never
imports the execution layer. Workers write their own well directly, so pixels
never pass through the coordinating process.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openhcs_nb.errors import PlateError
from openhcs_nb.plates.model import split_well
from openhcs_nb.results import _tables, _zarr_output
from openhcs_nb.results._tables import wells_frame
from openhcs_nb.results._zarr_output import InputOpener
from openhcs_nb.results.records import (
    ZARR_NAME,
    Results,
    StoreLayout,
    WellFailure,
    WellOutcome,
    WellOutputs,
    pipeline_hash,
)

__all__ = [
    "ZARR_NAME",
    "InputOpener",
    "Results",
    "ResultsStore",
    "StoreLayout",
    "WellOutputs",
    "pipeline_hash",
    "wells_frame",
]


class ResultsStore:
    """Reads and writes one results directory.

    ``open_input`` opens the input plate by its recorded ref; it is needed
    only to read raw channels back (:meth:`read_field`).
    """

    def __init__(self, path: Path, open_input: InputOpener | None = None) -> None:
        self.path = Path(path)
        self.open_input = open_input

    def create(self, layout: StoreLayout, extra: dict[str, Any] | None = None) -> None:
        """Lay out the directory and the empty output plate for ``layout``."""
        from openhcs_nb import __version__

        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "parts").mkdir(exist_ok=True)
        (self.path / "pipeline.py").write_text(layout.pipeline_code)
        provenance = {
            "pipeline_name": layout.pipeline_name,
            "pipeline_hash": pipeline_hash(layout.pipeline_code),
            "openhcs_nb_version": __version__,
            "plate": layout.plate_ref,
            "wells": list(layout.wells),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            "raw_pixels": {"stored": False, "plate": layout.plate_ref},
            **(extra or {}),
        }
        (self.path / "provenance.json").write_text(json.dumps(provenance, indent=2))
        _zarr_output.create_plate(self.path / ZARR_NAME, layout)

    def write_well(self, outputs: WellOutputs) -> None:
        """Write one well's labels, derived images and tables (run in the worker)."""
        _zarr_output.write_well(self.path / ZARR_NAME, outputs)
        parts = self.path / "parts"
        if outputs.pixel_paths:
            record = {"well": outputs.well, "pixel_paths": dict(outputs.pixel_paths)}
            (parts / f"{outputs.well}.source.json").write_text(json.dumps(record))
        _tables.write_part(
            parts / f"{outputs.well}.parquet", outputs.well, outputs.objects
        )
        _tables.write_part(
            parts / f"{outputs.well}{_tables.FIELDS_SUFFIX}",
            outputs.well,
            outputs.field_table,
        )

    def read_field(self, well: str, site: int = 0) -> dict[str, np.ndarray]:
        """Full-resolution planes of one field: ``image/<channel>``, ``labels/<name>``.

        Images are the pipeline's final images (first t and z): derived
        channels from the store, unchanged ones from the input plate.

        Raises
        ------
        PlateError
            The well or field has not been written (yet), or raw channels are
            needed and the store was opened without ``open_input``.
        """
        return _zarr_output.read_field(
            self.path / ZARR_NAME, well, site, self.open_input
        )

    def read_labels(self, well: str, site: int = 0) -> dict[str, np.ndarray]:
        """The labels sets of one field by name (no raw pixels are read).

        Raises
        ------
        PlateError
            The well or field has not been written (yet).
        """
        return _zarr_output.read_labels(self.path / ZARR_NAME, well, site)

    def read_objects(self, well: str, site: int | None = None) -> pd.DataFrame:
        """The objects rows a well's worker wrote (one field's when ``site``).

        Read from the well's part, so a well is readable as soon as it is done,
        before :meth:`finalize` gathers the plate-wide table.

        Raises
        ------
        PlateError
            The store is gone, or the well has no objects table (the pipeline
            measured no objects, or the well is not written yet).
        """
        part = self.path / "parts" / f"{well}.parquet"
        if not part.exists():
            if not self.path.exists():
                raise PlateError(
                    f"the results of well {well} are no longer on the server"
                )
            raise PlateError(
                f"no objects table for well {well}: the pipeline measured no "
                "objects (add a measure step)"
            )
        frame = pd.read_parquet(part)
        if site is not None and "site" in frame:
            frame = frame[frame["site"] == site]
        return frame

    def finalize(self, results: Sequence[WellOutcome]) -> Results:
        """Write the plate-wide tables from the wells' outcomes and load them."""
        rows = []
        failed: dict[str, WellFailure] = {}
        for result in sorted(results, key=lambda r: r.well):
            row_letter, column = split_well(result.well)
            base = {"well": result.well, "row": row_letter, "column": column}
            if result.error is not None:
                failed[result.well] = result.error
                rows.append({**base, "status": "failed", "error": _text(result.error)})
            else:
                rows.append({**base, "status": "done", "error": None, **result.summary})
        wells_frame(rows).to_parquet(self.path / "wells.parquet", index=False)
        parts = self.path / "parts"
        objects = _tables.gather(_tables.object_parts(parts))
        objects.to_parquet(self.path / "objects.parquet", index=False)
        fields = _tables.field_parts(parts)
        if fields:
            _tables.gather(fields).to_parquet(self.path / "fields.parquet", index=False)
        sources = [
            json.loads(p.read_text()) for p in sorted(parts.glob("*.source.json"))
        ]
        paths = {src["well"]: src["pixel_paths"] for src in sources}
        (self.path / "pixel_paths.json").write_text(json.dumps(paths, indent=1))
        failures = {
            w: {"type": e.type, "message": e.message, "traceback": e.traceback}
            for w, e in failed.items()
        }
        (self.path / "failures.json").write_text(json.dumps(failures, indent=2))
        return self.load()

    def load(self) -> Results:
        """Open a finished store."""
        failures = json.loads((self.path / "failures.json").read_text())
        fields = self.path / "fields.parquet"
        return Results(
            path=self.path,
            wells=pd.read_parquet(self.path / "wells.parquet"),
            objects=pd.read_parquet(self.path / "objects.parquet"),
            failed={w: f"{e['type']}: {e['message']}" for w, e in failures.items()},
            provenance=json.loads((self.path / "provenance.json").read_text()),
            fields=pd.read_parquet(fields) if fields.exists() else pd.DataFrame(),
        )


def _text(error: WellFailure) -> str:
    return f"{error.type}: {error.message}"
