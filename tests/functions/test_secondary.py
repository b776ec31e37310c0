"""grow_cells: cells from nucleus seeds on noisy, unevenly lit cytoplasm."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.segmentation import find_boundaries

from openhcs_nb.functions._relate import match_f1, parent_of, present_labels
from openhcs_nb.functions._secondary import grow_cells

SIZE = 320


def cell_field(
    rng: np.random.Generator, *, membrane: bool, count: int = 70
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cytoplasm image, planted cell labels and nucleus seeds (same ids).

    Cells are random ellipses (mean radius 15-24 px) whose centres keep
    0.6 of the radius sum apart, so most touch several neighbours; shared
    pixels go to the cell whose ellipse equation is smallest there. Each
    cell has its own brightness (250-1000), cytoplasm texture, an optional
    dark membrane on cell-cell borders, an illumination ramp (x 0.65-1.0)
    camera noise and a few saturated specks of debris. Nuclei sit off-centre
    inside their cells.
    """
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    best = np.full((SIZE, SIZE), np.inf)
    truth = np.zeros((SIZE, SIZE), np.int32)
    seeds = np.zeros((SIZE, SIZE), np.int32)
    placed: list[tuple[float, float, float]] = []
    nuclei: list[tuple[float, float, float]] = []
    for _ in range(count * 30):
        if len(placed) == count:
            break
        y, x = rng.uniform(25, SIZE - 25, 2)
        a = rng.uniform(16.0, 26.0)
        b = a * rng.uniform(0.7, 1.0)
        r = float(np.sqrt(a * b))
        if any(np.hypot(y - p, x - q) < 0.6 * (r + s) for p, q, s in placed):
            continue
        placed.append((y, x, r))
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - y, xx - x
        u = (dy * np.cos(angle) + dx * np.sin(angle)) / a
        v = (-dy * np.sin(angle) + dx * np.cos(angle)) / b
        q = u * u + v * v
        inside = (q <= 1.0) & (q < best)
        truth[inside] = len(placed)
        best[inside] = q[inside]
        shift = rng.uniform(-0.25, 0.25, 2) * r
        nuclei.append((y + shift[0], x + shift[1], rng.uniform(0.3, 0.45) * r))
    for label, (y, x, r) in enumerate(nuclei, start=1):
        nucleus = ((yy - y) ** 2 + (xx - x) ** 2 <= r * r) & (truth == label)
        seeds[nucleus] = label
    brightness = np.concatenate([[0.0], rng.uniform(250, 1000, len(placed))])
    image = brightness[truth] * (
        1 + 0.15 * ndi.gaussian_filter(rng.normal(size=truth.shape), 2) * 4
    )
    if membrane:
        border = find_boundaries(truth, mode="inner") & (truth > 0)
        touching = ndi.maximum_filter(truth, 3) != ndi.minimum_filter(
            np.where(truth > 0, truth, 1 << 30), 3
        )
        image[border & touching] *= 0.3
    image = ndi.gaussian_filter(image, 0.8)
    image *= np.linspace(0.65, 1.0, SIZE)[None, :]
    image += 80 + rng.normal(0, 20, image.shape)
    for y, x in rng.integers(3, SIZE - 6, (8, 2)):
        image[y : y + 3, x : x + 3] = 4095  # saturated debris, no nucleus
    return np.clip(image, 0, 4095).astype(np.float32), truth, seeds


def _grow(image, seeds, method, *, distance=0, regularization=0.05, threshold=None):
    out = np.empty(image.shape, np.int32)
    count = grow_cells(
        image,
        seeds,
        method=method,
        threshold=threshold,
        distance=distance,
        regularization=regularization,
        out=out,
    )
    return out, count


def _tiled(tiles: int) -> tuple[np.ndarray, np.ndarray]:
    """A bigger field: ``tiles x tiles`` copies of one field, ids made unique."""
    image, _, seeds = cell_field(np.random.default_rng(8), membrane=True)
    n = int(seeds.max())
    rows = []
    for i in range(tiles):
        row = [
            np.where(seeds > 0, seeds + n * (i * tiles + j), 0) for j in range(tiles)
        ]
        rows.append(np.concatenate(row, axis=1))
    return np.tile(image, (tiles, tiles)), np.concatenate(rows, axis=0).astype(np.int32)


@pytest.mark.parametrize("membrane", [False, True])
@pytest.mark.parametrize("method", ["propagation", "watershed", "distance"])
def test_when_cells_touch_then_grown_cells_match_planted(method, membrane):
    image, truth, seeds = cell_field(np.random.default_rng(4), membrane=membrane)
    cells, count = _grow(image, seeds, method, distance=40, threshold=150)
    f1, tp, fp, fn = match_f1(cells, truth, 0.5)
    print(f"\n{method} membrane={membrane}: F1 {f1:.3f} ({tp}/{fp}/{fn})")
    assert count == len(present_labels(seeds))
    assert f1 >= 0.85


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_when_brightness_differs_then_propagation_follows_edges_not_distance(seed):
    """F1 at IoU 0.8 separates methods that read the image from plain expansion.

    Measured (seeds 4-6, no membrane): propagation lambda 0.02 0.91-0.97,
    expansion by distance 0.53-0.66.
    """
    image, truth, seeds = cell_field(np.random.default_rng(seed), membrane=False)
    grown, _ = _grow(image, seeds, "propagation", threshold=150, regularization=0.02)
    expanded, _ = _grow(image, seeds, "distance", threshold=150)
    by_edges = match_f1(grown, truth, 0.8)[0]
    by_distance = match_f1(expanded, truth, 0.8)[0]
    assert by_edges >= 0.88
    assert by_edges > by_distance + 0.2


def test_when_membrane_is_dark_then_watershed_finds_the_borders():
    image, truth, seeds = cell_field(np.random.default_rng(5), membrane=True)
    cells, _ = _grow(image, seeds, "watershed", threshold=150)
    assert match_f1(cells, truth, 0.8)[0] >= 0.88


def _slow_distance_to_own_seed(cells: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    worst = np.zeros(cells.shape)
    for label in present_labels(cells):
        far = ndi.distance_transform_edt(seeds != label)
        worst[cells == label] = far[cells == label]
    return worst


@pytest.mark.parametrize("method", ["propagation", "watershed", "distance"])
def test_when_distance_is_limited_then_no_cell_pixel_is_farther(method):
    image, _, seeds = cell_field(np.random.default_rng(6), membrane=False)
    free, _ = _grow(image, seeds, method, threshold=150)
    cells, count = _grow(image, seeds, method, distance=7, threshold=150)
    assert _slow_distance_to_own_seed(free, seeds).max() > 7  # the limit bites
    assert _slow_distance_to_own_seed(cells, seeds).max() <= 7
    # Ids follow the seeds, every seed pixel stays, every cell is connected.
    ids = present_labels(cells)
    np.testing.assert_array_equal(ids, present_labels(seeds))
    assert count == len(ids)
    np.testing.assert_array_equal(parent_of(seeds, cells), present_labels(seeds))
    np.testing.assert_array_equal(cells[seeds > 0], seeds[seeds > 0])
    for label in ids:
        pieces = ndi.label(cells == label, structure=np.ones((3, 3)))[1]
        assert pieces == 1


def test_when_threshold_is_none_then_otsu_is_used():
    image, _, seeds = cell_field(np.random.default_rng(7), membrane=False)
    auto, _ = _grow(image, seeds, "propagation")
    explicit, _ = _grow(image, seeds, "propagation", threshold=threshold_otsu(image))
    np.testing.assert_array_equal(auto, explicit)
    below = image <= threshold_otsu(image)
    assert (auto[below & (seeds == 0)] == 0).all()


def test_when_arguments_are_wrong_then_grow_cells_raises():
    image = np.zeros((8, 8), np.float32)
    seeds = np.zeros((8, 8), np.int32)
    with pytest.raises(ValueError, match="unknown growth method"):
        _grow(image, seeds, "flood")
    with pytest.raises(ValueError, match="differ in shape"):
        _grow(image, seeds[:4], "distance")
    with pytest.raises(ValueError, match=">= 0"):
        _grow(image, seeds, "distance", distance=-1)


def test_when_field_is_large_then_memory_is_linear_in_pixels():
    """Traced peak <= 48 bytes per pixel (docstring: ~40) on 960 x 960."""
    image, seeds = _tiled(3)
    for method in ("propagation", "distance"):
        tracemalloc.start()
        cells, count = _grow(image, seeds, method, distance=30, threshold=150)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"\n{method} 960^2, {count} cells: {peak / image.size:.1f} B/px")
        assert count == len(present_labels(seeds))
        assert peak <= 48 * image.size
