"""Time each step of the cells pipeline against scikit-image doing the same work.

Run ``python benchmarks/bench_cells.py [--size 1024 2048] [--repeats 3]``.

A realistic demo-style field (second well of a 1 x 2 plate: clumped, textured
nuclei, debris, saturation, uneven light, shot noise) and its truth masks go
through the default pipeline's object steps, with its parameters, twice:

- primary: ``identify_primary`` vs gaussian, threshold_otsu,
  binary_fill_holes, EDT (smoothed, as ours), peak_local_max(labels=),
  watershed(-distance), remove_small_objects and the same largest-size cut.
- secondary: ``identify_secondary("propagation")`` is a watershed on a blended
  cost (scaled Sobel + lambda x distance to the seeds), an approximation of
  CellProfiler's propagation; skimage runs that same blended watershed, never
  an exact geodesic one. ``"distance"`` (exact: expand_labels) is an extra
  row, outside the chain total.
- tertiary: ``identify_tertiary`` vs ``np.where(nuclei, 0, cells)``.
- measure: ``measure_objects`` (shape + intensity) of nuclei, cells and
  cytoplasm in both channels vs ``regionprops_table`` of the properties in
  ``SHAPE_PROPS`` (median and std built in); ours also computes form factor,
  edge and integrated intensity and mass displacement.
- haralick: ours (what ``texture=True`` runs) vs ``mahotas.features.haralick``
  on each nucleus's crop of the quantised field over all 256 levels.
- quality: ``measure_image_quality`` vs the same measures in plain numpy.

Both sides start from the same rolling-ball-subtracted nuclear plane (not
timed). BLAS is pinned to one thread, as in a worker. Printed: median time
per step, ours / skimage, the chain total, F1 at IoU 0.5 (ours vs skimage,
each vs truth) and how far ours' numbers are from the oracles'.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402 - after pinning BLAS threads
from scipy import ndimage as ndi  # noqa: E402

SMOOTHING = 1.0
MIN_DISTANCE = 7
DECLUMP_SIGMA = 2.0
MIN_SIZE = 80
MAX_SIZE = 20_000
CELL_DISTANCE = 80
REGULARIZATION = 0.05
TEXTURE_SCALE = 3
LEVELS = 256
CHANNELS = ("DAPI", "Cyto")
SHAPE_PROPS = (
    *("label", "area", "perimeter", "area_convex", "solidity", "extent"),
    *("eccentricity", "axis_major_length", "axis_minor_length", "orientation"),
    *("feret_diameter_max", "centroid"),
    *(f"intensity_{stat}" for stat in ("mean", "min", "max", "std", "median")),
)
MEASURE_PAIRS = (
    *((k, k) for k in ("area", "perimeter", "solidity", "extent", "eccentricity")),
    ("convex_area", "area_convex"),
    ("major_axis_length", "axis_major_length"),
    ("minor_axis_length", "axis_minor_length"),
    ("orientation", "orientation"),
    ("feret_max", "feret_diameter_max"),
    *(
        (f"intensity_{stat}_{name}", f"intensity_{stat}-{i}")
        for stat in ("mean", "min", "max", "std", "median")
        for i, name in enumerate(CHANNELS)
    ),
)
NOTES = """\
notes: total = sum of the chain steps, without the extra row.
  secondary: ours 'propagation' approximates CellProfiler's (a watershed on
    Sobel + lambda*distance); skimage floods the same blended cost.
  secondary distance (extra): exact on both sides (expand_labels).
  measure: skimage regionprops_table of SHAPE_PROPS on 3 sets x 2 channels."""
CHAIN = ("primary", "secondary", "tertiary", "measure", "haralick", "quality")

Times = dict[str, float]
Clock = Callable[[], float]
CLOCKS: dict[str, Clock] = {"cpu": time.process_time, "wall": time.perf_counter}


class Field(NamedTuple):
    """One field: raw channels, the prepared nuclear plane and the truth masks."""

    stack: np.ndarray  # (2, y, x) uint16: DAPI, cytoplasm
    nuclear: np.ndarray  # (y, x) float32, background subtracted
    truth_nuclei: np.ndarray
    truth_cells: np.ndarray


class Outcome(NamedTuple):
    """What one chain produced: labels, and the outputs checked across chains."""

    nuclei: np.ndarray
    cells: np.ndarray
    cytoplasm: np.ndarray
    cell_table: dict[str, np.ndarray]  # the cells' measurement columns
    texture: np.ndarray  # (nuclei, 13) Haralick features
    slopes: np.ndarray  # power-spectrum slope per channel


def make_field(size: int, confluence: float = 0.5) -> Field:
    """The second well of a 1 x 2 realistic demo plate, scaled to ``size``.

    ``confluence`` is the demo spec's chance that a nucleus touches another
    in that well; the demo plate's own last column uses 1.0.
    """
    from openhcs_nb import functions as fn
    from openhcs_nb.plates.demo import DEMO_SPEC
    from openhcs_nb.plates.synthetic import plate_light, render_field_with_masks

    nuclei = max(8, round(450 * (size / 1024) ** 2))
    spec = dataclasses.replace(
        DEMO_SPEC,
        rows=1,
        columns=2,
        fields=1,
        shape=(size, size),
        min_nuclei=nuclei // 4,
        max_nuclei=nuclei,
        out_of_focus=0.0,
        confluence=confluence,
    )
    image, _, masks = render_field_with_masks(spec, 0, 1, 0, plate_light(spec))
    stack = np.ascontiguousarray(image[0, :, 0])
    nuclear = fn.subtract_background(stack[:1], radius=15)[0].astype(np.float32)
    return Field(stack, nuclear, masks["nuclei"], masks["cells"])


def timed_on(times: Times, name: str, step: Callable[[], Any], clock: Clock) -> Any:
    """Run ``step``, add its time on ``clock`` to ``times[name]``, return its value."""
    t0 = clock()
    value = step()
    times[name] = times.get(name, 0.0) + clock() - t0
    return value


# --- ours ---------------------------------------------------------------------


def ours(field: Field, times: Times, clock: Clock) -> Outcome:
    """The catalogue functions with the default pipeline's parameters."""
    from openhcs_nb import functions as fn
    from openhcs_nb.functions._features_texture import haralick_features

    def timed(name: str, step: Callable[[], Any]) -> Any:
        return timed_on(times, name, step, clock)

    nuclei = timed(
        "primary",
        lambda: fn.identify_primary(
            field.nuclear[None],
            min_distance=MIN_DISTANCE,
            smoothing=SMOOTHING,
            min_size=MIN_SIZE,
            max_size=MAX_SIZE,
            declump_smoothing=DECLUMP_SIGMA,
        )[0],
    )
    grow = functools.partial(
        fn.identify_secondary.impl,
        field.stack[1:2],
        seeds=nuclei[None],
        threshold="log_triangle",
        distance=CELL_DISTANCE,
    )
    cells = timed(
        "secondary",
        lambda: grow(method="propagation", regularization=REGULARIZATION)[0],
    )
    timed("secondary distance (extra)", lambda: grow(method="distance"))
    cytoplasm = timed(
        "tertiary",
        lambda: fn.identify_tertiary.impl(cells[None], subtract=nuclei[None])[0],
    )
    tables = [
        timed(
            "measure",
            lambda plane=plane: fn.measure_objects.impl(
                field.stack, labels=plane, names=CHANNELS
            )[1]["objects"],
        )
        for plane in (nuclei, cells, cytoplasm)
    ]
    texture = timed(
        "haralick",
        lambda: haralick_features(nuclei, field.stack[0], scale=TEXTURE_SCALE),
    )
    quality = timed(
        "quality", lambda: fn.measure_image_quality(field.stack, names=CHANNELS)
    )[1]["fields"]
    return Outcome(
        nuclei,
        cells,
        cytoplasm,
        tables[1],
        np.stack([v for k, v in texture.items() if k != "label"], axis=1),
        quality["power_log_log_slope"],
    )


# --- scikit-image -------------------------------------------------------------


def sk_primary(plane: np.ndarray) -> np.ndarray:
    """Nuclei the textbook scikit-image way, with ours' parameters."""
    from skimage import feature, filters, measure, morphology, segmentation

    smooth = filters.gaussian(plane, sigma=SMOOTHING, preserve_range=True)
    mask = ndi.binary_fill_holes(smooth > filters.threshold_otsu(smooth))
    dist = ndi.gaussian_filter(
        ndi.distance_transform_edt(mask), DECLUMP_SIGMA, mode="constant"
    )
    blobs = measure.label(mask, connectivity=2)
    peaks = feature.peak_local_max(
        dist, min_distance=MIN_DISTANCE, labels=blobs, exclude_border=False
    )
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    split = segmentation.watershed(-dist, markers, mask=mask, connectivity=2)
    split = morphology.remove_small_objects(split, max_size=MIN_SIZE - 1)
    area = np.bincount(split.ravel())
    split[area[split] > MAX_SIZE] = 0
    return segmentation.relabel_sequential(split)[0].astype(np.int32)


def sk_foreground(plane: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, Any]:
    """Smoothed cytoplasm and its mask: triangle threshold of log intensity."""
    from skimage import filters

    smooth = filters.gaussian(plane, sigma=SMOOTHING, preserve_range=True)
    logged = np.log(np.maximum(smooth, 1.0))
    level = math.exp(filters.threshold_triangle(logged))
    return smooth, (smooth > level) | (seeds > 0)


def sk_trim(cells: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Drop cell pixels beyond ``CELL_DISTANCE`` of their own nucleus, or cut off."""
    from skimage import measure

    for region in measure.regionprops(cells):
        box = region.slice
        cell = cells[box] == region.label
        seed = seeds[box] == region.label
        keep = cell & (ndi.distance_transform_edt(~seed) <= CELL_DISTANCE)
        pieces = measure.label(keep, connectivity=2)
        keep = np.isin(pieces, np.unique(pieces[seed & (pieces > 0)]))
        cells[box][cell & ~keep] = 0
    np.copyto(cells, seeds, where=seeds > 0)
    return cells


def sk_propagation(plane: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The same blended-cost watershed as ours, written with scikit-image."""
    from skimage import filters, segmentation

    smooth, foreground = sk_foreground(plane, seeds)
    edges = ndi.gaussian_filter(smooth, 1.0)
    low, high = np.percentile(edges, [1.0, 99.0])
    cost = filters.sobel(edges) * (2.0 / max(high - low, 1e-12))
    from_seeds = ndi.distance_transform_edt(seeds == 0)
    cost += REGULARIZATION * from_seeds
    foreground &= from_seeds <= CELL_DISTANCE
    cells = segmentation.watershed(cost, seeds, mask=foreground, connectivity=2)
    return sk_trim(cells.astype(np.int32), seeds)


def sk_distance(plane: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Cells as nuclei expanded by ``CELL_DISTANCE`` within the foreground."""
    from skimage import segmentation

    _, foreground = sk_foreground(plane, seeds)
    grown = segmentation.expand_labels(seeds, distance=CELL_DISTANCE)
    grown[~foreground] = 0
    return sk_trim(grown, seeds)


def sk_measure(stack: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """regionprops_table over both channels (channel last)."""
    from skimage import measure

    return measure.regionprops_table(
        labels, intensity_image=np.moveaxis(stack, 0, -1), properties=SHAPE_PROPS
    )


def naive_haralick(labels: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """Mahotas Haralick per object crop over every grey level, mean of 4 angles."""
    import mahotas
    from skimage import measure

    span = max(float(plane.max()) - float(plane.min()), 1.0)
    grey = 1 + np.rint((plane - float(plane.min())) / span * (LEVELS - 1))
    grey = grey.astype(np.uint16)
    rows = []
    for region in measure.regionprops(labels):
        crop = np.where(region.image, grey[region.slice], 0)
        try:
            rows.append(
                mahotas.features.haralick(
                    crop, ignore_zeros=True, distance=TEXTURE_SCALE, return_mean=True
                )
            )
        except ValueError:
            rows.append(np.full(13, np.nan))
    return np.asarray(rows)


def direct_quality(plane: np.ndarray, tile: int = 64) -> dict[str, float]:
    """Focus, local focus, power-spectrum slope, saturation and percentiles."""
    from skimage.util import view_as_blocks

    image = plane.astype(np.float64)
    rows, cols = image.shape[0] // tile * tile, image.shape[1] // tile * tile
    blocks = view_as_blocks(image[:rows, :cols], (tile, tile))
    local = blocks.var(axis=(2, 3)) / blocks.mean(axis=(2, 3))
    power = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
    side = min(image.shape)
    cy, cx = image.shape[0] // 2, image.shape[1] // 2
    yy, xx = np.indices(image.shape)
    radius = np.rint(
        np.hypot((yy - cy) / image.shape[0], (xx - cx) / image.shape[1]) * side
    ).astype(int)
    freqs = np.arange(1, side // 2 + 1)
    spectrum = ndi.mean(power, labels=radius, index=freqs)
    slope = np.polyfit(np.log(freqs), np.log(spectrum), 1)[0]
    out = {
        "focus_score": image.var() / image.mean(),
        "local_focus_mean": float(np.mean(local)),
        "local_focus_min": float(np.min(local)),
        "power_log_log_slope": float(slope),
        "saturated_fraction": float(np.mean(plane == np.iinfo(plane.dtype).max)),
    }
    for q in (1, 5, 25, 50, 75, 95, 99):
        out[f"intensity_p{q}"] = float(np.percentile(image, q))
    return out


def skimage_chain(field: Field, times: Times, clock: Clock) -> Outcome:
    """The same steps with scikit-image, numpy and mahotas called plainly."""

    def timed(name: str, step: Callable[[], Any]) -> Any:
        return timed_on(times, name, step, clock)

    nuclei = timed("primary", lambda: sk_primary(field.nuclear))
    cyto = field.stack[1]
    cells = timed("secondary", lambda: sk_propagation(cyto, nuclei))
    timed("secondary distance (extra)", lambda: sk_distance(cyto, nuclei))
    cytoplasm = timed(
        "tertiary", lambda: np.where(nuclei > 0, 0, cells).astype(np.int32)
    )
    tables = [
        timed("measure", lambda plane=plane: sk_measure(field.stack, plane))
        for plane in (nuclei, cells, cytoplasm)
    ]
    texture = timed("haralick", lambda: naive_haralick(nuclei, field.stack[0]))
    quality = timed("quality", lambda: [direct_quality(p) for p in field.stack])
    slopes = np.array([q["power_log_log_slope"] for q in quality])
    return Outcome(nuclei, cells, cytoplasm, tables[1], texture, slopes)


# --- report -------------------------------------------------------------------


def run(
    field: Field, repeats: int, clock: Clock
) -> tuple[Outcome, Outcome, Times, Times]:
    """Median time per step of both chains, interleaved, after one warm-up each.

    Alternating the chains in every repeat spreads the load of a shared host
    over both sides instead of over whichever happened to run second.
    """
    mine, theirs = ours(field, {}, clock), skimage_chain(field, {}, clock)
    samples: tuple[list[Times], list[Times]] = ([], [])
    for _ in range(repeats):
        for chain, kept in ((ours, samples[0]), (skimage_chain, samples[1])):
            times: Times = {}
            chain(field, times, clock)
            times["total"] = sum(times[key] for key in CHAIN)
            kept.append(times)
    medians = tuple(
        {k: statistics.median(s[k] for s in runs) for k in runs[0]} for runs in samples
    )
    return mine, theirs, medians[0], medians[1]


def check_outputs(field: Field, mine: Outcome) -> str:
    """How far ours' numbers are from the oracles' run on ours' own labels."""
    cells = sk_measure(field.stack, mine.cells)
    worst = 0.0
    for ours_key, sk_key in MEASURE_PAIRS:
        a, b = mine.cell_table[ours_key], cells[sk_key]
        worst = max(worst, float(np.nanmax(np.abs(a - b) / np.maximum(abs(b), 1))))
    naive = naive_haralick(mine.nuclei, field.stack[0])
    scale = np.maximum(np.abs(naive), 1e-9)
    tex = float(np.nanmax(np.abs(mine.texture - naive) / scale))
    slopes = [direct_quality(p)["power_log_log_slope"] for p in field.stack]
    slope = float(np.max(np.abs(mine.slopes - slopes)))
    return (
        f"outputs: cell measurements max rel diff {worst:.2g} "
        f"({len(MEASURE_PAIRS)} columns); Haralick max rel diff {tex:.2g}; "
        f"QC slope max diff {slope:.2g}"
    )


def agreement(mine: Outcome, theirs: Outcome, field: Field) -> list[str]:
    """F1 at IoU 0.5 for nuclei and cells: ours vs skimage, each vs truth."""
    from openhcs_nb.functions._relate import match_f1

    lines = []
    for name, a, b, truth in (
        ("nuclei", mine.nuclei, theirs.nuclei, field.truth_nuclei),
        ("cells", mine.cells, theirs.cells, field.truth_cells),
    ):
        f_ab = match_f1(a, b)[0]
        f_a, f_b = match_f1(a, truth)[0], match_f1(b, truth)[0]
        lines.append(
            f"F1@0.5 {name:<7} ours~skimage {f_ab:.3f}  ours~truth {f_a:.3f}  "
            f"skimage~truth {f_b:.3f}  (ours {int(a.max())}, skimage "
            f"{int(b.max())}, truth {int(truth.max())})"
        )
    return lines


def report(size: int, repeats: int, clock_name: str, confluence: float) -> None:
    """Benchmark one field size and print its table."""
    field = make_field(size, confluence)
    mine, theirs, ours_t, sk_t = run(field, repeats, CLOCKS[clock_name])
    print(
        f"\nfield {size}x{size} (confluence {confluence}), median of {repeats} "
        f"interleaved runs, {clock_name} time, 1 BLAS thread"
    )
    print(f"{'step':<28}{'ours ms':>10}{'skimage ms':>12}{'ratio':>8}")
    for key in ours_t:
        a, b = ours_t[key] * 1e3, sk_t[key] * 1e3
        print(f"{key:<28}{a:>10.1f}{b:>12.1f}{a / b:>8.2f}")
    print(NOTES)
    ratio = ours_t["total"] / sk_t["total"]
    print(f"ratio ours/skimage (chain, {size}): {ratio:.3f}")
    for line in agreement(mine, theirs, field):
        print(line)
    print(check_outputs(field, mine), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse the options, then report each size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs="+", default=[1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--confluence", type=float, default=0.5)
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: process CPU time, robust on a shared host; wall: elapsed",
    )
    args = parser.parse_args(argv)
    for size in args.size:
        report(size, args.repeats, args.clock, args.confluence)


if __name__ == "__main__":
    main()
