"""The results store: Parquet tables plus an OME-Zarr plate of outputs.

Layout of a store directory::

    provenance.json      pipeline code hash, versions, plate, time
    pipeline.py          the exact pipeline code that ran
    wells.parquet        one row per well (written by ``finalize``)
    objects.parquet      one row per object (written by ``finalize``)
    results.ome.zarr/    OME-Zarr 0.4 plate mirroring the input wells and fields;
                         each field holds the final images and labels/<name>
    pixel_paths.json     per well and field, how the pixels were read
    failures.json        failed wells with their tracebacks
    parts/<well>.*       per-well object tables and pixel paths, from the workers

Workers write their own well's pixels and object table directly, so pixels
never pass through the coordinating process. OME-Zarr 0.4 (Zarr v2) is written
because napari-ome-zarr and vizarr read it everywhere today.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from openhcs_nb.execution.plan import ExecutionPlan
from openhcs_nb.plates.model import split_well

if TYPE_CHECKING:
    from openhcs_nb.execution.runner import WellState
    from openhcs_nb.execution.well import WellError, WellResult

ZARR_NAME = "results.ome.zarr"


def pipeline_hash(code: str) -> str:
    """The fingerprint of pipeline code everywhere: SHA-256 of its UTF-8, in hex.

    The job store, the audit log, provenance and OMERO write-back all use it,
    so one run can be followed across all of them.
    """
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


@dataclass
class Results:
    """Finished results: per-well and per-object tables plus where they live."""

    path: Path
    wells: pd.DataFrame
    objects: pd.DataFrame
    failed: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def zarr_path(self) -> Path:
        """The OME-Zarr plate of images and labels."""
        return self.path / ZARR_NAME

    def __repr__(self) -> str:
        return (
            f"<Results {len(self.wells)} wells, {len(self.objects)} objects, "
            f"{len(self.failed)} failed at {self.path}>"
        )


class ResultsStore:
    """Reads and writes one results directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def create(self, plan: ExecutionPlan, extra: dict[str, Any] | None = None) -> None:
        """Lay out the directory and the empty output plate for ``plan``."""
        from openhcs_nb import __version__

        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "parts").mkdir(exist_ok=True)
        (self.path / "pipeline.py").write_text(plan.pipeline_code)
        provenance = {
            "pipeline_name": plan.pipeline_name,
            "pipeline_hash": pipeline_hash(plan.pipeline_code),
            "openhcs_nb_version": __version__,
            "plate": plan.plate_ref,
            "wells": list(plan.wells),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            **(extra or {}),
        }
        (self.path / "provenance.json").write_text(json.dumps(provenance, indent=2))
        self._create_plate(plan)

    def _create_plate(self, plan: ExecutionPlan) -> None:
        import zarr
        from ome_zarr.format import FormatV04
        from ome_zarr.writer import write_plate_metadata, write_well_metadata

        fmt = FormatV04()
        root = zarr.open_group(self.path / ZARR_NAME, mode="w", zarr_format=2)
        cells = [split_well(w) for w in plan.wells]
        rows = sorted({r for r, _ in cells}, key=lambda r: (len(r), r))
        cols = sorted({c for _, c in cells})
        paths = [f"{r}/{c}" for r, c in cells]
        write_plate_metadata(
            root,
            rows,
            [str(c) for c in cols],
            paths,
            fmt=fmt,
            field_count=plan.layout.fields,
            name=f"{plan.layout.name} - {plan.pipeline_name}",
        )
        fields = [str(i) for i in range(plan.layout.fields)]
        for path in paths:
            write_well_metadata(root.require_group(path), fields, fmt=fmt)

    def write_well(
        self,
        plan: ExecutionPlan,
        state: WellState,
        objects: dict[str, np.ndarray],
        pixel_paths: dict[int, str] | None = None,
    ) -> None:
        """Write one well's images, labels and object table (run in the worker).

        Arrays are written with zarr directly and described with ome-zarr-py's
        metadata writers: its ``write_image`` goes through dask and costs ten
        times more per field for a single resolution level.
        """
        import zarr

        row, col = split_well(state.well)
        root = zarr.open_group(self.path / ZARR_NAME, mode="r+", zarr_format=2)
        well_group = root.require_group(f"{row}/{col}")
        for site, image, labels in _fields(state):
            group = well_group.require_group(str(site))
            _write_level(group, image)
            _describe(group, omero=_omero_channels(image, state.channels))
            if labels:
                parent = group.require_group("labels")
                for name, stack in labels.items():
                    _write_level(parent.require_group(name), stack)
                    _describe(parent[name], name=name)
                    _label_metadata(parent, name)
        if pixel_paths:
            record = {"well": state.well, "pixel_paths": pixel_paths}
            (self.path / "parts" / f"{state.well}.source.json").write_text(
                json.dumps(record)
            )
        frame = pd.DataFrame({"well": state.well, **objects}) if objects else None
        if frame is not None:
            frame.to_parquet(self.path / "parts" / f"{state.well}.parquet", index=False)

    def read_field(self, well: str, site: int = 0) -> dict[str, np.ndarray]:
        """Full-resolution planes of one field, as written by :meth:`write_well`.

        Names are ``image/<channel>`` (first t and z) and ``labels/<name>``.

        Raises
        ------
        PlateError
            The well or field has not been written (yet).
        """
        import zarr

        from openhcs_nb.errors import PlateError

        row, col = split_well(well)
        try:
            group = zarr.open_group(
                self.path / ZARR_NAME / row / str(col) / str(site), mode="r"
            )
            image = np.asarray(group["0"][0, :, 0])
        except (KeyError, FileNotFoundError) as exc:
            raise PlateError(f"no results for well {well} field {site} yet") from exc
        channels = group.attrs.get("omero", {}).get("channels", [])
        names = [c.get("label", f"C{i}") for i, c in enumerate(channels)]
        names += [f"C{i}" for i in range(len(names), image.shape[0])]
        out = {f"image/{names[c]}": image[c] for c in range(image.shape[0])}
        labels = group.get("labels")
        if labels is not None:
            for name in labels.attrs.get("labels", []):
                out[f"labels/{name}"] = np.asarray(labels[name]["0"][0, 0, 0])
        return out

    def finalize(self, results: Sequence[WellResult]) -> Results:
        """Write the plate-wide tables from the wells' results and load them."""
        rows = []
        failed: dict[str, WellError] = {}
        for result in sorted(results, key=lambda r: r.well):
            row_letter, column = split_well(result.well)
            base = {"well": result.well, "row": row_letter, "column": column}
            if result.error is not None:
                failed[result.well] = result.error
                rows.append({**base, "status": "failed", "error": str(result.error)})
            else:
                rows.append({**base, "status": "done", "error": None, **result.summary})
        wells = wells_frame(rows)
        wells.to_parquet(self.path / "wells.parquet", index=False)
        parts = sorted((self.path / "parts").glob("*.parquet"))
        objects = (
            pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
            if parts
            else pd.DataFrame({"well": pd.Series(dtype=str)})
        )
        objects.to_parquet(self.path / "objects.parquet", index=False)
        sources = [
            json.loads(p.read_text())
            for p in sorted((self.path / "parts").glob("*.source.json"))
        ]
        paths = {src["well"]: src["pixel_paths"] for src in sources}
        (self.path / "pixel_paths.json").write_text(json.dumps(paths, indent=1))
        failures = {w: e.__dict__ for w, e in failed.items()}
        (self.path / "failures.json").write_text(json.dumps(failures, indent=2))
        return self.load()

    def load(self) -> Results:
        """Open a finished store."""
        failures = json.loads((self.path / "failures.json").read_text())
        return Results(
            path=self.path,
            wells=pd.read_parquet(self.path / "wells.parquet"),
            objects=pd.read_parquet(self.path / "objects.parquet"),
            failed={w: f"{e['type']}: {e['message']}" for w, e in failures.items()},
            provenance=json.loads((self.path / "provenance.json").read_text()),
        )


def wells_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The per-well table with a fixed column order: ids, status, then numbers."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["well", "row", "column", "status", "error"])
    first = ["well", "row", "column", "status", "count"]
    ordered = [c for c in first if c in frame] + sorted(
        c for c in frame if c not in first and c != "error"
    )
    frame = frame[[*ordered, "error"]]
    if "count" in frame:
        frame["count"] = frame["count"].astype("Int64")
    return frame.reset_index(drop=True)


def _write_level(group: Any, data: np.ndarray) -> None:
    from numcodecs import Blosc

    group.create_array(
        "0",
        data=data,
        chunks=(1, 1, 1, *data.shape[-2:]),
        compressors=Blosc("lz4", 5, Blosc.BITSHUFFLE),
        overwrite=True,
    )


def _describe(group: Any, name: str | None = None, omero: dict | None = None) -> None:
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    scale = [{"type": "scale", "scale": [1.0] * 5}]
    extra: dict[str, Any] = {"metadata": {"omero": omero}} if omero else {}
    write_multiscales_metadata(
        group,
        [{"path": "0", "coordinateTransformations": scale}],
        fmt=FormatV04(),
        axes="tczyx",
        name=name,
        **extra,
    )


def _label_metadata(labels_group: Any, name: str) -> None:
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_label_metadata

    write_label_metadata(labels_group, name, fmt=FormatV04())


def _fields(state: WellState) -> list[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
    sites = sorted({k[0] for k in state.images})
    n_t = 1 + max(k[1] for k in state.images)
    n_c = 1 + max(k[2] for k in state.images)
    n_z = 1 + max(k[3] for k in state.images)
    out = []
    for site in sites:
        planes = [p for k, p in state.images.items() if k[0] == site]
        first = planes[0]
        dtype = np.result_type(*{p.dtype for p in planes})
        image = np.zeros((n_t, n_c, n_z, *first.shape), dtype=dtype)
        for (s, t, c, z), plane in state.images.items():
            if s == site:
                image[t, c, z] = plane
        labels = {}
        for name, planes in state.labels.items():
            stack = np.zeros((n_t, 1, n_z, *first.shape), dtype=np.int32)
            for (s, t, z), plane in planes.items():
                if s == site:
                    stack[t, 0, z] = plane
            labels[name] = stack
        out.append((site, image, labels))
    return out


def _omero_channels(image: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Channel names, colours and display windows so viewers open it sensibly."""
    colours = ["0000FF", "00FF00", "FF0000", "FF00FF", "FFFF00", "00FFFF"]
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        full = (float(info.min), float(info.max))
    else:
        full = (float(image.min()), float(image.max()))
    channels = []
    for i, name in enumerate(names):
        plane = image[:, i]
        window = {
            "min": full[0],
            "max": full[1],
            "start": float(plane.min()),
            "end": float(plane.max()),
        }
        channels.append(
            {
                "label": name,
                "color": colours[i % len(colours)],
                "active": True,
                "window": window,
            }
        )
    return {"channels": channels}
