"""Compile time of the default pipeline against a 384-well plate (goal: < 1 s).

Run: python benchmarks/bench_compile.py
Compiling never reads pixels, so a layout-only plate stands in for the pixels;
opening a real 384-well OME-Zarr plate is timed as well, since a user pays both.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from openhcs_nb import compile_pipeline, nuclei_count_pipeline, open_plate
from openhcs_nb.plates.model import Plate, PlateLayout, row_letters, well_name
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate


class LayoutPlate(Plate):
    def read_image(self, well, site, channel, z=0, t=0):
        raise AssertionError("compile must not read pixels")


def layout_384() -> Plate:
    rows = tuple(row_letters(i) for i in range(16))
    wells = tuple(well_name(r, c) for r in rows for c in range(1, 25))
    layout = PlateLayout(
        "bench",
        rows,
        tuple(range(1, 25)),
        wells,
        9,
        ("DAPI", "GFP", "RFP", "Cy5"),
        1,
        1,
        "uint16",
        (2048, 2048),
    )
    return LayoutPlate("bench", layout)


def timed(fn, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    pipeline = nuclei_count_pipeline()
    plate = layout_384()
    compile_s = timed(lambda: compile_pipeline(pipeline, plate))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p384.ome.zarr"
        spec = SyntheticPlateSpec(
            rows=16,
            columns=24,
            fields=1,
            channels=("DAPI", "GFP"),
            shape=(16, 16),
            min_nuclei=0,
            max_nuclei=0,
        )
        generate_plate(spec, path)
        open_s = timed(lambda: open_plate(path), repeats=3)
        real = open_plate(path)
        real_s = timed(lambda: compile_pipeline(pipeline, real))
    print("compile, default pipeline, 384 wells x 9 fields x 4 channels")
    print(f"  compile (layout only)      {compile_s * 1000:8.2f} ms   goal < 1000 ms")
    print(f"  open 384-well OME-Zarr     {open_s * 1000:8.2f} ms")
    print(f"  compile (real plate)       {real_s * 1000:8.2f} ms")
    print(f"  ratio compile / goal       {compile_s / 1.0:8.4f}")


if __name__ == "__main__":
    main()
