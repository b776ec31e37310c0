"""Viewer latency on loopback: a click to the full field, a zoom to sharp tiles.

Run: python benchmarks/bench_viewer.py [--size 2048] [--repeats 30] [--inflight 6]
     [--coarse-size 1024] [--coarse-demo]

(a) "click a well to its full-resolution field": ``Execution.fetch_full`` of a
    finished well's field, against ``ResultsStore.read_field`` in process;
(b) "zoom to sharp tiles": the level-0 tiles covering a 1024 x 768 viewport,
    requested ``--inflight`` at a time as the viewer does, against reading the
    same regions from the plate in process.

(c) "zoom out to a coarse level": the first level-2 tile (256 x 256) of each
    field of a plate with demo-sized fields (``--coarse-size``, 1024² as the
    demo plate; ``--coarse-demo``: wells A01-A03 of the demo plate itself),
    served from the level the OME-Zarr plate stores, against the same plate
    with its stored levels hidden, where the server reads the full plane and
    block-averages it (either way the level is cached: warm = a second ask).

(a) and (b) print p50 and p95 in milliseconds over ``--repeats`` and the
ratio remote / in-process of the p50s; (c) prints them over the plate's
fields. The server's command and tile rate limits are off unless ``--rate``
is given (it sets both ``requests_per_second`` and ``tiles_per_second``): a
viewer that pans faster than the tile rate gets ``rate_limited`` answers for
the tiles over it, while its other commands are still served.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.client import connect
from openhcs_nb.plates import open_plate
from openhcs_nb.plates.demo import demo_plate
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate
from openhcs_nb.results.store import ResultsStore
from openhcs_nb.server.local import LocalServer
from openhcs_nb.server.tiles import read_region

VIEWPORT = (768, 1024)  # (height, width) of the viewer's canvas
TILE = 256
WELL = "A01"
PLATE = "viewer.ome.zarr"
STORED = "coarse.ome.zarr"  # (c): the plate as written, with its stored levels
COMPUTED = "coarse-level0.ome.zarr"  # (c): the same pixels, level 0 only


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """p50 and p95 of ``action`` in milliseconds, after one warm-up call."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def viewport_tiles(shape: tuple[int, int]) -> list[tuple[int, int]]:
    """``(ty, tx)`` of the level-0 tiles under a viewport at the field's corner."""
    h, w = min(shape[0], VIEWPORT[0]), min(shape[1], VIEWPORT[1])
    return [(ty, tx) for ty in range(-(-h // TILE)) for tx in range(-(-w // TILE))]


def free_port() -> int:
    """A loopback port nothing listens on now (the server binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(tmp: Path, rate: float) -> Path:
    """A one-worker server on free loopback ports serving ``tmp/plates``."""
    path = tmp / "server.toml"
    path.write_text(
        f"""
[server]
command_address = "tcp://127.0.0.1:{free_port()}"
event_address = "tcp://127.0.0.1:{free_port()}"

[plates]
roots = ["{tmp / "plates"}"]

[results]
root = "{tmp / "res"}"

[limits]
requests_per_second = {rate}
tiles_per_second = {rate}

[execution]
workers = 1
"""
    )
    return path


def report(label: str, remote: tuple[float, float], local: tuple[float, float]) -> None:
    print(
        f"{label}: remote p50 {remote[0]:.2f} ms p95 {remote[1]:.2f} ms | "
        f"in-process p50 {local[0]:.2f} ms p95 {local[1]:.2f} ms | "
        f"ratio {remote[0] / local[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="field side, pixels")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--inflight", type=int, default=6)
    parser.add_argument(
        "--coarse-size", type=int, default=1024, help="field side for (c)"
    )
    parser.add_argument(
        "--coarse-demo",
        action="store_true",
        help="(c) on wells A01-A03 of the demo plate (generated if not cached)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="the server's per-user requests/s and tiles/s (0 = off, as timed)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        spec = SyntheticPlateSpec(
            rows=1, columns=1, fields=1, shape=(args.size, args.size), seed=3
        )
        generate_plate(spec, tmp / "plates" / PLATE, format="ome-zarr")
        coarse = write_coarse_plates(tmp / "plates", args.coarse_size, args.coarse_demo)
        plate = open_plate(tmp / "plates" / PLATE)
        config = write_config(tmp, args.rate)
        serve = ["--config", str(config), "--log-level", "WARNING"]
        with LocalServer(serve, tmp / "srv") as server:
            conn = connect(server.address, timeout=60.0)
            run = conn.submit(nuclei_count_pipeline(), PLATE, wells=[WELL])
            run.result(timeout=600)
            store = ResultsStore(tmp / "res" / run.id, open_input=lambda _r: plate)
            print(f"field {args.size}x{args.size}, {args.repeats} repeats")
            report(
                "click to full field",
                timed(lambda: run.fetch_full(WELL), args.repeats),
                timed(lambda: store.read_field(WELL, 0), args.repeats),
            )
            tiles = viewport_tiles(plate.shape)
            name = f"image/{plate.channels[0]}"
            with ThreadPoolExecutor(args.inflight) as pool:

                def remote() -> list[np.ndarray]:
                    calls = [
                        pool.submit(conn.tile, PLATE, WELL, 0, name, 0, ty, tx, TILE)
                        for ty, tx in tiles
                    ]
                    return [c.result() for c in calls]

                def local() -> list[np.ndarray]:
                    return [
                        read_region(
                            plate,
                            WELL,
                            0,
                            0,
                            slice(ty * TILE, (ty + 1) * TILE),
                            slice(tx * TILE, (tx + 1) * TILE),
                        )
                        for ty, tx in tiles
                    ]

                report(
                    f"zoom to sharp tiles ({len(tiles)} tiles, "
                    f"{args.inflight} in flight)",
                    timed(remote, args.repeats),
                    timed(local, args.repeats),
                )
            coarse_plate = open_plate(tmp / "plates" / STORED)
            print(
                f"coarse tiles: {'demo plate' if args.coarse_demo else 'synthetic'}, "
                f"fields {coarse_plate.shape[0]}x{coarse_plate.shape[1]}"
            )
            report_coarse(conn, coarse, f"image/{coarse_plate.channels[0]}")
            conn.close()


def write_coarse_plates(root: Path, size: int, demo: bool) -> list[tuple[str, int]]:
    """Two copies of one plate: with its stored levels, and with them hidden.

    ``demo``: wells A01-A03 of the demo plate (generated first if not cached),
    else a synthetic plate of 3 wells with ``size``² fields. Returns the
    ``(well, field)`` pairs.
    """
    if demo:
        source = Path(demo_plate().ref)
        for name in (".zattrs", ".zgroup", "A/.zgroup"):
            (root / STORED / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / name, root / STORED / name)
        for column in (1, 2, 3):  # the other wells are listed but missing
            shutil.copytree(source / f"A/{column}", root / STORED / f"A/{column}")
    else:
        spec = SyntheticPlateSpec(
            rows=1, columns=3, fields=4, shape=(size, size), dtype="uint16", seed=5
        )
        generate_plate(spec, root / STORED, format="ome-zarr")
    shutil.copytree(root / STORED, root / COMPUTED)
    for attrs in (root / COMPUTED).glob("A/*/*/.zattrs"):
        doc = json.loads(attrs.read_text())
        for image in doc["multiscales"]:
            image["datasets"] = image["datasets"][:1]  # level 0 only
        attrs.write_text(json.dumps(doc))
    fields = open_plate(root / STORED).layout.fields
    return [(f"A{c:02d}", f) for c in range(1, 4) for f in range(fields)]


def report_coarse(conn: object, fields: list[tuple[str, int]], name: str) -> None:
    """(c): a level-2 tile per field, stored level against computed, cold and warm."""
    for plate in (STORED, COMPUTED):
        figures = []
        for attempt in ("cold", "warm"):
            times = []
            for well, site in fields:
                start = time.perf_counter()
                conn.tile(plate, well, site, name, 2, 0, 0, TILE)  # type: ignore[attr-defined]
                times.append((time.perf_counter() - start) * 1000)
            p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
            figures.append(f"{attempt} p50 {p50:.2f} ms p95 {p95:.2f} ms")
        how = "stored level" if plate == STORED else "computed from level 0"
        print(
            f"coarse tile, level 2, {how} ({len(fields)} fields): "
            + " | ".join(figures)
        )


if __name__ == "__main__":
    main()
