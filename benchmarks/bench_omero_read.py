# ruff: noqa: N802 - servant and gateway methods mirror omero-py names
"""Reading one well of an OMERO plate: direct file paths vs the Ice fallback.

Run ``python benchmarks/bench_omero_read.py [--size 1080] [--fields 9]
[--channels 4] [--repeats 3]``.

The script writes a one-well plate twice into a temporary binary repository
laid out like OMERO's: as a multi-image OME-TIFF in ``ManagedRepository`` (the
``original`` path) and as ROMIO buffers under ``Pixels/Dir-.../`` (the
``romio`` path). It then reads the whole well with ``OmeroPlate.read_well``
through each path and through ``ice``.

The Ice fallback is emulated honestly: a separate process runs a real Ice
servant of ``omero.api.RawPixelsStore`` (omero-py's own Slice definitions,
zeroc-ice 3.6) on 127.0.0.1, and the plate talks to it through a real
``RawPixelsStorePrx``: one TCP round trip and one Ice marshalling of a
big-endian plane per ``getPlane``, exactly like the production fallback. The
servant serves planes from the ROMIO buffer through a memory map, so the cost
it adds on the server side is a page-cache copy. A real OMERO.server adds
more (authorisation, Hibernate, and for imported files a Bio-Formats decode),
so the ratios printed here are a LOWER bound on what the direct paths save.

Metadata comes from the thin OMERO double of ``tests/omero`` (not timed). All
files are in the page cache when read (written just before), for every path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests" / "omero"
ICE_PROPS = {"Ice.MessageSizeMax": "65536"}  # KiB, OMERO's client default


def build(root: Path, size: int, fields: int, channels: int) -> Path:
    """Write the plate's files and a double description; return the latter."""
    import tifffile

    from openhcs_nb.plates._omero_pixels import romio_path

    rng = np.random.default_rng(0)
    managed = root / "ManagedRepository" / "user_2/2026-11/24/10-22-33.123"
    managed.mkdir(parents=True)
    (root / "truth").mkdir()
    images, samples = [], []
    tiff = managed / "well.ome.tiff"
    with tifffile.TiffWriter(tiff, ome=True, bigtiff=True) as writer:
        for field_ in range(fields):
            image_id, pixels_id = 2_000_001 + field_, 1_234_567 + field_
            data = rng.integers(0, 4096, (1, channels, 1, size, size), dtype=np.uint16)
            writer.write(data[0, :, 0], metadata={"axes": "CYX"})
            path = romio_path(root, pixels_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            data.astype(">u2").tofile(path)
            np.save(root / "truth" / f"{image_id}.npy", data)
            images.append(
                {
                    "id": image_id,
                    "name": f"field {field_}",
                    "series": field_,
                    "fileset": 5001,
                    "group": 3,
                    "truth": f"truth/{image_id}.npy",
                    "pixels": {
                        "id": pixels_id,
                        "x": size,
                        "y": size,
                        "z": 1,
                        "c": channels,
                        "t": 1,
                        "type": "uint16",
                        "order": "XYZCT",
                    },
                    "channels": [f"ch{c}" for c in range(channels)],
                }
            )
            samples.append(
                {"id": 7000 + field_, "image": image_id, "acquisition": None}
            )
    rel = tiff.relative_to(root / "ManagedRepository")
    description = {
        "users": {"bench": {"id": 2, "groups": [3]}},
        "groups": {"3": {"name": "bench", "perms": "rwra--"}},
        "sessions": {"bench-key-000000000000": "bench"},
        "plates": [
            {
                "id": 1,
                "name": "bench",
                "group": 3,
                "owner": 2,
                "rows": 1,
                "columns": 1,
                "acquisitions": {},
                "wells": [{"id": 10, "row": 0, "column": 0, "samples": samples}],
            }
        ],
        "images": images,
        "filesets": [
            {
                "id": 5001,
                "files": [{"id": 1, "path": f"{rel.parent}/", "name": rel.name}],
            }
        ],
    }
    path = root / "double.json"
    path.write_text(json.dumps(description))
    return path


def serve(root: Path, ready: Path) -> None:
    """The Ice server process: a RawPixelsStore servant over ROMIO memmaps."""
    import Ice
    import omero
    import omero.clients
    import omero_api_RawPixelsStore_ice  # noqa: F401 - defines the servant base

    from openhcs_nb.plates._omero_pixels import romio_path

    doc = json.loads((root / "double.json").read_text())
    shapes = {i["pixels"]["id"]: i["pixels"] for i in doc["images"]}

    class Store(omero.api.RawPixelsStore):
        def __init__(self) -> None:
            self.map: Any = None

        def setPixelsId_async(self, cb, pixels_id, bypass, current=None):
            px = shapes[pixels_id]
            shape = (px["t"], px["c"], px["z"], px["y"], px["x"])
            self.map = np.memmap(romio_path(root, pixels_id), ">u2", "r", shape=shape)
            cb.ice_response()

        def getPlane_async(self, cb, z, c, t, current=None):
            cb.ice_response(self.map[t, c, z].tobytes())

        def close_async(self, cb, current=None):
            cb.ice_response()

    init = Ice.InitializationData()
    init.properties = Ice.createProperties()
    for key, value in ICE_PROPS.items():
        init.properties.setProperty(key, value)
    communicator = Ice.initialize(init)
    adapter = communicator.createObjectAdapterWithEndpoints("bench", "tcp -h 127.0.0.1")
    proxy = adapter.add(Store(), Ice.stringToIdentity("rps"))
    adapter.activate()
    ready.write_text(communicator.proxyToString(proxy))
    communicator.waitForShutdown()


def ice_client(proxy_text: str) -> tuple[Any, Any]:
    import Ice
    import omero
    import omero.clients
    import omero_api_RawPixelsStore_ice  # noqa: F401

    init = Ice.InitializationData()
    init.properties = Ice.createProperties()
    for key, value in ICE_PROPS.items():
        init.properties.setProperty(key, value)
    communicator = Ice.initialize(init)
    prx = omero.api.RawPixelsStorePrx.uncheckedCast(
        communicator.stringToProxy(proxy_text)
    )
    return communicator, prx


def time_well(
    description: Path, paths: tuple[str, ...], store: Any, repeats: int
) -> tuple[float, np.ndarray, dict[str, int]]:
    sys.path.insert(0, str(TESTS))
    from omero_double import DoubleGateway, DoubleServer

    from openhcs_nb.omero.session import join_session
    from openhcs_nb.omero.settings import OmeroSettings
    from openhcs_nb.plates.omero import open_omero_plate

    server = DoubleServer(description)

    class Gateway(DoubleGateway):
        def createRawPixelsStore(self) -> Any:  # the real Ice proxy
            return store

    settings = OmeroSettings(
        host="bench", data_dir=description.parent, pixel_paths=paths
    )
    session = join_session(
        "bench-key-000000000000",
        config=settings,
        factory=lambda h, p: Gateway(server, h, p),
    )
    times, data, counts = [], None, {}
    for _ in range(repeats):
        plate = open_omero_plate("omero:1", session=session)
        start = time.perf_counter()
        data = plate.read_well("A01").data
        times.append(time.perf_counter() - start)
        counts = plate.planes_read
        plate.close()
    return statistics.median(times), data, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1080)
    parser.add_argument("--fields", type=int, default=9)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--serve", nargs=2, metavar=("ROOT", "READY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), Path(args.serve[1]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-omero-") as tmp:
        root = Path(tmp)
        description = build(root, args.size, args.fields, args.channels)
        ready = root / "ready"
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(root), str(ready)],
            env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        )
        try:
            while not ready.exists():
                time.sleep(0.05)
            communicator, store = ice_client(ready.read_text())
            planes = args.fields * args.channels
            mib = planes * args.size**2 * 2 / 2**20
            # Round-trip cost of a tiny call, for the per-plane overhead.
            store.setPixelsId(1_234_567, False)
            start = time.perf_counter()
            for _ in range(200):
                store.ice_ping()
            ping_ms = (time.perf_counter() - start) / 200 * 1000
            results = {}
            for label, paths in (
                ("original", ("original",)),
                ("romio", ("romio",)),
                ("ice", ("ice",)),
            ):
                seconds, data, counts = time_well(
                    description, paths, store, args.repeats
                )
                results[label] = (seconds, data, counts)
            communicator.destroy()
        finally:
            child.terminate()
            child.wait()
    reference = results["ice"][1]
    print(
        f"one well: {args.fields} fields x {args.channels} channels of "
        f"{args.size}x{args.size} uint16 = {planes} planes, {mib:.0f} MiB; "
        f"median of {args.repeats}"
    )
    print(
        f"Ice: real RawPixelsStore servant in another process on 127.0.0.1, "
        f"one getPlane round trip per plane; empty round trip {ping_ms:.3f} ms"
    )
    print(f"{'path':<9} {'seconds':>8} {'MiB/s':>8} {'ice / path':>11}  identical")
    for label, (seconds, data, counts) in results.items():
        same = data is not None and np.array_equal(data, reference)
        print(
            f"{label:<9} {seconds:8.3f} {mib / seconds:8.0f} "
            f"{results['ice'][0] / seconds:10.1f}x  {same}  planes={counts}"
        )


if __name__ == "__main__":
    main()
