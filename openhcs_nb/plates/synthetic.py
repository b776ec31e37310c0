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

The spec (:mod:`._synthetic_spec`) and the truth records
(:mod:`._synthetic_truth`) live in their own modules; this one renders and
writes, and re-exports their public names.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Literal

import numpy as np

from openhcs_nb.plates._draw import illumination, place_nuclei, render_simple
from openhcs_nb.plates._realism import (
    Optics,
    defocus,
    expose,
    plate_optics,
    render_realistic,
)
from openhcs_nb.plates._synthetic_spec import STYLES, UNITS, SyntheticPlateSpec, lerp
from openhcs_nb.plates._synthetic_truth import (
    TRUTH_VERSION,
    FieldTruth,
    GroundTruth,
    load_ground_truth,
    truth_path,
)
from openhcs_nb.plates._synthetic_write import ImageXpressWriter, OmeZarrWriter
from openhcs_nb.plates._truth_masks import load_truth_masks, masks_dir, save_well_masks
from openhcs_nb.plates.model import well_name

_BACKGROUND = 150.0  # 12-bit camera units, like every intensity here
_NUCLEUS_PEAK = 2200.0
_CYTO_LEVELS = (250.0, 1100.0)  # first to last column
_EXTRA_LEVELS = (200.0, 800.0)  # first to last row
__all__ = [
    "STYLES",
    "TRUTH_VERSION",
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


def channel_levels(
    spec: SyntheticPlateSpec, row: int, column: int
) -> tuple[float, ...]:
    """Planted peak level per channel (12-bit units) for a well (0-based)."""
    levels = [_NUCLEUS_PEAK * (0.75 if spec.style == "realistic" else 1.0)]  # headroom
    if len(spec.channels) > 1:
        levels.append(lerp(*_CYTO_LEVELS, column, spec.columns))
    levels += [lerp(*_EXTRA_LEVELS, row, spec.rows)] * (len(spec.channels) - 2)
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
        (_BACKGROUND, spec.noise, UNITS[spec.dtype]),
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
    unit = UNITS[spec.dtype]
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


def generate_plate(
    spec: SyntheticPlateSpec,
    path: Path,
    format: Literal["ome-zarr", "imagexpress"] = "ome-zarr",
    ome_zarr_version: Literal["0.4", "0.5"] = "0.4",
    workers: int = 2,
    on_well: Callable[[str], None] | None = None,
) -> GroundTruth:
    """Write the plate described by ``spec`` at ``path``; return its truth.

    A realistic-style plate also gets its truth masks (:func:`load_truth_masks`).

    Wells are rendered and written by ``workers`` threads (numpy, compression
    and file writes release the GIL); the bytes do not depend on it.
    ``on_well`` gets each well's name once it is written, in this thread, so a
    long generation can show how far along it is.

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
        white = 4095.0 * UNITS[spec.dtype]
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
    names = {(r, c): well_name(spec.row_names[r], c + 1) for r, c in positions}
    done: dict[str, tuple[FieldTruth, ...]] = {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        futures = {pool.submit(make_well, p): names[p] for p in positions}
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            if on_well is not None:
                on_well(futures[future])
    truth = {name: done[name] for name in names.values()}  # row-major, as before
    levels = {
        well_name(spec.row_names[r], c + 1): channel_levels(spec, r, c)
        for r, c in positions
    }
    result = GroundTruth(spec, truth, levels)
    truth_path(path, format).write_text(result.to_json(), encoding="utf-8")
    return result
