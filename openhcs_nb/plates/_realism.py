"""The realistic style of synthetic field: cells, clumps, optics and camera.

One field is composed in this order, every step drawn from the field's own
generator: nuclei (placement and drawing in :mod:`._draw_cells`), a few nuclei
made bright enough to saturate, chromatin texture, debris in the nuclear
channel (small bright specks and a few large irregular blobs), cell bodies in
the other channels (brighter near the nucleus, dimmer at the membrane, one
brightness per cell), whole-field defocus for a few fields, then background,
the plate's illumination per channel, shot plus read noise, and clipping at
the 12-bit camera's full scale.

Illumination (vignetting plus a tilt, different per channel) and the two
texture tiles depend only on the plate spec, so a plate-level flat-field fit
can recover the illumination; each field uses the tiles at its own random
offset instead of filtering fresh noise, which keeps a 1024² field cheap.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from openhcs_nb.plates._draw_cells import (
    ROUGH_MAX,
    Blob,
    draw_blobs,
    draw_cells,
    make_blob,
)
from openhcs_nb.plates._draw_cells import place_nuclei as place_realistic

if TYPE_CHECKING:
    from openhcs_nb.plates.synthetic import SyntheticPlateSpec

FULL_SCALE = 4095.0  # the 12-bit camera saturates here (camera units)
GAIN = 1.0  # camera units per photo-electron, for shot noise
SATURATING = 4.0  # brightness factor of the nuclei planted to saturate
_CELL_REACH = (0.9, 2.0)  # cell extent beyond the nucleus, in nucleus radii


@dataclass(frozen=True)
class Optics:
    """What every field of a plate shares: illumination and texture tiles."""

    light: np.ndarray  # (c, y, x) multiplicative illumination per channel
    fine: np.ndarray  # (y, x) zero-mean unit texture, grain about 1.5 px
    coarse: np.ndarray  # (y, x) zero-mean unit texture, grain about 12 px


@dataclass(frozen=True)
class RealisticField:
    """One rendered field and everything planted in it."""

    signal: np.ndarray  # (c, z, y, x) float32 camera units, before noise
    nuclei: list[Blob]
    nuclei_labels: np.ndarray  # (y, x) int32, nucleus i has label i + 1
    cell_labels: np.ndarray  # (y, x) int32, same ids as the nuclei
    debris_labels: np.ndarray  # (y, x) int32, 1..n_debris
    debris: int  # pieces planted (the tiniest specks may own no pixel)
    out_of_focus: bool
    saturated: tuple[int, ...]  # labels of nuclei planted to saturate


def channel_light(shape: tuple[int, int], strength: float, channel: int) -> np.ndarray:
    """Vignetting (``1 - strength`` in the corners) and a tilt, per channel.

    The vignette centre and the tilt direction turn with the channel index, as
    they differ between filter cubes; nothing here is random.
    """
    turn = 0.6 + 2.1 * channel
    cy, cx = 0.15 * math.sin(turn), 0.15 * math.cos(turn)
    yy = np.linspace(-1.0, 1.0, shape[0], dtype=np.float32)[:, None]
    xx = np.linspace(-1.0, 1.0, shape[1], dtype=np.float32)[None, :]
    vignette = 1.0 - strength * ((yy - cy) ** 2 + (xx - cx) ** 2) / 2.6
    tilt = 1.0 + strength / 3.0 * (xx * math.cos(turn) + yy * math.sin(turn))
    return np.clip(vignette * tilt, 0.05, None).astype(np.float32)


def _tile(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    noise -= noise.mean()
    noise /= max(float(noise.std()), 1e-6)
    return noise


def plate_optics(spec: SyntheticPlateSpec) -> Optics:
    """The illumination and texture tiles shared by every field of ``spec``."""
    rng = np.random.default_rng([spec.seed, 0xC0FFEE])
    light = np.stack(
        [
            channel_light(spec.shape, spec.illumination, c)
            for c in range(len(spec.channels))
        ]
    )
    return Optics(light, _tile(rng, spec.shape, 1.5), _tile(rng, spec.shape, 12.0))


def defocus(spec: SyntheticPlateSpec, row: int, column: int, site: int) -> float:
    """The Gaussian sigma (px) of a defocused field, else 0.

    Drawn from a generator of its own, so which fields are out of focus can be
    listed without rendering them and does not shift the rest of the field.
    """
    rng = np.random.default_rng([spec.seed, row, column, site, 1])
    low, high = rng.random(), rng.uniform(2.5, 4.0)
    return float(high) if low < spec.out_of_focus else 0.0


def _shifted(tile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``tile`` rolled by a random offset, so fields do not share texture."""
    dy, dx = (int(rng.integers(n)) for n in tile.shape)
    return np.roll(tile, (dy, dx), axis=(0, 1))


def _debris(
    rng: np.random.Generator, shape: tuple[int, int], mean_specks: float
) -> list[Blob]:
    """Small bright specks and, less often, large irregular blobs."""
    out = []
    for _ in range(int(rng.poisson(mean_specks))):
        y, x = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        speck = make_blob(rng, y, x, rng.uniform(0.8, 2.0), 0.3, 0.05)
        out.append(_rebright(speck, rng.uniform(1.2, 2.5)))
    for _ in range(int(rng.poisson(mean_specks / 5))):
        y, x = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        big = make_blob(rng, y, x, rng.uniform(14.0, 28.0), 0.5, 0.5)
        out.append(_rebright(big, rng.uniform(0.2, 0.5)))
    return out


def _soften(plane: np.ndarray) -> None:
    """A 2x2 box blur in place: a little optics over the 2 px cell outlines."""
    plane[1:] += plane[:-1]
    plane[0] *= 2.0  # the edge repeats itself
    plane[:, 1:] += plane[:, :-1]
    plane[:, 0] *= 2.0
    plane *= np.float32(0.25)


def _rebright(blob: Blob, brightness: float) -> Blob:
    return dataclasses.replace(blob, brightness=brightness)


def render_realistic(
    spec: SyntheticPlateSpec,
    rng: np.random.Generator,
    column: int,
    levels: tuple[float, ...],
    optics: Optics,
    blur: float,
) -> RealisticField:
    """Compose one field's signal (no noise yet) and its truth; see the module.

    ``blur`` is the field's defocus (:func:`defocus`), 0 when in focus.
    """
    shape = spec.shape
    last = max(spec.columns - 1, 1)
    touch = spec.confluence * (column / last) ** 2
    nuclei = place_realistic(
        rng,
        shape,
        spec.nuclei_per_field(column + 1),
        spec.radius,
        spec.clump_fraction,
        touch,
    )
    n_bright = int(rng.binomial(len(nuclei), spec.saturated)) if nuclei else 0
    picks = rng.choice(len(nuclei), size=n_bright, replace=False) if n_bright else []
    saturated = tuple(sorted(int(i) + 1 for i in picks))
    for i in saturated:  # bright enough to clip even in a dim corner
        n = nuclei[i - 1]
        lit = levels[0] * float(optics.light[0, int(n.y), int(n.x)])
        nuclei[i - 1] = _rebright(
            n, max(SATURATING * n.brightness, 1.5 * FULL_SCALE / lit)
        )
    channels = len(spec.channels)
    plane = np.zeros((channels, *shape), dtype=np.float32)
    nuclei_labels = np.zeros(shape, dtype=np.int32)
    draw_blobs(plane[0], nuclei_labels, nuclei, levels[0], edge=0.9)
    plane[0] *= 1.0 + 0.22 * _shifted(optics.fine, rng)
    debris = _debris(rng, shape, spec.debris)
    debris_labels = np.zeros(shape, dtype=np.int32)
    draw_blobs(plane[0], debris_labels, debris, levels[0], edge=1.2, dome=0.0)
    if channels > 1:
        radii = np.array([n.radius for n in nuclei], dtype=np.float32)
        spread = rng.uniform(*_CELL_REACH, size=len(nuclei)).astype(np.float32)
        reach = radii * spread * np.float32(1.0 + 0.5 * touch)  # crowded: reach out
        rough = np.clip(1.0 + 0.3 * _shifted(optics.coarse, rng), 0.4, ROUGH_MAX)
        cell_labels, depth = draw_cells(nuclei_labels, nuclei, reach, rough)
        profile = np.where(cell_labels > 0, 1.0 - 0.6 * depth, 0.0).astype(np.float32)
        profile *= 1.0 + 0.18 * _shifted(optics.fine, rng)
        for c in range(1, channels):
            per_cell = np.ones(len(nuclei) + 1, dtype=np.float32)
            per_cell[1:] = np.clip(rng.lognormal(0.0, 0.3, size=len(nuclei)), 0.4, 2.2)
            plane[c] = per_cell[cell_labels] * profile
            plane[c] *= np.float32(levels[c])
            _soften(plane[c])
    else:
        cell_labels = nuclei_labels.copy()
    out_of_focus = blur > 0
    signal = np.empty((channels, spec.z, *shape), dtype=np.float32)
    for z in range(spec.z):
        sigma = math.hypot(blur, 1.5 * abs(z - (spec.z - 1) / 2))
        for c in range(channels):
            signal[c, z] = ndi.gaussian_filter(plane[c], sigma) if sigma else plane[c]
    return RealisticField(
        signal,
        nuclei,
        nuclei_labels,
        cell_labels,
        debris_labels,
        len(debris),
        out_of_focus,
        saturated,
    )


def expose(
    rng: np.random.Generator,
    signal: np.ndarray,
    light: np.ndarray,
    background: float,
    read_noise: float,
    unit: float,
    dtype: str,
) -> np.ndarray:
    """Illuminate, add shot and read noise, clip at full scale, convert.

    Shot noise is Gaussian with variance ``GAIN * signal`` (Poisson at these
    counts), read noise Gaussian with sd ``read_noise``; both in camera units.
    """
    lit = (signal + np.float32(background)) * light[:, None]
    noisy = rng.standard_normal(lit.shape, dtype=np.float32)
    noisy *= np.sqrt(np.float32(GAIN) * lit + np.float32(read_noise**2))
    noisy += lit
    np.clip(noisy, 0.0, FULL_SCALE, out=noisy)
    if unit != 1.0:
        noisy *= np.float32(unit)
    if dtype != "float32":
        np.rint(noisy, out=noisy)
    return noisy.astype(dtype)
