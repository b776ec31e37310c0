"""Image helpers: binary packing, display dtypes, outlines, PNG."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import numpy as np
import pytest

from openhcs_nb.jupyter._images import (
    ChannelSetting,
    auto_composite,
    composite_rgb,
    display_plane,
    encode_png,
    hex_rgb,
    label_colors,
    label_outlines,
    pack_planes,
    split_planes,
    unpack_planes,
)
from openhcs_nb.jupyter.viewer import STATIC


def test_when_planes_are_packed_then_unpacking_gives_them_back_aligned():
    images = {
        "image/A": np.arange(35, dtype=np.uint8).reshape(5, 7),
        "input/B": np.arange(35, dtype=">u2").reshape(5, 7),  # big-endian in
        "labels/cells": np.arange(35, dtype=np.int64).reshape(5, 7) * 1000,
    }
    data, meta = pack_planes(images)
    assert [p["offset"] % 4 for p in meta["planes"]] == [0, 0, 0]
    assert [p["dtype"] for p in meta["planes"]] == ["uint8", "uint16", "uint32"]
    back = unpack_planes(data, meta)
    assert np.array_equal(back["A"], images["image/A"])
    assert np.array_equal(back["input/B"], images["input/B"])
    assert back["input/B"].dtype == np.dtype("<u2")
    assert np.array_equal(back["labels/cells"], images["labels/cells"])


def test_when_planes_differ_by_a_pixel_then_all_are_cropped_to_the_smallest():
    data, meta = pack_planes(
        {"image/A": np.ones((9, 10), np.uint16), "labels/n": np.ones((10, 10), int)}
    )
    assert (meta["height"], meta["width"]) == (9, 10)
    assert len(data) == 9 * 10 * 2 + 9 * 10 * 4


def test_when_image_is_float_then_it_is_stretched_to_uint16():
    plane = np.array([[0.0, 0.5], [1.0, np.nan]], np.float32)
    shown = display_plane(plane)
    assert shown.dtype == np.dtype("<u2")
    assert shown.tolist() == [[0, 32768], [65535, 0]]
    assert display_plane(np.array([[-5, 5]], np.int32)).tolist() == [[0, 65535]]
    assert display_plane(np.array([[True, False]])).tolist() == [[1, 0]]


def test_when_names_have_prefixes_then_labels_and_channels_split():
    channels, labels = split_planes(
        {
            "image/DAPI": np.zeros((2, 2)),
            "input/GFP": np.zeros((1, 2, 2)),
            "labels/nuclei": np.zeros((2, 2)),
        }
    )
    assert list(channels) == ["DAPI", "input/GFP"]
    assert channels["input/GFP"].shape == (2, 2)
    assert list(labels) == ["nuclei"]


def test_when_labels_touch_then_outlines_mark_borders_not_interiors():
    labels = np.zeros((7, 10), int)
    labels[1:6, 1:5] = 1
    labels[1:6, 5:9] = 2
    edge = label_outlines(labels)
    assert not edge[3, 2] and not edge[3, 7]  # interiors
    assert edge[3, 4] and edge[3, 5]  # where 1 meets 2
    assert edge[1, 2] and edge[3, 1]  # next to the background
    assert not edge[labels == 0].any()


def test_when_composited_then_colours_add_and_outlines_go_on_top():
    red = np.array([[0, 10]], np.uint16)
    green = np.array([[10, 10]], np.uint16)
    rgb = composite_rgb(
        [
            (red, ChannelSetting("#ff0000", 0, 10)),
            (green, ChannelSetting("#00ff00", 0, 20)),
        ]
    )
    assert rgb.tolist() == [[[0, 128, 0], [255, 128, 0]]]
    hidden = composite_rgb([(red, ChannelSetting("#ff0000", 0, 10, visible=False))])
    assert not hidden.any()
    outlined = composite_rgb(
        [(red, ChannelSetting("#ff0000", 0, 10))], [np.array([[1, 2]])]
    )
    # on red, yellow would blend in: the outline is cyan, the farthest hue
    assert outlined.tolist() == [[[0, 255, 255], [0, 255, 255]]]


def test_when_encoding_png_then_pillow_reads_the_same_pixels():
    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    rgb = auto_composite({"image/A": rng.integers(0, 999, (13, 17)).astype(np.uint16)})
    png = encode_png(rgb)
    decoded = np.asarray(image_module.open(io.BytesIO(png)).convert("RGB"))
    assert np.array_equal(decoded, rgb)
    with pytest.raises(ValueError, match="expected an"):
        encode_png(np.zeros((2, 2), np.uint8))


def test_when_colour_is_not_hex_then_error_names_it():
    assert hex_rgb("#ff8000") == (255, 128, 0)
    with pytest.raises(ValueError, match="'red'"):
        hex_rgb("red")


def test_when_choosing_label_colours_then_the_farthest_hue_from_the_channels_wins():
    assert label_colors(["#0000ff", "#00ff00"], 1) == ["#ffff00"]
    assert label_colors(["#ff0000", "#ff00ff"], 1) == ["#00ffff"]
    assert label_colors(["#ffff00"], 2) == ["#00ffff", "#ff00ff"]  # tie: list order
    assert label_colors([], 1) == ["#ffff00"]  # nothing visible: the first
    assert label_colors(["#ffffff"], 1) == ["#ffff00"]  # greys have no hue


def test_when_labels_are_filled_then_they_tint_at_forty_percent():
    red = np.array([[10, 10, 0]], np.uint16)
    labels = np.array([[1, 1, 0]])
    filled = composite_rgb(
        [(red, ChannelSetting("#ff0000", 0, 10))], [labels], "filled"
    )
    # 60% red under 40% cyan; the unlabelled pixel keeps its own colour
    assert filled.tolist() == [[[153, 102, 102], [153, 102, 102], [0, 0, 0]]]
    with pytest.raises(ValueError, match="label_mode"):
        composite_rgb([(red, ChannelSetting("#ff0000", 0, 10))], [labels], "solid")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_when_js_chooses_label_colours_then_it_agrees_with_python(tmp_path):
    rng = np.random.default_rng(8)
    cases = [
        [
            "#" + bytes(rng.integers(0, 256, 3).astype(np.uint8)).hex()
            for _ in range(k % 4)
        ]
        for k in range(40)
    ]
    script = tmp_path / "run.mjs"
    script.write_text(
        f'import {{ labelColors }} from "{(STATIC / "colors.js").as_uri()}";\n'
        f"const cases = {json.dumps(cases)};\n"
        "console.log(JSON.stringify(cases.map((c) => labelColors(c, 3))));\n"
    )
    out = subprocess.run(
        ["node", str(script)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [label_colors(c, 3) for c in cases]
