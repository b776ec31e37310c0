"""Time the built-in nuclei chain against a plain scikit-image version of it.

Run ``python benchmarks/bench_functions.py [--size 2048] [--repeats 3]``.

A synthetic uint16 plane of nuclei (random discs, some touching, blurred edges,
a brightness gradient and noise) goes through the same seven steps twice:

ours:    subtract_background -> gaussian_blur -> threshold_otsu -> fill_holes
         -> watershed_split -> remove_small_objects -> measure_objects
skimage: white_tophat(disk, "crosses") -> filters.gaussian -> threshold_otsu
         -> ndimage.binary_fill_holes -> EDT + peak_local_max + watershed
         -> remove_small_objects -> regionprops_table

BLAS is pinned to one thread before NumPy loads, so both chains run on one
core, as each worker process does in production. The script prints the median
time of each step and of the whole chain, the ratio ours/skimage, and how well
the two segmentations agree (objects matched one-to-one at IoU >= 0.5).
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402 - after pinning BLAS threads
from scipy import ndimage as ndi  # noqa: E402

RADIUS = 50
SIGMA = 2.0
MIN_DISTANCE = 5
MIN_SIZE = 30


def synthetic_nuclei(size: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """A uint16 plane of ~size**2/2800 nuclei and the number of discs drawn."""
    rng = np.random.default_rng(seed)
    count = size * size // 2800
    ys = rng.uniform(0, size, count)
    xs = rng.uniform(0, size, count)
    radii = rng.uniform(6.0, 12.0, count)
    brightness = rng.uniform(600.0, 1400.0, count)
    image = np.zeros((size, size), dtype=np.float32)
    for y, x, r, b in zip(ys, xs, radii, brightness, strict=True):
        y0, y1 = max(int(y - r) - 1, 0), min(int(y + r) + 2, size)
        x0, x1 = max(int(x - r) - 1, 0), min(int(x + r) + 2, size)
        gy, gx = np.ogrid[y0:y1, x0:x1]
        disc = (gy - y) ** 2 + (gx - x) ** 2 <= r * r
        np.maximum(image[y0:y1, x0:x1], b * disc, out=image[y0:y1, x0:x1])
    image = ndi.gaussian_filter(image, 1.0)
    gy, gx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image += 300.0 + 500.0 * gx + 300.0 * gy  # uneven illumination
    image += rng.normal(0.0, 40.0, image.shape).astype(np.float32)
    return np.clip(image, 0, 65535).astype(np.uint16), count


def ours(plane: np.ndarray, times: dict[str, float]) -> np.ndarray:
    """Our chain through the catalogue Functions; returns the labels plane."""
    from openhcs_nb import functions as fn

    stack = plane[None]
    steps: list[tuple[str, Callable[[Any], Any]]] = [
        (
            "background",
            lambda s: fn.subtract_background(s, radius=RADIUS, method="tophat"),
        ),
        ("gaussian", lambda s: fn.gaussian_blur(s, sigma=SIGMA)),
        ("threshold", fn.threshold_otsu),
        ("fill_holes", fn.fill_holes),
        ("split", lambda s: fn.watershed_split(s, min_distance=MIN_DISTANCE)),
        ("remove_small", lambda s: fn.remove_small_objects(s, min_size=MIN_SIZE)),
    ]
    value: Any = stack
    for name, step in steps:
        t0 = time.perf_counter()
        value = step(value)
        times[name] = time.perf_counter() - t0
    labels = value
    t0 = time.perf_counter()
    fn.measure_objects.impl(stack, labels=labels[0], names=("dapi",))
    times["measure"] = time.perf_counter() - t0
    return labels[0]


def skimage_chain(plane: np.ndarray, times: dict[str, float]) -> np.ndarray:
    """The same steps written with scikit-image; returns the labels plane."""
    from skimage import feature, filters, measure, morphology, segmentation

    def remove_small(labels: np.ndarray) -> np.ndarray:
        params = inspect.signature(morphology.remove_small_objects).parameters
        if "max_size" in params:  # scikit-image >= 0.26
            return morphology.remove_small_objects(labels, max_size=MIN_SIZE - 1)
        return morphology.remove_small_objects(labels, min_size=MIN_SIZE)

    def split(mask: np.ndarray) -> np.ndarray:
        dist = ndi.distance_transform_edt(mask)
        peaks = feature.peak_local_max(
            dist, min_distance=MIN_DISTANCE, labels=measure.label(mask)
        )
        markers = np.zeros(mask.shape, dtype=np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        return segmentation.watershed(-dist, markers, mask=mask)

    footprint = morphology.disk(RADIUS, decomposition="crosses")
    steps: list[tuple[str, Callable[[Any], Any]]] = [
        ("background", lambda im: morphology.white_tophat(im, footprint)),
        ("gaussian", lambda im: filters.gaussian(im, sigma=SIGMA, preserve_range=True)),
        ("threshold", lambda im: im > filters.threshold_otsu(im)),
        ("fill_holes", ndi.binary_fill_holes),
        ("split", split),
        ("remove_small", remove_small),
    ]
    value: Any = plane
    for name, step in steps:
        t0 = time.perf_counter()
        value = step(value)
        times[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    measure.regionprops_table(
        value,
        intensity_image=plane,
        properties=("label", "area", "centroid", "intensity_mean"),
    )
    times["measure"] = time.perf_counter() - t0
    return value


def matched(a: np.ndarray, b: np.ndarray) -> int:
    """Objects of ``a`` and ``b`` paired one-to-one with IoU >= 0.5."""
    both = (a > 0) & (b > 0)
    pairs, overlap = np.unique(
        np.stack([a[both], b[both]]).astype(np.int64), axis=1, return_counts=True
    )
    area_a = np.bincount(a.ravel())
    area_b = np.bincount(b.ravel())
    union = area_a[pairs[0]] + area_b[pairs[1]] - overlap
    return int(np.count_nonzero(overlap / union >= 0.5))


def run(
    name: str, chain: Callable[..., np.ndarray], plane: np.ndarray, repeats: int
) -> tuple[np.ndarray, dict[str, float]]:
    """Median time per step over ``repeats`` runs (after one warm-up)."""
    labels = chain(plane, {})
    samples: list[dict[str, float]] = []
    for _ in range(repeats):
        times: dict[str, float] = {}
        labels = chain(plane, times)
        times["total"] = sum(times.values())
        times["total w/o background"] = times["total"] - times["background"]
        samples.append(times)
    medians = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    print(f"  {name} done", flush=True)
    return labels, medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    plane, drawn = synthetic_nuclei(args.size)
    print(
        f"plane {plane.shape} {plane.dtype}, {drawn} discs drawn; "
        f"median of {args.repeats} runs, 1 BLAS thread"
    )
    our_labels, our_times = run("ours", ours, plane, args.repeats)
    sk_labels, sk_times = run("skimage", skimage_chain, plane, args.repeats)
    print(f"{'step':<22}{'ours ms':>10}{'skimage ms':>12}{'ratio':>8}")
    for key in our_times:
        a, b = our_times[key] * 1e3, sk_times[key] * 1e3
        print(f"{key:<22}{a:>10.1f}{b:>12.1f}{a / b:>8.2f}")
    n_ours = int(our_labels.max())
    n_sk = len(np.unique(sk_labels)) - 1
    print(
        f"objects: ours {n_ours}, skimage {n_sk}; "
        f"matched at IoU>=0.5: {matched(our_labels, sk_labels)}"
    )
    for key in ("total", "total w/o background"):
        print(f"ratio ours/skimage ({key}): {our_times[key] / sk_times[key]:.3f}")


if __name__ == "__main__":
    main()
