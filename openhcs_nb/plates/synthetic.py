"""Synthetic plates with planted ground truth, for demos, tests and benchmarks.

Each field shows nuclei (channel 0: bright soft ellipses), a cytoplasm-like
signal around each (channel 1: dimmer, larger, brighter from column to column)
and, when more channels are asked for, a cell-body signal that rises from row
to row. Nuclei per field rise linearly across columns from ``min_nuclei`` to
``max_nuclei``, like a dose-response. A fraction of nuclei come as touching
pairs; all others keep clear of each other. Background, uneven illumination
and Gaussian noise are added on top.

That is the ``"simple"`` style, drawn so a classical pipeline is exact. The
``"realistic"`` style (:mod:`._realism`) plants irregular, textured nuclei in
clumps, cell bodies that partition the field, density up to confluence,
per-channel uneven illumination, defocused fields, debris, saturation and shot
noise, and saves per-object truth masks (:mod:`._truth_masks`).

Every field draws from its own generator seeded by ``(seed, row, column,
field)``, so the bytes depend only on the spec, never on the order of work.
The planted truth is written next to the plate (``<plate>.truth.json`` beside
an OME-Zarr store, ``ground_truth.json`` inside an ImageXpress folder).
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from openhcs_nb.errors import PlateError, UnknownWellError
from openhcs_nb.plates._draw import illumination, place_nuclei, render_simple
from openhcs_nb.plates._realism import (
    Optics,
    defocus,
    expose,
    plate_optics,
    render_realistic,
)
from openhcs_nb.plates._synthetic_write import ImageXpressWriter, OmeZarrWriter
from openhcs_nb.plates._truth_masks import load_truth_masks, masks_dir, save_well_masks
from openhcs_nb.plates.model import row_letters, split_well, well_name

TRUTH_VERSION = 1
_BACKGROUND = 150.0  # 12-bit camera units, like every intensity here
_NUCLEUS_PEAK = 2200.0
_CYTO_LEVELS = (250.0, 1100.0)  # first to last column
_EXTRA_LEVELS = (200.0, 800.0)  # first to last row
_UNITS = {"uint8": 255.0 / 4095.0, "uint16": 1.0, "float32": 1.0 / 4095.0}
STYLES = ("simple", "realistic")
__all__ = [
    "FieldTruth",
    "GroundTruth",
    "SyntheticPlateSpec",
    "channel_levels",
    "generate_plate",
    "load_ground_truth",
    "load_truth_masks",
    "plate_light",
    "render_field",
    "render_field_with_masks",
    "truth_path",
]


@dataclass(frozen=True)
class SyntheticPlateSpec:
    """Everything that determines a synthetic plate, byte for byte.

    The fields after ``name`` only act in the ``"realistic"`` style:
    ``clump_fraction`` of the nuclei come in clumps of three to five,
    ``confluence`` is the chance that a single nucleus touches another in the
    last column (rising from 0 in the first, quadratically), ``out_of_focus``
    the chance that a field is defocused, ``debris`` the mean number of specks
    per field (a fifth as many large blobs), ``saturated`` the fraction of
    nuclei bright enough to clip. ``touching_fraction`` only acts in the
    simple style.

    Raises
    ------
    ValueError
        A value is out of range (the message lists every one that is).
    """

    rows: int = 2
    columns: int = 3
    fields: int = 1
    channels: tuple[str, ...] = ("DAPI", "Cytoplasm")
    shape: tuple[int, int] = (256, 256)
    dtype: str = "uint16"
    seed: int = 0
    min_nuclei: int = 10
    max_nuclei: int = 40
    radius: tuple[float, float] = (6.0, 10.0)
    touching_fraction: float = 0.2
    noise: float = 20.0
    illumination: float = 0.3
    z: int = 1
    t: int = 1
    name: str = "synthetic"
    style: str = "simple"
    clump_fraction: float = 0.25
    confluence: float = 1.0
    out_of_focus: float = 0.05
    debris: float = 4.0
    saturated: float = 0.01

    def __post_init__(self) -> None:
        checks = {
            "rows must be 1..32": 1 <= self.rows <= 32,
            "columns must be 1..48": 1 <= self.columns <= 48,
            "fields, z and t must be >= 1": min(self.fields, self.z, self.t) >= 1,
            "channels must be unique, non-empty names": bool(self.channels)
            and len(set(self.channels)) == len(self.channels)
            and all(self.channels),
            "shape must be two sizes >= 16": len(self.shape) == 2
            and min(self.shape) >= 16,
            f"dtype must be one of {sorted(_UNITS)}": self.dtype in _UNITS,
            "need 0 <= min_nuclei <= max_nuclei": 0
            <= self.min_nuclei
            <= self.max_nuclei,
            "radius must be (low, high) with 0 < low <= high": len(self.radius) == 2
            and 0 < self.radius[0] <= self.radius[1],
            "touching_fraction must be in [0, 1]": 0 <= self.touching_fraction <= 1,
            "noise must be >= 0": self.noise >= 0,
            "illumination must be in [0, 1)": 0 <= self.illumination < 1,
            "seed must be >= 0": self.seed >= 0,
            f"style must be one of {STYLES}": self.style in STYLES,
            "clump_fraction, confluence, out_of_focus, saturated: 0..1": all(
                0 <= v <= 1
                for v in (
                    self.clump_fraction,
                    self.confluence,
                    self.out_of_focus,
                    self.saturated,
                )
            ),
            "debris must be >= 0": self.debris >= 0,
        }
        failed = [text for text, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid SyntheticPlateSpec: {'; '.join(failed)}")

    @property
    def row_names(self) -> tuple[str, ...]:
        """Row letters, ``("A", "B", ...)``."""
        return tuple(row_letters(i) for i in range(self.rows))

    @property
    def wells(self) -> tuple[str, ...]:
        """Every well, row-major."""
        return tuple(
            well_name(r, c + 1) for r in self.row_names for c in range(self.columns)
        )

    def nuclei_per_field(self, column: int) -> int:
        """Nuclei asked for in each field of a column (1-based), a linear ramp."""
        return round(_lerp(self.min_nuclei, self.max_nuclei, column - 1, self.columns))


def _lerp(low: float, high: float, index: int, count: int) -> float:
    return low if count <= 1 else low + (high - low) * index / (count - 1)


@dataclass(frozen=True)
class FieldTruth:
    """What was planted in one field.

    ``nuclei`` holds ``(y, x, mean radius, group)`` per nucleus, in label order
    (nucleus ``i`` has label ``i + 1`` in the truth masks); ``group`` is -1 for
    a nucleus on its own and the same number for every member of a touching
    pair (simple style) or clump (realistic style); ``touching_pairs`` counts
    those groups. ``saturated`` lists the labels of nuclei planted to clip
    (a nucleus overlapping one of them may clip where they overlap).
    """

    count: int
    touching_pairs: int
    nuclei: tuple[tuple[float, float, float, int], ...] = field(repr=False)
    out_of_focus: bool = False
    debris: int = 0
    saturated: tuple[int, ...] = ()


@dataclass(frozen=True)
class GroundTruth:
    """The planted truth of a whole plate."""

    spec: SyntheticPlateSpec
    fields: dict[str, tuple[FieldTruth, ...]]
    levels: dict[str, tuple[float, ...]]  # well -> planted level per channel

    def count(self, well: str) -> int:
        """Nuclei planted in all fields of ``well``.

        Raises
        ------
        UnknownWellError
            ``well`` is not a well name or not on this plate.
        """
        name = well_name(*split_well(well))
        if name not in self.fields:
            raise UnknownWellError(
                f"synthetic plate {self.spec.name!r} has no well {well!r}"
            )
        return sum(f.count for f in self.fields[name])

    def counts(self) -> dict[str, int]:
        """Nuclei planted per well, for every well."""
        return {w: self.count(w) for w in self.fields}

    def to_json(self) -> str:
        """Stable JSON (sorted keys, rounded floats): same truth, same bytes."""
        doc = {
            "version": TRUTH_VERSION,
            "spec": asdict(self.spec),
            "wells": {
                w: {
                    "levels": list(self.levels[w]),
                    "fields": [
                        {
                            "count": f.count,
                            "touching_pairs": f.touching_pairs,
                            "nuclei": [list(n) for n in f.nuclei],
                            "out_of_focus": f.out_of_focus,
                            "debris": f.debris,
                            "saturated": list(f.saturated),
                        }
                        for f in fs
                    ],
                }
                for w, fs in self.fields.items()
            },
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        """Inverse of :meth:`to_json`.

        Raises
        ------
        PlateError
            The text is not ground truth of a version this code reads.
        """
        try:
            doc = json.loads(text)
            if doc.get("version") != TRUTH_VERSION:
                raise ValueError(f"version {doc.get('version')!r} != {TRUTH_VERSION}")
            raw = doc["spec"]
            spec = SyntheticPlateSpec(
                **{
                    f.name: tuple(raw[f.name])
                    if isinstance(raw[f.name], list)
                    else raw[f.name]
                    for f in dataclasses.fields(SyntheticPlateSpec)
                    if f.name in raw  # older truth lacks the realistic fields
                }
            )
            wells = doc["wells"]
            truth = {
                w: tuple(
                    FieldTruth(
                        f["count"],
                        f["touching_pairs"],
                        tuple((y, x, r, int(p)) for y, x, r, p in f["nuclei"]),
                        bool(f.get("out_of_focus", False)),
                        int(f.get("debris", 0)),
                        tuple(int(i) for i in f.get("saturated", ())),
                    )
                    for f in entry["fields"]
                )
                for w, entry in wells.items()
            }
            levels = {w: tuple(entry["levels"]) for w, entry in wells.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PlateError(f"not readable ground truth: {exc}") from exc
        return cls(spec, truth, levels)


def channel_levels(
    spec: SyntheticPlateSpec, row: int, column: int
) -> tuple[float, ...]:
    """Planted peak level per channel (12-bit units) for a well (0-based)."""
    levels = [_NUCLEUS_PEAK * (0.75 if spec.style == "realistic" else 1.0)]  # headroom
    if len(spec.channels) > 1:
        levels.append(_lerp(*_CYTO_LEVELS, column, spec.columns))
    levels += [_lerp(*_EXTRA_LEVELS, row, spec.rows)] * (len(spec.channels) - 2)
    return tuple(round(v, 3) for v in levels)


def plate_light(spec: SyntheticPlateSpec) -> np.ndarray | Optics:
    """What every field of ``spec`` shares, as :func:`render_field` takes it."""
    if spec.style == "realistic":
        return plate_optics(spec)
    return illumination(spec.shape, spec.illumination)


def render_field(
    spec: SyntheticPlateSpec,
    row: int,
    column: int,
    site: int,
    light: np.ndarray | Optics,
) -> tuple[np.ndarray, FieldTruth]:
    """One field ``(t, c, z, y, x)`` in ``spec.dtype``, and what it holds.

    ``row``, ``column`` and ``site`` count from 0; ``light`` is the shared
    illumination field (:func:`plate_light`).
    """
    if isinstance(light, Optics):
        image, truth, _ = render_field_with_masks(spec, row, column, site, light)
        return image, truth
    rng = np.random.default_rng([spec.seed, row, column, site])
    nuclei = place_nuclei(
        rng,
        spec.shape,
        spec.nuclei_per_field(column + 1),
        spec.radius,
        spec.touching_fraction,
    )
    levels = channel_levels(spec, row, column)
    out = render_simple(
        rng,
        nuclei,
        levels,
        (spec.z, spec.t),
        light,
        (_BACKGROUND, spec.noise, _UNITS[spec.dtype]),
        spec.dtype,
    )
    pairs = len({n.pair for n in nuclei if n.pair >= 0})
    truth = FieldTruth(
        count=len(nuclei),
        touching_pairs=pairs,
        nuclei=tuple(
            (round(n.y, 3), round(n.x, 3), round(n.radius, 3), n.pair) for n in nuclei
        ),
    )
    return out, truth


def render_field_with_masks(
    spec: SyntheticPlateSpec, row: int, column: int, site: int, optics: Optics
) -> tuple[np.ndarray, FieldTruth, dict[str, np.ndarray]]:
    """A realistic-style field, its truth and its label images.

    The labels are ``nuclei``, ``cells`` and ``debris``, each ``(y, x)`` int32.
    """
    rng = np.random.default_rng([spec.seed, row, column, site])
    levels = channel_levels(spec, row, column)
    blur = defocus(spec, row, column, site)
    drawn = render_realistic(spec, rng, column, levels, optics, blur)
    unit = _UNITS[spec.dtype]
    out = np.empty((spec.t, *drawn.signal.shape), dtype=spec.dtype)
    for t in range(spec.t):
        out[t] = expose(
            rng, drawn.signal, optics.light, _BACKGROUND, spec.noise, unit, spec.dtype
        )
    truth = FieldTruth(
        count=len(drawn.nuclei),
        touching_pairs=len({n.group for n in drawn.nuclei if n.group >= 0}),
        nuclei=tuple(
            (round(n.y, 3), round(n.x, 3), round(n.radius, 3), n.group)
            for n in drawn.nuclei
        ),
        out_of_focus=drawn.out_of_focus,
        debris=drawn.debris,
        saturated=drawn.saturated,
    )
    masks = {
        "nuclei": drawn.nuclei_labels,
        "cells": drawn.cell_labels,
        "debris": drawn.debris_labels,
    }
    return out, truth, masks


def truth_path(path: Path, plate_format: str) -> Path:
    """Where the ground truth of a plate at ``path`` is written."""
    if plate_format == "imagexpress":
        return path / "ground_truth.json"
    return path.with_name(path.name + ".truth.json")


def generate_plate(
    spec: SyntheticPlateSpec,
    path: Path,
    format: Literal["ome-zarr", "imagexpress"] = "ome-zarr",
    ome_zarr_version: Literal["0.4", "0.5"] = "0.4",
    workers: int = 2,
) -> GroundTruth:
    """Write the plate described by ``spec`` at ``path``; return its truth.

    A realistic-style plate also gets its truth masks (:func:`load_truth_masks`).

    Wells are rendered and written by ``workers`` threads (numpy, compression
    and file writes release the GIL); the bytes do not depend on it.

    Raises
    ------
    FileExistsError
        Something already exists at ``path``.
    ValueError
        Unknown ``format`` or ``ome_zarr_version``.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"will not overwrite {path}")
    common = {
        "name": spec.name,
        "rows": spec.row_names,
        "columns": tuple(range(1, spec.columns + 1)),
        "channels": spec.channels,
        "fields": spec.fields,
    }
    writer: OmeZarrWriter | ImageXpressWriter
    if format == "ome-zarr":
        white = 4095.0 * _UNITS[spec.dtype]
        writer = OmeZarrWriter(path, **common, white=white, version=ome_zarr_version)
    elif format == "imagexpress":
        writer = ImageXpressWriter(path, **common, z=spec.z, t=spec.t)
    else:
        raise ValueError(f"format must be 'ome-zarr' or 'imagexpress', not {format!r}")
    light = plate_light(spec)
    folder = masks_dir(path, format)

    def make_well(position: tuple[int, int]) -> tuple[FieldTruth, ...]:
        r, c = position
        if not isinstance(light, Optics):
            rendered = [render_field(spec, r, c, s, light) for s in range(spec.fields)]
            writer.write_well(
                spec.row_names[r], c + 1, np.stack([i for i, _ in rendered])
            )
            return tuple(t for _, t in rendered)
        full = [
            render_field_with_masks(spec, r, c, s, light) for s in range(spec.fields)
        ]
        writer.write_well(spec.row_names[r], c + 1, np.stack([f[0] for f in full]))
        stacks = {k: np.stack([f[2][k] for f in full]) for k in full[0][2]}
        save_well_masks(folder, well_name(spec.row_names[r], c + 1), stacks)
        return tuple(f[1] for f in full)

    positions = [(r, c) for r in range(spec.rows) for c in range(spec.columns)]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        per_well = list(pool.map(make_well, positions))
    truth = {
        well_name(spec.row_names[r], c + 1): t
        for (r, c), t in zip(positions, per_well, strict=True)
    }
    levels = {
        well_name(spec.row_names[r], c + 1): channel_levels(spec, r, c)
        for r, c in positions
    }
    result = GroundTruth(spec, truth, levels)
    truth_path(path, format).write_text(result.to_json(), encoding="utf-8")
    return result


def load_ground_truth(path: Path) -> GroundTruth:
    """The ground truth written by :func:`generate_plate` for the plate at ``path``.

    Raises
    ------
    PlateError
        No ground truth file belongs to ``path``, or it is not readable.
    """
    path = Path(path)
    for candidate in (truth_path(path, "ome-zarr"), truth_path(path, "imagexpress")):
        if candidate.is_file():
            return GroundTruth.from_json(candidate.read_text(encoding="utf-8"))
    raise PlateError(f"no ground truth for {path} (looked for {path.name}.truth.json)")
