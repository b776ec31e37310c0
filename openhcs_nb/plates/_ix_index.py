"""Finding the image files of an ImageXpress folder in one directory walk.

Accepted layout (each folder level optional)::

    <root>/[TimePoint_<t>/][ZStep_<z>/]<well>[_s<site>][_w<wave>][suffix].tif

``suffix`` is either ``_anything``/``-anything`` or a MetaXpress UUID written
straight after the wavelength (``A01_s1_w1<UUID>.tif``). Thumbnails
(``..._thumb...``) are skipped. When ``ZStep_*`` folders exist beside images,
the images beside them are projections and are skipped too. Without
``TimePoint_*`` folders the images sit in the root (timepoint 1).

With a confinement, every image file and folder the index uses that is a
symlink must lead inside the plate roots. Only symlinks cost a check (the
directory entry says whether it is one), so large folders index as fast.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from openhcs_nb.errors import PlateError
from openhcs_nb.plates._containment import Confinement
from openhcs_nb.plates.model import split_well, well_name

_UUID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"
IMAGE_NAME = re.compile(
    rf"""^(?P<well>[A-Z]{{1,2}}\d{{1,3}})
    (?:_s(?P<site>\d+))?
    (?:_w(?P<wave>\d+?))?
    (?P<suffix>[_-].*|{_UUID})?
    \.tiff?$""",
    re.IGNORECASE | re.VERBOSE,
)
_TIME_DIR = re.compile(r"^TimePoint_(\d+)$", re.IGNORECASE)
_Z_DIR = re.compile(r"^ZStep_(\d+)$", re.IGNORECASE)

Key = tuple[str, int, int, int, int]  # well, site, wave, z, t (numbers as written)


@dataclass(frozen=True)
class FileIndex:
    """Every plane's file, keyed by numbers as they appear in the names."""

    files: dict[Key, str]  # key -> path relative to the root
    wells: tuple[str, ...]
    sites: tuple[int, ...]
    waves: tuple[int, ...]
    z_steps: tuple[int, ...]
    timepoints: tuple[int, ...]


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def _images(entries: list[os.DirEntry[str]]) -> list[tuple[str, re.Match[str]]]:
    found = []
    for entry in entries:
        match = IMAGE_NAME.match(entry.name)
        if match and "thumb" not in (match["suffix"] or "").lower() and entry.is_file():
            found.append((entry.name, match))
    return found


def _dirs(
    entries: list[os.DirEntry[str]], pattern: re.Pattern[str]
) -> list[tuple[int, str]]:
    return [
        (int(m.group(1)), e.name)
        for e in entries
        if (m := pattern.match(e.name)) and e.is_dir()
    ]


def looks_like_imagexpress(root: Path) -> bool:
    """Cheap test: an HTD file, a TimePoint folder or a well-named TIFF at the top."""
    try:
        entries = _entries(root)
    except OSError:
        return False
    for entry in entries:
        name = entry.name
        if name.lower().endswith(".htd") and entry.is_file():
            return True
        if _TIME_DIR.match(name) and entry.is_dir():
            return True
    return bool(_images(entries))


def _guard(
    entries: list[os.DirEntry[str]], confine: Confinement | None, ref: str
) -> None:
    """Refuse a used entry that is a symlink leading outside the plate roots."""
    if confine is None:
        return
    for entry in entries:
        if entry.is_symlink():
            confine.check(entry.path, ref)


def scan(root: Path, confine: Confinement | None = None) -> FileIndex:
    """Walk ``root`` once and index every image file.

    Raises
    ------
    UnknownPlateError
        With ``confine``: an image file or folder links outside the plate roots.
    PlateError
        Two files claim the same plane, or no image file was found.
    """
    ref = str(root)
    entries = _entries(root)
    _guard([e for e in entries if _TIME_DIR.match(e.name)], confine, ref)
    times = _dirs(entries, _TIME_DIR)
    levels = [(t, name, _entries(root / name)) for t, name in times] or [
        (1, "", entries)
    ]
    files: dict[Key, str] = {}
    for t, t_dir, t_entries in levels:
        _guard([e for e in t_entries if _Z_DIR.match(e.name)], confine, ref)
        z_dirs = _dirs(t_entries, _Z_DIR)
        planes = [(z, f"{t_dir}/{name}".lstrip("/")) for z, name in z_dirs]
        groups = [(z, rel, _entries(root / rel)) for z, rel in planes] or [
            (1, t_dir, t_entries)
        ]
        for z, rel, z_entries in groups:
            _guard([e for e in z_entries if IMAGE_NAME.match(e.name)], confine, ref)
            for name, match in _images(z_entries):
                row, col = split_well(match["well"])
                key = (
                    well_name(row, col),
                    int(match["site"] or 1),
                    int(match["wave"] or 1),
                    z,
                    t,
                )
                path = f"{rel}/{name}".lstrip("/")
                if key in files:
                    raise PlateError(
                        f"{root}: two files for well {key[0]} site {key[1]} "
                        f"wavelength {key[2]} z {z} t {t}: {files[key]!r} and {path!r}"
                    )
                files[key] = path
    if not files:
        raise PlateError(f"{root}: no ImageXpress image files (like A01_s1_w1.tif)")
    return FileIndex(
        files=files,
        wells=tuple(sorted({k[0] for k in files}, key=_well_order)),
        sites=tuple(sorted({k[1] for k in files})),
        waves=tuple(sorted({k[2] for k in files})),
        z_steps=tuple(sorted({k[3] for k in files})),
        timepoints=tuple(sorted({k[4] for k in files})),
    )


def _well_order(name: str) -> tuple[int, str, int]:
    row, col = split_well(name)
    return len(row), row, col
