"""The demo plate: a fixed synthetic plate, generated once into a cache folder.

``demo_plate()`` is what ``open_plate("demo")`` returns. The plate is written
to a private temporary folder first and moved into place with one rename, so
an interrupted generation never leaves a half plate under the final name, and
two processes generating at once both end up with the same complete plate
(the bytes depend only on :data:`DEMO_SPEC`). Bump :data:`DEMO_VERSION` when
the spec or the generator changes, so old caches are not reused.

The first generation takes a while, so it says what it is doing and how far
along it is, one well at a time: a progress bar where someone is watching, an
INFO log line per well elsewhere (:mod:`openhcs_nb._progress`).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from openhcs_nb._progress import Progress, make_bar
from openhcs_nb.plates._truth_masks import masks_dir
from openhcs_nb.plates.model import Plate
from openhcs_nb.plates.ome_zarr import open_ome_zarr_plate
from openhcs_nb.plates.synthetic import (
    GroundTruth,
    SyntheticPlateSpec,
    generate_plate,
    load_ground_truth,
    truth_path,
)

DEMO_VERSION = 2  # 2: the realistic style, with truth masks
DEMO_SPEC = SyntheticPlateSpec(
    rows=4,
    columns=6,
    fields=4,
    channels=("DAPI", "Cytoplasm"),
    shape=(1024, 1024),
    dtype="uint16",
    seed=20240611,
    min_nuclei=40,
    max_nuclei=900,  # the last column is confluent
    radius=(10.0, 15.0),
    touching_fraction=0.15,
    noise=20.0,
    illumination=0.5,
    name="openhcs-nb demo plate",
    style="realistic",
    clump_fraction=0.25,
    confluence=1.0,
    out_of_focus=0.05,
    debris=4.0,
    saturated=0.01,
)
DEMO_MB = 350  # measured on disk for version 2: plate plus truth masks
_STALE_S = 3600.0  # temporary folders older than this are from dead runs


def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir``, else ``$OPENHCS_NB_CACHE``, else ``~/.cache/openhcs-nb``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("OPENHCS_NB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "openhcs-nb"


def demo_path(cache_dir: Path | None = None) -> Path:
    """Where the demo plate lives (whether or not it exists yet)."""
    return cache_root(cache_dir) / f"demo-plate-v{DEMO_VERSION}.ome.zarr"


def ensure_plate(
    spec: SyntheticPlateSpec,
    target: Path,
    progress: Progress = None,
    what: str | None = None,
) -> Path:
    """Generate ``spec`` as an OME-Zarr plate at ``target`` unless it is there.

    The plate and its truth file are built in a fresh temporary folder beside
    ``target``; the truth masks (if any) and the truth file are moved first,
    the plate last, so the plate existing means all are complete. If another
    process wins the race, its identical plate is kept and ours is discarded.

    A generation reports each written well to ``progress`` (see
    :mod:`openhcs_nb._progress`; unwatched, it logs), described as
    "generating <what> in <folder>"; ``what`` defaults to the plate's name and
    well count.

    Raises
    ------
    OSError
        The cache folder cannot be created or written.
    """
    truth = truth_path(target, "ome-zarr")
    if target.is_dir() and truth.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    what = what or f"{spec.name!r} ({len(spec.wells)} wells)"
    bar = make_bar(
        progress,
        len(spec.wells),
        f"generating {what} in {target.parent}",
        log_unwatched=True,
    )
    tmp.mkdir()
    try:
        generate_plate(
            spec, tmp / target.name, format="ome-zarr", on_well=lambda _: bar.update()
        )
        _move_masks(
            masks_dir(tmp / target.name, "ome-zarr"), masks_dir(target, "ome-zarr")
        )
        os.replace(truth_path(tmp / target.name, "ome-zarr"), truth)
        try:
            os.rename(tmp / target.name, target)
        except OSError:
            if not target.is_dir():  # not lost to a racing process: a real error
                raise
    finally:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _move_masks(source: Path, target: Path) -> None:
    """Move a fresh truth-mask folder into place, replacing a stale one.

    A racing process may have put its identical folder there first; then ours
    is dropped.
    """
    if not source.is_dir():
        return
    shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(source, target)
    except OSError:
        if not target.is_dir():
            raise


def _remove_stale(target: Path) -> None:
    """Delete temporary folders left by generations that died long ago."""
    cutoff = time.time() - _STALE_S
    for old in target.parent.glob(f".{target.name}.tmp-*"):
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


def _ensure_demo(cache_dir: Path | None, progress: Progress) -> Path:
    """The demo plate's folder, generated with a description a user can read."""
    what = f"the demo plate ({len(DEMO_SPEC.wells)} wells, ~{DEMO_MB} MB)"
    return ensure_plate(DEMO_SPEC, demo_path(cache_dir), progress, what)


def demo_plate(cache_dir: Path | None = None, progress: Progress = None) -> Plate:
    """The demo plate, generated on first use (about 30 s), then reopened.

    ``progress`` shows the first generation well by well (see
    :func:`ensure_plate`).

    Raises
    ------
    OSError
        The cache folder cannot be created or written.
    """
    return open_ome_zarr_plate(_ensure_demo(cache_dir, progress))


def demo_ground_truth(
    cache_dir: Path | None = None, progress: Progress = None
) -> GroundTruth:
    """What was planted in the demo plate (generating it if needed).

    Raises
    ------
    OSError
        The cache folder cannot be created or written.
    """
    return load_ground_truth(_ensure_demo(cache_dir, progress))
