"""Time each step of the cells pipeline against scikit-image doing the same work.

Run ``python benchmarks/bench_cells.py [--size 1024 2048] [--repeats 3]``.

A realistic demo-style field (second well of a 1 x 2 plate: clumped, textured
nuclei, debris, saturation, uneven light, shot noise) and its truth masks go
through the default pipeline's object steps, with its parameters, twice:

- primary: ``identify_primary`` (declump by shape) vs gaussian,
  threshold_otsu, EDT (smoothed, as ours), peak_local_max(labels=),
  watershed(-distance), binary_fill_holes per object, remove_small_objects
  and the same largest-size cut.
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

The field and the shared parameters are in ``_cells_field.py``, the
scikit-image chain in ``_cells_reference.py``; this file times ours, runs
both and reports.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402 - after pinning BLAS threads
from _cells_field import (  # noqa: E402
    CELL_DISTANCE,
    CHANNELS,
    DECLUMP_SIGMA,
    MAX_SIZE,
    MIN_DISTANCE,
    MIN_SIZE,
    REGULARIZATION,
    SMOOTHING,
    TEXTURE_SCALE,
    Clock,
    Field,
    Outcome,
    Times,
    make_field,
    timed_on,
)
from _cells_reference import (  # noqa: E402
    direct_quality,
    naive_haralick,
    sk_measure,
    skimage_chain,
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

CLOCKS: dict[str, Clock] = {"cpu": time.process_time, "wall": time.perf_counter}


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
