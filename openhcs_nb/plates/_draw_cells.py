"""Placing and drawing realistic nuclei, cells and debris, object by object.

Placement puts nuclei in three ways, checked through a spatial hash so a
crowded field costs about the same per nucleus as a sparse one:

* **clumps** of three to five nuclei, each new member overlapping an earlier
  one by 10-40 % of their mean radius (sizes differ, so no watershed is
  exact);
* **touching singles**, attached the same way to any nucleus already placed,
  with a probability that rises across the plate up to confluence;
* **free singles** at random positions with a gap to every other nucleus; when
  the field is too full for that they fall back to touching.

No two nuclei overlap by more than 55 % of the smaller radius, so every
nucleus keeps its own centre. Every nucleus lies fully inside the field, so the
planted count is what a perfect segmentation finds.

Drawing touches only each object's bounding box. Where objects overlap, the
brighter counts fully and the dimmer by :data:`OVERLAP_GAIN`: brighter than
either, as stacked fluorescent nuclei are, without clipping every clump.

The nuclei label image gives a pixel that two nuclei share to the one in whose
outline it lies deepest (smallest normalised radius); ties go to the earlier
nucleus. Cells are an additively
weighted Voronoi partition (distance to a nucleus minus its radius), limited by
a per-cell reach that a smooth noise field makes irregular; each nucleus's own
pixels always belong to its cell, so cell ``i`` contains nucleus ``i``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

GAP = 3.0  # px kept between free singles and everything else
OVERLAP = (0.1, 0.4)  # centre distance = r1 + r2 - overlap * mean radius
MAX_OVERLAP = 0.55  # of the smaller radius, for any two nuclei
OVERLAP_GAIN = 0.35  # share of the dimmer object's intensity added where two overlap
ROUGH_MAX = 1.4  # the largest factor a roughness field may stretch a cell by
_TRIES = 40
_RETIRE = 8  # failed attachments before a nucleus counts as surrounded
_HARMONICS = (2, 3, 5)  # outline wobble; _box hard-codes them


@dataclass(frozen=True)
class Blob:
    """One drawn object: centre, semi-axes, orientation, outline wobble, brightness.

    ``wobble`` holds ``(amplitude, phase)`` per harmonic of the outline, so the
    radius at angle ``t`` is scaled by ``1 + sum(amp * cos(k t + phase))``.
    ``group`` is the clump index, -1 for a nucleus that is not in a clump.
    """

    y: float
    x: float
    a: float
    b: float
    angle: float
    wobble: tuple[tuple[float, float], ...]
    brightness: float
    group: int = -1

    @property
    def radius(self) -> float:
        """The mean radius, ``sqrt(a * b)``."""
        return math.sqrt(self.a * self.b)


class _Grid:
    """A spatial hash of placed centres, so neighbour checks stay local."""

    def __init__(self, cell: float) -> None:
        self.cell = cell
        self.buckets: dict[tuple[int, int], list[int]] = {}

    def near(self, y: float, x: float) -> Iterator[int]:
        gy, gx = int(y // self.cell), int(x // self.cell)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yield from self.buckets.get((gy + dy, gx + dx), ())

    def add(self, index: int, y: float, x: float) -> None:
        key = (int(y // self.cell), int(x // self.cell))
        self.buckets.setdefault(key, []).append(index)


def make_blob(
    rng: np.random.Generator,
    y: float,
    x: float,
    radius: float,
    elongation: float,
    wobble: float,
    group: int = -1,
) -> Blob:
    """A blob of mean ``radius`` with a random ellipse and outline wobble."""
    u = rng.random(2 + 2 * len(_HARMONICS)).tolist()  # one draw: cheap per blob
    e = elongation * u[0]
    wob = tuple(
        (
            round(wobble * u[2 + 2 * i] / (i + 1), 4),
            round(2 * math.pi * u[3 + 2 * i], 4),
        )
        for i in range(len(_HARMONICS))
    )
    bright = math.exp(0.22 * float(rng.standard_normal()))
    return Blob(
        y=y,
        x=x,
        a=radius * (1 + e),
        b=radius / (1 + e),
        angle=math.pi * u[1],
        wobble=wob,
        brightness=min(max(bright, 0.6), 1.5),
        group=group,
    )


def place_nuclei(
    rng: np.random.Generator,
    shape: tuple[int, int],
    count: int,
    radius: tuple[float, float],
    clump_fraction: float,
    touch_probability: float,
) -> list[Blob]:
    """Up to ``count`` nuclei; fewer only when the field cannot hold them."""
    height, width = shape
    grid = _Grid(2 * radius[1] * 1.35 + GAP)
    ys: list[float] = []
    xs: list[float] = []
    rs: list[float] = []
    placed: list[Blob] = []

    def allowed(y: float, x: float, r: float, free: bool) -> bool:
        margin = r * 1.35 + 1
        if not (margin <= y <= height - margin and margin <= x <= width - margin):
            return False
        for j in grid.near(y, x):
            rj = rs[j]
            d = math.hypot(ys[j] - y, xs[j] - x)
            if d < (rj + r + GAP if free else rj + r - MAX_OVERLAP * min(rj, r)):
                return False
        return True

    def add(y: float, x: float, r: float, group: int) -> None:
        open_sides.append(len(placed))
        misses.append(0)
        grid.add(len(placed), y, x)
        ys.append(y)
        xs.append(x)
        rs.append(r)
        placed.append(make_blob(rng, y, x, r, 0.3, 0.12, group))

    open_sides: list[int] = []  # nuclei not yet known to be surrounded
    misses: list[int] = []

    def attach(anchors: list[int], r: float, group: int, retire: bool) -> bool:
        """Touch one of ``anchors``; with ``retire``, drop anchors that keep failing."""
        draws = rng.random((_TRIES, 3)).tolist()
        for pick, overlap, turn in draws:
            if not anchors:
                return False
            k = int(pick * len(anchors))
            j = anchors[k]
            lo, hi = OVERLAP
            d = rs[j] + r - (lo + (hi - lo) * overlap) * (rs[j] + r) / 2
            t = 2 * math.pi * turn
            y, x = ys[j] + d * math.sin(t), xs[j] + d * math.cos(t)
            if allowed(y, x, r, free=False):
                add(y, x, r, group)
                return True
            if retire:
                misses[j] += 1
                if misses[j] >= _RETIRE:
                    anchors[k] = anchors[-1]
                    anchors.pop()
        return False

    def drop(r: float, free: bool, group: int) -> bool:
        for fy, fx in rng.random((_TRIES, 2)).tolist():
            y, x = fy * height, fx * width
            if allowed(y, x, r, free=free):
                add(y, x, r, group)
                return True
        return False

    left = min(round(count * clump_fraction), count)
    group = 0
    while left >= 3:
        size = min(int(rng.integers(3, 6)), left)
        if not drop(rng.uniform(*radius), free=True, group=group):
            break
        members = [len(placed) - 1]
        for _ in range(size - 1):
            if attach(members, rng.uniform(*radius), group, retire=False):
                members.append(len(placed) - 1)
        left -= size
        group += 1
    while len(placed) < count:
        r = rng.uniform(*radius)
        touching = bool(placed) and rng.random() < touch_probability
        if touching and attach(open_sides, r, -1, retire=True):
            continue
        if drop(r, free=True, group=-1):
            continue
        if not attach(open_sides, r, -1, retire=True):
            break
    return placed


def _box(
    blob: Blob, reach: float, shape: tuple[int, int], *, wobbly: bool = True
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """The bounding box of ``blob`` grown to ``reach``, and normalised radii.

    The normalised radius of a pixel is 1 on the blob's wobbly outline.
    """
    y0, y1 = max(int(blob.y - reach), 0), min(int(blob.y + reach) + 2, shape[0])
    x0, x1 = max(int(blob.x - reach), 0), min(int(blob.x + reach) + 2, shape[1])
    if y0 >= y1 or x0 >= x1:
        return None
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(blob.y)
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(blob.x)
    cos, sin = math.cos(blob.angle), math.sin(blob.angle)
    u = dx * np.float32(cos / blob.a) + dy * np.float32(sin / blob.a)
    v = dy * np.float32(cos / blob.b) - dx * np.float32(sin / blob.b)
    rho = np.sqrt(u * u + v * v)  # np.hypot is ten times slower here
    box = (slice(y0, y1), slice(x0, x1))
    if not wobbly:
        return box, rho
    # cos(k t + phase) from cos t and sin t by angle addition: no trigonometry
    safe = np.maximum(rho, np.float32(1e-6))
    c1, s1 = u / safe, v / safe
    c2, s2 = c1 * c1 - s1 * s1, 2 * c1 * s1
    c3, s3 = c2 * c1 - s2 * s1, s2 * c1 + c2 * s1
    c5, s5 = c3 * c2 - s3 * s2, s3 * c2 + c3 * s2
    outline = np.ones_like(rho)
    for (cos_k, sin_k), (amp, phase) in zip(
        ((c2, s2), (c3, s3), (c5, s5)), blob.wobble, strict=True
    ):
        outline += np.float32(amp * math.cos(phase)) * cos_k
        outline -= np.float32(amp * math.sin(phase)) * sin_k
    return box, rho / outline


def draw_blobs(
    canvas: np.ndarray,
    labels: np.ndarray,
    blobs: list[Blob],
    peak: float,
    edge: float,
    dome: float = 0.25,
) -> None:
    """Add each blob's soft-edged intensity to ``canvas``; label it 1.. in ``labels``.

    ``labels`` must be all zero on entry. A shared pixel goes to the blob in
    which it lies deepest (see the module docstring).
    """
    depth = np.full(canvas.shape, np.inf, dtype=np.float32)
    for index, blob in enumerate(blobs, start=1):
        boxed = _box(blob, blob.a * 1.25 + 3 * edge + 1, canvas.shape)
        if boxed is None:
            continue
        box, rho = boxed
        rim = np.minimum((rho - 1.0) * np.float32(blob.radius / edge), 30)
        inner = np.minimum(rho, 1.0)
        shade = (
            np.float32(peak * blob.brightness) - np.float32(dome * peak) * inner * inner
        )
        value = shade / (1.0 + np.exp(rim))
        under = canvas[box]
        lower = np.minimum(under, value)
        np.maximum(under, value, out=under)
        under += np.float32(OVERLAP_GAIN) * lower
        take = (rho < 1.0) & (rho < depth[box])
        labels[box][take] = index
        depth[box][take] = rho[take]


def draw_cells(
    nuclei: np.ndarray,
    blobs: list[Blob],
    reach: np.ndarray,
    roughness: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Partition the field into cells around ``blobs`` (see the module docstring).

    Returns the cell labels (int32, matching ``nuclei``) and each cell pixel's
    depth: its distance beyond the nucleus over the cell's local reach, 0 at
    the nucleus and 1 at the membrane (1 outside cells too). ``reach`` is each
    cell's extent beyond its nucleus in px; ``roughness`` is a smooth field
    around 1 (at most :data:`ROUGH_MAX`) that makes outlines irregular.

    The partition is computed on a grid of half the resolution (a quarter of
    the work per cell) and repeated up; cell outlines are 2 px steps, nuclei
    keep their full-resolution outline.
    """
    height, width = nuclei.shape
    small = ((height + 1) // 2, (width + 1) // 2)
    cells = np.zeros(small, dtype=np.int32)
    depth = np.ones(small, dtype=np.float32)
    best = np.full(small, np.inf, dtype=np.float32)
    rough = roughness[::2, ::2]
    for index, (blob, extent) in enumerate(zip(blobs, reach, strict=True), start=1):
        half = Blob(
            (blob.y - 0.5) / 2, (blob.x - 0.5) / 2, blob.a / 2, blob.b / 2,
            blob.angle, blob.wobble, blob.brightness,
        )  # fmt: skip
        span = half.a + float(extent) / 2 * ROUGH_MAX + 1
        boxed = _box(half, span, small, wobbly=False)
        if boxed is None:
            continue
        box, rho = boxed
        beyond = np.maximum(rho - 1.0, 0.0) * np.float32(half.radius)
        limit = np.float32(extent / 2) * rough[box]
        take = (beyond <= limit) & (beyond < best[box])
        cells[box][take] = index
        best[box][take] = beyond[take]
        depth[box][take] = beyond[take] / limit[take]
    full_cells = cells.repeat(2, 0).repeat(2, 1)[:height, :width]
    full_depth = depth.repeat(2, 0).repeat(2, 1)[:height, :width]
    own = nuclei > 0
    full_cells[own] = nuclei[own]
    full_depth[own] = 0.0
    return np.ascontiguousarray(full_cells), np.ascontiguousarray(full_depth)
