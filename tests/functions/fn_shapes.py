"""Small synthetic shapes with known answers, shared by the function tests."""

from __future__ import annotations

import numpy as np


def disc(
    shape: tuple[int, int], centre: tuple[float, float], radius: float
) -> np.ndarray:
    """A filled disc as a bool mask."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def discs(
    shape: tuple[int, int], specs: list[tuple[float, float, float]]
) -> list[np.ndarray]:
    """One mask per ``(y, x, radius)``."""
    return [disc(shape, (y, x), r) for y, x, r in specs]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks."""
    return float((a & b).sum() / (a | b).sum())


def bimodal(
    rng: np.random.Generator,
    shape: tuple[int, int],
    low: float,
    high: float,
    noise: float,
) -> tuple[np.ndarray, np.ndarray]:
    """A float32 image of two noisy intensity classes and its true foreground."""
    truth = np.zeros(shape, dtype=bool)
    truth[shape[0] // 4 : 3 * shape[0] // 4, shape[1] // 4 : 3 * shape[1] // 4] = True
    image = np.where(truth, high, low) + rng.normal(0.0, noise, shape)
    return image.astype(np.float32), truth


def random_nuclei(
    rng: np.random.Generator, size: int, count: int
) -> tuple[np.ndarray, int]:
    """A bool mask of ``count`` random discs (radius 6-10), many touching."""
    mask = np.zeros((size, size), dtype=bool)
    for _ in range(count):
        y, x = rng.uniform(10, size - 10, 2)
        mask |= disc((size, size), (y, x), rng.uniform(6.0, 10.0))
    return mask, count
