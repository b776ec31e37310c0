"""Placing and drawing synthetic nuclei for one field of view.

Placement is rejection sampling on bounding circles: single nuclei never touch
(a gap of a few pixels stays between them, blur included), while a touching
pair is two round nuclei whose centres are 1.6-1.8 mean radii apart, so their
union has a waist that a distance-transform watershed can cut. Every object
lies fully inside the field, so the planted count is what a perfect
segmentation finds.

Drawing touches only each object's bounding box and combines objects with a
maximum, so a pair's overlap is not brighter than either nucleus. All
intensities are in 12-bit camera units; the caller scales them to the dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GAP = 4.0  # px kept free between objects that must not touch
PAIR_SPACING = (1.6, 1.8)  # centre distance / mean radius for touching pairs
_MAX_TRIES = 200


@dataclass(frozen=True)
class Nucleus:
    """One planted nucleus: centre, semi-axes, orientation and brightness."""

    y: float
    x: float
    a: float
    b: float
    angle: float
    brightness: float
    pair: int  # -1 for single nuclei, else the index of its touching pair

    @property
    def radius(self) -> float:
        """The mean radius, ``sqrt(a * b)``."""
        return float(np.sqrt(self.a * self.b))


def place_nuclei(
    rng: np.random.Generator,
    shape: tuple[int, int],
    count: int,
    radius: tuple[float, float],
    touching_fraction: float,
    elongation: float = 0.2,
) -> list[Nucleus]:
    """Up to ``count`` nuclei; fewer only when the field is too full to fit them."""
    n_pairs = round(count * touching_fraction / 2)
    placed: list[Nucleus] = []
    centres = np.empty((0, 2))
    extents = np.empty(0)

    def fits(cy: float, cx: float, extent: float) -> bool:
        margin = extent + GAP / 2
        if not (
            margin <= cy <= shape[0] - margin and margin <= cx <= shape[1] - margin
        ):
            return False
        dist = np.hypot(centres[:, 0] - cy, centres[:, 1] - cx)
        return bool(np.all(dist > extents + extent + GAP))

    for pair in range(n_pairs):
        for _ in range(_MAX_TRIES):
            r1, r2 = rng.uniform(*radius, size=2)
            spacing = rng.uniform(*PAIR_SPACING) * (r1 + r2) / 2
            theta = rng.uniform(0, np.pi)
            cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
            extent = spacing / 2 + max(r1, r2)
            if fits(cy, cx, extent):
                dy, dx = np.sin(theta) * spacing / 2, np.cos(theta) * spacing / 2
                bright = rng.uniform(0.8, 1.2, size=2)
                placed.append(Nucleus(cy - dy, cx - dx, r1, r1, 0.0, bright[0], pair))
                placed.append(Nucleus(cy + dy, cx + dx, r2, r2, 0.0, bright[1], pair))
                centres = np.vstack([centres, [cy, cx]])
                extents = np.append(extents, extent)
                break
    for _ in range(count - len(placed)):
        for _ in range(_MAX_TRIES):
            r = rng.uniform(*radius)
            e = rng.uniform(0, elongation)
            a, b = r * (1 + e), r / (1 + e)
            cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
            if fits(cy, cx, a):
                angle = rng.uniform(0, np.pi)
                placed.append(Nucleus(cy, cx, a, b, angle, rng.uniform(0.8, 1.2), -1))
                centres = np.vstack([centres, [cy, cx]])
                extents = np.append(extents, a)
                break
    return placed


def draw_objects(
    canvas: np.ndarray,
    nuclei: list[Nucleus],
    scale: float,
    peak: float | np.ndarray,
    edge: float,
    dome: float = 0.2,
) -> None:
    """Draw each nucleus, grown by ``scale``, into ``canvas`` (max-combined).

    ``peak`` is the brightness of every object (or one per object), ``edge``
    the width in pixels of the soft rim and ``dome`` how much dimmer the rim
    is than the centre.
    """
    peaks = np.broadcast_to(np.asarray(peak, dtype=np.float32), (len(nuclei),))
    height, width = canvas.shape
    for nucleus, top in zip(nuclei, peaks, strict=True):
        a, b = nucleus.a * scale, nucleus.b * scale
        reach = a + 4 * edge + 1
        y0, y1 = max(int(nucleus.y - reach), 0), min(int(nucleus.y + reach) + 2, height)
        x0, x1 = max(int(nucleus.x - reach), 0), min(int(nucleus.x + reach) + 2, width)
        if y0 >= y1 or x0 >= x1:
            continue
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - nucleus.y
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - nucleus.x
        cos, sin = np.cos(nucleus.angle), np.sin(nucleus.angle)
        u = (dx * cos + dy * sin) / a
        v = (dy * cos - dx * sin) / b
        rho = np.sqrt(u * u + v * v)
        mean_r = float(np.sqrt(a * b))
        rim = 1.0 / (1.0 + np.exp(np.clip((rho - 1.0) * mean_r / edge, -30, 30)))
        value = (
            top * nucleus.brightness * rim * (1.0 - dome * np.minimum(rho, 1.0) ** 2)
        )
        box = canvas[y0:y1, x0:x1]
        np.maximum(box, value.astype(np.float32), out=box)


def illumination(shape: tuple[int, int], strength: float) -> np.ndarray:
    """A smooth multiplicative field: vignetting plus a left-right gradient.

    1 in the centre, ``1 - strength`` in the corners, tilted by
    ``strength / 4`` from left to right, as uneven widefield illumination is.
    """
    yy = np.linspace(-1.0, 1.0, shape[0], dtype=np.float32)[:, None]
    xx = np.linspace(-1.0, 1.0, shape[1], dtype=np.float32)[None, :]
    vignette = 1.0 - strength * (yy * yy + xx * xx) / 2.0
    tilt = 1.0 + strength / 8.0 * xx
    return (vignette * tilt).astype(np.float32)


def render_simple(
    rng: np.random.Generator,
    nuclei: list[Nucleus],
    levels: tuple[float, ...],
    zt: tuple[int, int],
    light: np.ndarray,
    exposure: tuple[float, float, float],
    dtype: str,
) -> np.ndarray:
    """A simple-style field ``(t, c, z, y, x)``: draw, light, add noise, convert.

    Channel 0 shows the nuclei, channel 1 a larger dimmer cytoplasm, further
    channels a cell body; z planes away from the middle are dimmer and wider.
    ``exposure`` is ``(background, noise sd, unit)`` in 12-bit camera units.
    """
    z_planes, t_points = zt
    background, noise, unit = exposure
    channels = len(levels)
    shape = light.shape
    cell_var = rng.uniform(0.8, 1.2, size=(channels, len(nuclei)))
    signal = np.zeros((channels, z_planes, *shape), dtype=np.float32)
    for z in range(z_planes):
        defocus = abs(z - (z_planes - 1) / 2)
        dim = 1.0 / (1.0 + 0.3 * defocus)
        grow = 1.0 + 1.5 * defocus
        for c in range(channels):
            if c == 0:
                draw_objects(signal[c, z], nuclei, 1.0, levels[c] * dim, 0.8 * grow)
            else:
                scale, edge = (2.0, 3.0) if c == 1 else (1.5, 2.0)
                peaks = levels[c] * dim * cell_var[c]
                draw_objects(signal[c, z], nuclei, scale, peaks, edge * grow, dome=0.4)
    signal += background
    signal *= light
    out = np.empty((t_points, *signal.shape), dtype=dtype)
    for t in range(t_points):
        noisy = rng.standard_normal(signal.shape, dtype=np.float32)
        noisy *= noise
        noisy += signal
        noisy *= unit
        if dtype != "float32":
            np.rint(noisy, out=noisy)
            np.clip(noisy, 0, np.iinfo(dtype).max, out=noisy)
        out[t] = noisy
    return out
