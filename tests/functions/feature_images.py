"""Label and intensity images for the feature tests: irregular on purpose.

The field mixes rotated ellipses, a concave object, two touching objects with
different labels, a one-pixel object, objects cut by the image border and
noisy, unevenly lit intensities, so no feature comes out exact by symmetry.
"""

from __future__ import annotations

import numpy as np


def ellipse(
    shape: tuple[int, int],
    centre: tuple[float, float],
    axes: tuple[float, float],
    angle: float,
) -> np.ndarray:
    """A filled, rotated ellipse as a bool mask."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    dy, dx = yy - centre[0], xx - centre[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    return (u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1.0


def irregular_labels(rng: np.random.Generator) -> np.ndarray:
    """A 96x96 field of awkward objects with gaps in the label numbers."""
    size = 96
    shape = (size, size)
    labels = np.zeros(shape, np.int32)
    label = 3
    for y, x in ((20, 20), (20, 70), (70, 22)):
        axes = (rng.uniform(7, 13), rng.uniform(3, 7))
        labels[ellipse(shape, (y, x), axes, rng.uniform(0, np.pi))] = label
        label += 2
    # A concave "C": a disc with a bite taken out.
    yy, xx = np.mgrid[:size, :size]
    ring = (yy - 68) ** 2 + (xx - 68) ** 2 <= 12**2
    bite = (yy - 68) ** 2 + (xx - 76) ** 2 <= 7**2
    labels[ring & ~bite] = 20
    # Two touching objects: one blob split by a ragged line.
    blob = ellipse(shape, (45, 45), (10, 6), 0.4)
    left = blob & (xx + rng.integers(-1, 2, shape) < 45)
    labels[blob] = 21
    labels[left] = 22
    # A one-pixel object, and objects cut by the top and the right border.
    labels[40, 80] = 30
    labels[ellipse(shape, (-2, 45), (8, 5), 0.2)] = 31
    labels[ellipse(shape, (88, size + 1), (9, 4), 1.1)] = 32
    return labels


def noisy_image(
    rng: np.random.Generator, labels: np.ndarray, background: float = 10.0
) -> np.ndarray:
    """Object intensities that differ per object, on a tilted, noisy field."""
    yy, xx = np.mgrid[: labels.shape[0], : labels.shape[1]]
    tilt = 1.0 + 0.5 * xx / labels.shape[1] + 0.3 * yy / labels.shape[0]
    levels = rng.uniform(40, 200, int(labels.max()) + 1)
    levels[0] = background
    image = levels[labels] * tilt + rng.normal(0.0, 8.0, labels.shape)
    return np.clip(image, 0, None).astype(np.float32)


def crowded_field(
    rng: np.random.Generator, size: int = 1024, count: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """A benchmark field: ``count`` touching, irregular objects and an image."""
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed

    points = rng.integers(0, size, (count, 2))
    seeds = np.zeros((size, size), np.int32)
    seeds[points[:, 0], points[:, 1]] = np.arange(1, count + 1)
    distance = ndi.distance_transform_edt(seeds == 0)
    wobble = ndi.gaussian_filter(rng.normal(0, 1, (size, size)), 6) * 40
    labels = watershed(distance, seeds, mask=distance + wobble < 14)
    return labels.astype(np.int32), noisy_image(rng, labels)
