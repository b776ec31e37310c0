"""Helpers that turn TOML values, environment text and msgspec errors into config.

Kept apart from :mod:`openhcs_nb.server.config` so that module holds only the
settings and their rules. Nothing here knows the settings by name: each helper
works from the msgspec type of a field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_UNKNOWN = re.compile(r"^Object contains unknown field `(.+)`$")
_WIRE_NAMES = {"`object`": "a table", "`array`": "a list"}
_MISSING = object()


def as_path(text: str, base: Path) -> Path:
    """Expand ``~`` and make ``text`` absolute against ``base``, normalised."""
    return Path(os.path.normpath(base / Path(text).expanduser()))


def path_hook(base: Path) -> Callable[[type, Any], Any]:
    """A msgspec ``dec_hook`` that reads path strings relative to ``base``.

    Values that are already ``Path`` (environment overrides, resolved against
    the working directory) pass through unchanged.
    """

    def hook(kind: type, value: Any) -> Any:
        if kind is Path and isinstance(value, Path):
            return value
        if kind is Path and isinstance(value, str):
            return as_path(value, base)
        raise NotImplementedError  # msgspec reports "Expected `Path`, got ..."

    return hook


def unwrap(info: mi.Type) -> mi.Type:
    """Strip ``Annotated`` metadata, keeping the value type."""
    while isinstance(info, mi.Metadata):
        info = info.type
    return info


def is_optional(info: mi.Type) -> bool:
    """Whether a field accepts None (``X | None``), so an empty value unsets it."""
    info = unwrap(info)
    return isinstance(info, mi.UnionType) and any(
        isinstance(t, mi.NoneType) for t in info.types
    )


def env_value(info: mi.Type, text: str) -> Any:
    """Convert environment text to a builtin value for a field of type ``info``.

    Bounds are not checked here: the converted value joins the file's values and
    msgspec checks them all at once.

    Raises
    ------
    ValueError
        The text is not of the field's type; the message says what was expected.
    """
    info = unwrap(info)
    stripped = text.strip()
    if isinstance(info, mi.UnionType):  # the config only has `X | None`
        if not stripped:
            return None
        info = unwrap(next(t for t in info.types if not isinstance(t, mi.NoneType)))
    if isinstance(info, (mi.VarTupleType, mi.ListType)):
        items = [item.strip() for item in stripped.split(",") if item.strip()]
        return [env_value(info.item_type, item) for item in items]
    if isinstance(info, mi.BoolType):
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        msg = f"expected a boolean (true/false, 1/0, yes/no, on/off), got {text!r}"
        raise ValueError(msg)
    if isinstance(info, (mi.IntType, mi.FloatType)):
        kind = int if isinstance(info, mi.IntType) else float
        try:
            return kind(stripped)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise ValueError(f"expected {expected}, got {text!r}") from None
    if isinstance(info, mi.CustomType) and info.cls is Path:
        return as_path(stripped, Path.cwd())
    return text


def error_path(error: msgspec.ValidationError) -> tuple[list[str | int], str]:
    """Split msgspec's ``"<reason> - at `$.a.b[1]`"`` into the path and the reason.

    An unknown field's name is appended to the path, so the path always ends at
    the key that is wrong.
    """
    reason, sep, at = str(error).partition(" - at `")
    parts: list[str | int] = [
        name if name else int(index)
        for name, index in _PATH_PART.findall(at.rstrip("`") if sep else "")
    ]
    unknown = _UNKNOWN.match(reason)
    if unknown:
        parts.append(unknown.group(1))
        reason = "unknown"
    return parts, reason


def readable(reason: str, value: Any) -> str:
    """Reword msgspec's reason in TOML words, with the offending value when known."""
    for wire, word in _WIRE_NAMES.items():
        reason = reason.replace(wire, word)
    reason = reason[:1].lower() + reason[1:]
    if value is _MISSING:
        return reason
    shown = str(value) if isinstance(value, Path) else repr(value)
    return f"{reason} ({shown})" if ", got" in reason else f"{reason}, got {shown}"


def lookup(raw: Any, parts: list[str | int]) -> Any:
    """The raw value at ``parts``, or a sentinel when the path does not lead there."""
    for part in parts:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return raw
