"""The pipeline builder in JupyterLab, driven in headless Chromium as a user would.

A notebook of the test's own (written into the lab's root) connects to a demo
server and shows an empty builder for the pipeline variable ``mine``. The
test then adds identify_primary and measure_objects by clicking, checks that
no error shows and that the preview's images hold real pixels, adds a
quality step and moves it up with the step's arrow, checks the order on the
page, clicks "to code" and checks that a cell holding the code appears right
below the builder at once, without running anything, and that running it
makes ``mine`` equal to the builder's pipeline. The screenshot lands in
docs/images/builder.png.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab import OUTPUT, ROOT, SECOND, open_notebook, wait_for_value

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NOTEBOOK = "builder_check.ipynb"
SCREENSHOT = ROOT / "docs" / "images" / "builder.png"
CELLS = [
    "%load_ext openhcs_nb\nconn = %openhcs_connect --demo",
    "from openhcs_nb import Pipeline\n"
    "from openhcs_nb.jupyter.builder import PipelineBuilder\n\n"
    'mine = Pipeline(name="mine", steps=())\n'
    'builder = PipelineBuilder(connection=conn, plate="demo", pipeline=mine, '
    'well="B03", preview_size=128, debounce=0.2)\n'
    "builder",
    'print("round trip:", mine == builder.pipeline, mine.name)',
]

CELL_SOURCES = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map(
  (cell) => [...cell.querySelectorAll('.jp-InputArea .cm-line')]
    .map((line) => line.textContent).join('\\n'))"""

BUILDER_STATE = """() => {
  const root = document.querySelectorAll('.jp-Notebook .jp-Cell')[1];
  const steps = [...root.querySelectorAll('.widget-text')]
    .filter((w) => w.querySelector('label')?.textContent === 'step')
    .map((w) => w.querySelector('input').value);
  const html = [...root.querySelectorAll('.widget-html-content')]
    .map((h) => h.textContent);
  return {steps, error: html.find((t) => t.startsWith('Step ')) || '',
          status: html.find((t) => / field \\d+: /.test(t)) || ''};
}"""

IMAGE_PIXELS = """() => {
  const root = document.querySelectorAll('.jp-Notebook .jp-Cell')[1];
  return [...root.querySelectorAll('.widget-image')].map((img) => {
    if (!img.complete || !img.naturalWidth) return 0;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let nonzero = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] + data[i + 1] + data[i + 2] > 0) nonzero += 1;
    }
    return nonzero;
  });
}"""


def notebook(cells: list[str]) -> dict:
    """An nbformat 4 notebook of unexecuted code cells."""
    return {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
            for source in cells
        ],
        "metadata": {
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def add_step(builder, category: str, function: str) -> None:
    """Pick a catalogue function and click "add step", as a user does."""
    builder.locator(".widget-dropdown", has_text="category").locator(
        "select"
    ).select_option(category)
    builder.locator(".widget-dropdown", has_text="function").locator(
        "select"
    ).select_option(function)
    builder.get_by_role("button", name="add step").click()


def run_cell(tab, index: int) -> None:
    """Select cell ``index`` and run it with Shift+Enter."""
    tab.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputPrompt").click()
    tab.keyboard.press("Shift+Enter")


def test_when_a_user_builds_reorders_and_clicks_to_code_then_the_cell_appears(
    page, lab, tmp_path
):
    tab = page
    (tmp_path / "notebooks" / NOTEBOOK).write_text(json.dumps(notebook(CELLS)))
    try:
        open_notebook(tab, lab, NOTEBOOK)
        run_cell(tab, 0)
        run_cell(tab, 1)
        builder = tab.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea")
        builder.get_by_role("button", name="to code").wait_for(timeout=180 * SECOND)

        # From an empty builder, two clicked steps validate and preview.
        add_step(builder, "segmentation", "identify_primary")
        add_step(builder, "measure", "measure_objects")
        state = wait_for_value(
            tab,
            BUILDER_STATE,
            lambda s: "2 step(s)" in s["status"] or s["error"],
            120,
            "the preview of two steps did not arrive",
        )
        assert state["error"] == "", state
        assert state["steps"] == ["identify_primary", "measure_objects"]
        pixels = wait_for_value(
            tab,
            IMAGE_PIXELS,
            lambda p: len(p) == 2 and min(p) > 0,
            30,
            "the preview images stayed empty",
        )
        assert min(pixels) > 100, pixels

        # Reordering with the step's arrow changes the order shown.
        add_step(builder, "measure", "measure_image_quality")
        builder.locator("button[title='move step up']").nth(2).click()
        order = ["identify_primary", "measure_image_quality", "measure_objects"]
        state = wait_for_value(
            tab,
            BUILDER_STATE,
            lambda s: s["steps"] == order,
            30,
            "moving the quality step up did not reorder the steps",
        )
        assert state["error"] == "", state
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        tab.set_viewport_size({"width": 1400, "height": 2600})  # all of it on screen
        builder.scroll_into_view_if_needed()
        builder.screenshot(path=SCREENSHOT)
        tab.set_viewport_size({"width": 1400, "height": 1000})

        # "to code": a new cell right below the builder, nothing else run.
        before = tab.evaluate(CELL_SOURCES)
        assert len(before) == 3
        builder.get_by_role("button", name="to code").click()
        sources = wait_for_value(
            tab,
            CELL_SOURCES,
            lambda s: len(s) == 4 and "Pipeline(" in s[2],
            10,
            "no cell with the pipeline code appeared below the builder",
        )
        code = sources[2]
        assert sources[:2] == before[:2] and sources[3] == before[2]
        assert "\nmine = Pipeline(" in code and "pipeline =" not in code
        positions = [code.index(f'name="{name}"') for name in order]
        assert positions == sorted(positions), code
        note = builder.get_by_text("the code is in a new cell below")
        note.wait_for(timeout=10 * SECOND)
        assert not builder.get_by_role("button", name="Copy").is_visible()

        # Running the new cell reproduces the builder's pipeline in ``mine``.
        run_cell(tab, 2)
        tab.keyboard.press("Shift+Enter")  # the check cell below it
        tab.locator(".jp-OutputArea-output", has_text="round trip:").wait_for(
            timeout=60 * SECOND
        )
        printed = tab.locator(
            ".jp-OutputArea-output", has_text="round trip:"
        ).inner_text()
        assert printed.strip() == "round trip: True mine", printed
        assert tab.page_errors == []
    except BaseException:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=OUTPUT / "builder_failure.png", full_page=True)
        print(f"JupyterLab log:\n{lab.log.read_text()[-4000:]}")
        raise
