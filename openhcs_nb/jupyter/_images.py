"""Image helpers shared by the widgets: binary packing, compositing, PNG.

Images reach the browser as one binary buffer plus a small JSON description
(``pack_planes``), never as base64. Every plane is little-endian and starts at
a 4-byte aligned offset; intensity planes are ``uint8`` or ``uint16`` (floats
and wide integers are rescaled to ``uint16``), label planes are ``uint32``.

``composite_rgb`` is the reference of what ``static/plate_viewer.js`` draws:
additive colour mixing of the visible channels after a linear contrast
stretch, then labels on top: outlines (a labelled pixel whose 4-neighbour has
another value) or fills at 40% opacity, in the colours ``label_colors`` picks
to stand out from the visible channels. The builder uses it directly for its
before/after PNGs.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Default channel colours, in order: blue, green, magenta, red, yellow, cyan.
CHANNEL_COLORS: tuple[str, ...] = (
    "#3f7fff",
    "#00ff00",
    "#ff00ff",
    "#ff0000",
    "#ffff00",
    "#00ffff",
)
#: Label colours to choose from; see :func:`label_colors`.
LABEL_CANDIDATES: tuple[str, ...] = ("#ffff00", "#00ffff", "#ff00ff", "#ffffff")
#: Opacity of filled labels: the cells show, and so does what is under them.
FILL_OPACITY = 0.4


@dataclass(frozen=True)
class ChannelSetting:
    """How one channel is drawn: colour, visibility and contrast window."""

    color: str
    low: float
    high: float
    visible: bool = True


def split_planes(
    images: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split ``{name: array}`` into (intensity channels, label layers).

    ``"labels/<name>"`` is a label layer called ``<name>``; ``"image/<ch>"``
    (what an execution streams) is channel ``<ch>``; any other name, such as a
    preview's ``"input/DAPI"``, keeps its full name as the channel name.
    """
    channels: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    for name, array in images.items():
        prefix, sep, rest = name.partition("/")
        plane = as_plane(array)
        if sep and prefix == "labels":
            labels[rest] = plane
        elif sep and prefix == "image":
            channels[rest] = plane
        else:
            channels[name] = plane
    return channels, labels


def as_plane(array: Any) -> np.ndarray:
    """A 2-D view of ``array``: leading axes of length 1 dropped, else plane 0."""
    plane = np.asarray(array)
    while plane.ndim > 2:
        plane = plane[0]
    if plane.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {plane.shape}")
    return plane


def display_plane(plane: np.ndarray) -> np.ndarray:
    """``plane`` as little-endian uint8 or uint16, rescaling what does not fit."""
    if plane.dtype == np.bool_:
        return plane.astype("u1")
    if plane.dtype.kind == "u" and plane.dtype.itemsize <= 2:
        return plane.astype(plane.dtype.newbyteorder("<"), copy=False)
    if plane.dtype.kind in "iu" and plane.size:
        lo, hi = int(plane.min()), int(plane.max())
        if lo >= 0 and hi <= 0xFFFF:
            return plane.astype("<u2")
    values = plane.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(plane.shape, "<u2")
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo if hi > lo else 1.0
    scaled = np.nan_to_num((values - lo) / span, nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(scaled, 0.0, 1.0) * 0xFFFF).astype("<u2")


def auto_contrast(plane: np.ndarray) -> tuple[float, float]:
    """A contrast window from the 0.5th to the 99.8th percentile (never empty)."""
    if plane.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(plane, [0.5, 99.8])
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def common_crop(planes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Crop every plane to the smallest height and width among them.

    Previews downsample images by averaging and labels by striding, so the two
    can differ by a pixel; the viewer needs one size.
    """
    if not planes:
        return []
    h = min(p.shape[0] for p in planes)
    w = min(p.shape[1] for p in planes)
    return [p[:h, :w] for p in planes]


def pack_planes(images: Mapping[str, np.ndarray]) -> tuple[bytes, dict[str, Any]]:
    """One binary buffer and its description for the plate viewer.

    The description is ``{"height", "width", "planes": [{"name", "kind",
    "dtype", "offset", "vmax"}]}`` with ``kind`` ``"image"`` or ``"labels"``
    and ``offset`` in bytes from the start of the buffer.
    """
    channels, labels = split_planes(images)
    named = [("image", n, p) for n, p in channels.items()]
    named += [("labels", n, p) for n, p in labels.items()]
    cropped = common_crop([p for _, _, p in named])
    chunks: list[bytes] = []
    planes: list[dict[str, Any]] = []
    offset = 0
    for (kind, name, _), plane in zip(named, cropped, strict=True):
        if kind == "labels":
            data = np.ascontiguousarray(plane.astype("<u4"))
        else:
            data = np.ascontiguousarray(display_plane(plane))
        raw = data.tobytes()
        pad = (-len(raw)) % 4
        planes.append(
            {
                "name": name,
                "kind": kind,
                "dtype": {"u1": "uint8", "u2": "uint16", "u4": "uint32"}[
                    data.dtype.str[1:]
                ],
                "offset": offset,
                "vmax": int(data.max()) if data.size else 0,
            }
        )
        chunks.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    height, width = cropped[0].shape if cropped else (0, 0)
    meta = {"height": int(height), "width": int(width), "planes": planes}
    return b"".join(chunks), meta


def unpack_planes(data: bytes, meta: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The inverse of :func:`pack_planes` (``"labels/<name>"`` for label planes)."""
    h, w = meta["height"], meta["width"]
    dtypes = {"uint8": "<u1", "uint16": "<u2", "uint32": "<u4"}
    out: dict[str, np.ndarray] = {}
    for plane in meta["planes"]:
        dtype = np.dtype(dtypes[plane["dtype"]])
        array = np.frombuffer(data, dtype, count=h * w, offset=plane["offset"])
        key = f"labels/{plane['name']}" if plane["kind"] == "labels" else plane["name"]
        out[key] = array.reshape(h, w)
    return out


def hex_rgb(color: str) -> tuple[int, int, int]:
    """``"#ff8000"`` -> ``(255, 128, 0)``.

    Raises
    ------
    ValueError
        ``color`` is not ``#rrggbb``.
    """
    text = color.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"expected a colour like '#ff8000', got {color!r}")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def label_outlines(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of labelled pixels with a 4-neighbour of another value."""
    edge = np.zeros(labels.shape, bool)
    differs_v = labels[1:, :] != labels[:-1, :]
    differs_h = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= differs_v
    edge[:-1, :] |= differs_v
    edge[:, 1:] |= differs_h
    edge[:, :-1] |= differs_h
    return edge & (labels != 0)


def hue_of(color: str) -> float | None:
    """Hue in degrees ``[0, 360)`` of ``#rrggbb``; ``None`` for a grey.

    Computed step by step as ``colors.js`` does, so both pick the same colours.
    """
    r, g, b = (v / 255 for v in hex_rgb(color))
    hi = max(r, g, b)
    d = hi - min(r, g, b)
    if d == 0:
        return None
    if hi == r:
        hue = math.fmod((g - b) / d, 6)
    elif hi == g:
        hue = (b - r) / d + 2
    else:
        hue = (r - g) / d + 4
    return math.fmod(hue * 60 + 360, 360)


def label_colors(channel_colors: Sequence[str], count: int) -> list[str]:
    """Colours for ``count`` label layers that stand out from the channels.

    Outlines in a channel's own hue vanish into it, so candidates are ranked
    by their smallest hue distance to the visible channels, farthest first
    (greys score 30 degrees, a last resort; ties keep :data:`LABEL_CANDIDATES` order).
    """
    hues = [h for h in map(hue_of, channel_colors) if h is not None]

    def score(color: str) -> float:
        hue = hue_of(color)
        if hue is None or not hues:
            return 30.0 if hue is None else 180.0
        return min(min(abs(hue - x), 360 - abs(hue - x)) for x in hues)

    ranked = [
        c
        for _, _, c in sorted((-score(c), i, c) for i, c in enumerate(LABEL_CANDIDATES))
    ]
    return [ranked[i % len(ranked)] for i in range(count)]


def composite_rgb(
    planes: Sequence[tuple[np.ndarray, ChannelSetting]],
    labels: Sequence[np.ndarray] = (),
    label_mode: str = "outline",
) -> np.ndarray:
    """Mix channels additively into ``(h, w, 3)`` uint8 and draw labels on top.

    Each visible channel adds ``clip((v - low) / (high - low), 0, 1) * colour``;
    label layer ``i`` is drawn in ``label_colors(visible colours)[i]``, as
    outlines, or (``label_mode="filled"``) over every labelled pixel at
    :data:`FILL_OPACITY`.
    """
    if label_mode not in ("outline", "filled"):
        raise ValueError(
            f"label_mode must be 'outline' or 'filled', not {label_mode!r}"
        )
    shapes = [p.shape for p, _ in planes] + [lab.shape for lab in labels]
    if not shapes:
        return np.zeros((1, 1, 3), np.uint8)
    h, w = min(s[0] for s in shapes), min(s[1] for s in shapes)
    acc = np.zeros((h, w, 3), np.float64)
    for plane, setting in planes:
        if not setting.visible:
            continue
        span = setting.high - setting.low if setting.high > setting.low else 1.0
        level = np.clip((plane[:h, :w].astype(np.float64) - setting.low) / span, 0, 1)
        acc += level[..., None] * np.array(hex_rgb(setting.color), np.float64)
    rgb = np.clip(np.rint(acc), 0, 255).astype(np.uint8)
    visible = [s.color for _, s in planes if s.visible]
    for lab, color in zip(labels, label_colors(visible, len(labels)), strict=True):
        layer = lab[:h, :w]
        if label_mode == "outline":
            rgb[label_outlines(layer)] = hex_rgb(color)
            continue
        mask = layer != 0
        under = rgb[mask].astype(np.float64)
        mixed = under * (1 - FILL_OPACITY) + np.array(hex_rgb(color)) * FILL_OPACITY
        rgb[mask] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return rgb


def auto_composite(images: Mapping[str, np.ndarray]) -> np.ndarray:
    """Composite ``images`` with default colours and automatic contrast."""
    channels, labels = split_planes(images)
    settings = [
        (plane, ChannelSetting(CHANNEL_COLORS[i % len(CHANNEL_COLORS)], *lohi))
        for i, plane in enumerate(channels.values())
        for lohi in [auto_contrast(plane)]
    ]
    return composite_rgb(settings, list(labels.values()))


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode an ``(h, w, 3)`` uint8 array as PNG (8-bit RGB, no dependency).

    Raises
    ------
    ValueError
        ``rgb`` is not an ``(h, w, 3)`` uint8 array.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(
            f"expected an (h, w, 3) uint8 array, got {rgb.dtype} {rgb.shape}"
        )
    h, w = rgb.shape[:2]
    rows = np.concatenate(
        [np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1
    )  # filter byte 0 ("none") before each row

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )
