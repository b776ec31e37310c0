"""The plate map's histogram in headless Chromium, in a plain page.

Twenty-four wells get a measurement (three without a value); values sit at
bin centres so the expected bins come from numpy without edge cases.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from viewer_page import open_page

pytestmark = pytest.mark.browser
BINS, LO, HI = 12, 0.0, 120.0

PAGE = """<!doctype html>
<html><head><link rel="stylesheet" href="plate_viewer.css"></head>
<body><div id="core"></div>
<script type="module">
import { createPlateViewer, createMemorySource } from "./plate_viewer.js";
const spec = await (await fetch("spec.json")).json();
window.source = createMemorySource(spec);
window.core = createPlateViewer(document.getElementById("core"), window.source);
window.ready = true;
</script></body></html>
"""


def plate() -> tuple[dict, dict[str, float | None]]:
    rows, columns = ["A", "B", "C", "D"], [1, 2, 3, 4, 5, 6]
    wells = [f"{r}{c:02d}" for r in rows for c in columns]
    rng = np.random.default_rng(11)
    centres = LO + (rng.integers(0, BINS, len(wells)) + 0.5) * (HI - LO) / BINS
    area: dict[str, float | None] = dict(zip(wells, centres.tolist(), strict=True))
    area["A02"], area["D06"] = LO, HI  # the range's ends
    for well in ("B03", "C01", "C04"):
        area[well] = None
    state = {
        "plate_name": "hist",
        "rows": rows,
        "columns": columns,
        "wells": wells,
        "status": dict.fromkeys(wells, "done"),
        "values": {w: {"area": v} for w, v in area.items()},
        "measurement": "status",
        "measurements": ["area"],
        "selected_well": "A01",
        "channels": [],
        "image_meta": {},
    }
    return state, area


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("hist")
    state, area = plate()
    (root / "index.html").write_text(PAGE)
    (root / "spec.json").write_text(json.dumps(state))
    with open_page(root) as (tab, errors):
        yield tab, area, errors


def bars(tab) -> list[dict]:
    return tab.evaluate(
        """() => [...document.querySelectorAll('#core .ohnb-bar-bin')].map((b) => ({
              count: Number(b.dataset.count),
              height: b.getBoundingClientRect().height,
              fill: b.getAttribute('fill')}))"""
    )


def ringed(tab) -> set[str]:
    """Wells whose cell shows the picked ring (computed style, not the class)."""
    return set(
        tab.evaluate(
            """() => [...document.querySelectorAll('#core .ohnb-cell')]
                  .filter((c) => getComputedStyle(c).boxShadow !== 'none')
                  .map((c) => c.dataset.well)"""
        )
    )


def test_when_colouring_by_a_measurement_then_the_histogram_bins_the_wells(page):
    tab, area, errors = page
    box = "#core .ohnb-histogram-box"
    assert not tab.is_visible(box)  # colouring by status: no histogram
    tab.select_option("#core select.ohnb-measurement", "area")
    assert tab.is_visible(box)
    valued = [v for v in area.values() if v is not None]
    expected, _ = np.histogram(valued, bins=BINS, range=(LO, HI))
    drawn = bars(tab)
    assert [b["count"] for b in drawn] == expected.tolist()
    assert sum(b["height"] > 0 for b in drawn) == int((expected > 0).sum())
    assert sum(b["count"] for b in drawn) == len(valued) == 21
    tallest = max(drawn, key=lambda b: b["count"])
    assert all(b["height"] <= tallest["height"] for b in drawn)
    assert len({b["fill"] for b in drawn}) == BINS  # one colour-map step per bin
    caption = tab.locator("#core .ohnb-histogram-caption span").all_inner_texts()
    assert caption == ["0", "21 wells", "120"]
    assert errors == []


def test_when_a_bar_is_clicked_then_exactly_its_wells_are_ringed(page):
    tab, area, errors = page
    tab.select_option("#core select.ohnb-measurement", "area")
    width = (HI - LO) / BINS
    index = int(
        np.argmax(
            np.histogram(
                [v for v in area.values() if v is not None], bins=BINS, range=(LO, HI)
            )[0]
        )
    )
    in_bin = {
        w
        for w, v in area.items()
        if v is not None and min(BINS - 1, int((v - LO) // width)) == index
    }
    assert ringed(tab) == set()
    tab.locator("#core .ohnb-bar-bin").nth(index).click()
    assert ringed(tab) == in_bin
    tab.locator("#core .ohnb-bar-bin").nth(index).click()  # again: cleared
    assert ringed(tab) == set()
    tab.locator("#core .ohnb-bar-bin").nth(index).click()
    tab.select_option("#core select.ohnb-measurement", "status")
    assert ringed(tab) == set()
    assert not tab.is_visible("#core .ohnb-histogram-box")
    assert errors == []
