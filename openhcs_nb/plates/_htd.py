"""Parsing MetaXpress/ImageXpress ``.HTD`` plate description files.

An HTD file is text with one ``"Key", value, value...`` record per line, values
being quoted strings, numbers or ``TRUE``/``FALSE``. Files in the wild vary in
encoding, spacing and which keys they carry, so every key is optional and any
line that does not parse is skipped: the image files are the final word on what
exists, the HTD only adds the plate size and wavelength names.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from openhcs_nb.plates._containment import Confinement, read_bytes

Value = str | int | float | bool


@dataclass(frozen=True)
class HtdInfo:
    """What an HTD file says, each item None when it does not say."""

    x_wells: int | None = None
    y_wells: int | None = None
    sites: int | None = None
    wavelengths: int | None = None
    z_steps: int | None = None
    timepoints: int | None = None
    wave_names: dict[int, str] = field(default_factory=dict)


def _value(text: str) -> Value:
    text = text.strip()
    upper = text.upper()
    if upper in ("TRUE", "FALSE"):
        return upper == "TRUE"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_records(text: str) -> dict[str, list[Value]]:
    """``{"XWells": [12], "WaveName1": ["DAPI"], ...}``; the last record wins."""
    records: dict[str, list[Value]] = {}
    for row in csv.reader(text.splitlines(), skipinitialspace=True):
        if not row or not row[0].strip():
            continue
        records[row[0].strip()] = [_value(v) for v in row[1:]]
    return records


def _int(records: dict[str, list[Value]], key: str) -> int | None:
    values = records.get(key)
    if not values or isinstance(values[0], bool) or not isinstance(values[0], int):
        return None
    return values[0] if values[0] > 0 else None


def _flag(records: dict[str, list[Value]], key: str) -> bool | None:
    values = records.get(key)
    return values[0] if values and isinstance(values[0], bool) else None


def parse_htd(text: str) -> HtdInfo:
    """Interpret an HTD file's text (keys are case-sensitive, as written)."""
    rec = parse_records(text)
    sites = None
    if _flag(rec, "Sites") is not False:
        x, y = _int(rec, "XSites"), _int(rec, "YSites")
        sites = x * y if x and y else None
    elif "Sites" in rec:
        sites = 1
    z_steps = _int(rec, "NZSteps") if _flag(rec, "ZSeries") is not False else 1
    names: dict[int, str] = {}
    for key, values in rec.items():
        if key.startswith("WaveName") and key[8:].isdigit() and values:
            name = str(values[0]).strip()
            if name:
                names[int(key[8:])] = name
    return HtdInfo(
        x_wells=_int(rec, "XWells"),
        y_wells=_int(rec, "YWells"),
        sites=sites,
        wavelengths=_int(rec, "NWavelengths"),
        z_steps=z_steps,
        timepoints=_int(rec, "TimePoints"),
        wave_names=names,
    )


def find_htd(folder: Path) -> Path | None:
    """The first ``*.HTD`` file (any case) directly in ``folder``, by name."""
    found = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".htd"
    )
    return found[0] if found else None


def read_htd(folder: Path, confine: Confinement | None = None) -> HtdInfo | None:
    """Parse the folder's HTD file, or None when there is none.

    Files that are not UTF-8 are read as Latin-1, which never fails. With
    ``confine`` the file is read only when it lies inside the plate roots: its
    wavelength names reach the client, so a linked file would leak its text.

    Raises
    ------
    UnknownPlateError
        With ``confine``: the HTD file leads outside the plate roots.
    """
    path = find_htd(folder)
    if path is None:
        return None
    raw = read_bytes(confine, path, str(folder))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_htd(text)
