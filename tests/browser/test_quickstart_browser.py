"""01_quickstart.ipynb in JupyterLab, driven in headless Chromium.

A real JupyterLab (loopback, token, every Jupyter/IPython folder in the test's
tmp dir) serves a copy of notebooks/; Playwright opens the quickstart, runs
all cells from the Run menu and then checks what a user sees: every well the
run asked for is done in the plate viewer, colouring by ``count`` gives wells
different colours, clicking a well draws its image (read back from the
canvas pixels), and the cell run while the plate was running printed that
the run was still going. Screenshots land in test-output/browser/.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab import OUTPUT, SECOND, run_all_cells, wait_for_value
from notebook_env import CI_WELL_COUNT

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NOTEBOOK = "01_quickstart.ipynb"
CI_WELLS = ["A01", "A02", "A03", "B01", "B02", "B03"]
assert len(CI_WELLS) == CI_WELL_COUNT


FINISHED_OR_FAILED = """() => {
  const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];
  const texts = outputs.map((o) => o.innerText);
  if (texts.some((t) => t.includes('connection closed'))) return 'closed';
  const error = texts.find((t) => /Traceback|Error: /.test(t));
  return error ? 'error: ' + error.slice(0, 2000) : null;
}"""

PLATE_CELLS = """() => Object.fromEntries(
  [...document.querySelectorAll('.ohnb-root .ohnb-cell')].map((c) => [
    c.dataset.well,
    {title: c.title, color: getComputedStyle(c).backgroundColor},
  ]))"""

CANVAS_STATS = """() => {
  const root = document.querySelector('.ohnb-root');
  const canvas = root.querySelector('canvas.ohnb-canvas');
  const {width, height} = canvas;
  const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let nonzero = 0, sum = 0;
  const levels = new Set();
  for (let i = 0; i < data.length; i += 4) {
    const v = data[i] + data[i + 1] + data[i + 2];
    if (v > 0) nonzero += 1;
    sum += v;
    if (levels.size < 5000) levels.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
  }
  return {well: root.querySelector('.ohnb-well .ohnb-title').textContent,
          width, height, nonzero, sum, levels: levels.size};
}"""


def test_when_quickstart_runs_in_jupyterlab_then_viewer_fills_and_kernel_responds(
    page, lab
):
    tab = page
    try:
        run_all_cells(tab, lab, NOTEBOOK)
        outcome = wait_for_value(
            tab,
            FINISHED_OR_FAILED,
            bool,
            300,
            "the notebook did not reach its last cell",
        )
        assert outcome == "closed", outcome
        tab.screenshot(path=OUTPUT / "quickstart_notebook.png", full_page=True)

        # Every well the run asked for is done in the plate viewer.
        viewer = tab.locator(".ohnb-root")
        assert viewer.count() == 1
        cells = wait_for_value(
            tab,
            PLATE_CELLS,
            lambda v: all(
                v.get(w, {}).get("title", "").startswith(f"{w}: done") for w in CI_WELLS
            ),
            60,
            f"the viewer did not show {CI_WELLS} as done",
        )
        assert len(cells) == 24
        others = [w for w in cells if w not in CI_WELLS]
        assert not any(": done" in cells[w]["title"] for w in others)
        status_colors = {cells[w]["color"] for w in CI_WELLS}
        assert len(status_colors) == 1  # coloured by status: all alike
        assert viewer.locator(".ohnb-state").inner_text() == "done"
        counts = rf"{CI_WELL_COUNT} done . 0 failed . {CI_WELL_COUNT} wells"
        tab.get_by_text(re.compile(counts)).wait_for(timeout=30 * SECOND)
        viewer.screenshot(path=OUTPUT / "plate_by_status.png")

        # Coloured by a measurement, the wells differ.
        viewer.locator("select.ohnb-measurement").select_option("count")
        cells = wait_for_value(
            tab,
            PLATE_CELLS,
            lambda v: (
                len({v[w]["color"] for w in CI_WELLS}) >= 2
                and not status_colors & {v[w]["color"] for w in CI_WELLS}
            ),
            30,
            "colouring by count did not give the wells different colours",
        )
        assert all("count: " in cells[w]["title"] for w in CI_WELLS)
        viewer.screenshot(path=OUTPUT / "plate_by_count.png")

        # Clicking a well draws its image: real, varying pixels on the canvas.
        before = tab.evaluate(CANVAS_STATS)
        target = "B03" if before["well"] != "B03" else "A02"
        viewer.locator(f".ohnb-cell[data-well='{target}']").click()
        drawn = wait_for_value(
            tab,
            CANVAS_STATS,
            lambda s: (
                s["well"] == target and s["width"] > 1 and s["sum"] != before["sum"]
            ),
            60,
            f"clicking {target} did not draw its image",
        )
        pixels = drawn["width"] * drawn["height"]
        assert drawn["nonzero"] > pixels // 100, drawn
        assert drawn["levels"] > 50, drawn
        viewer.screenshot(path=OUTPUT / f"well_{target}.png")

        # The cell run during the plate run ran while the plate was running.
        printed = tab.locator(
            ".jp-OutputArea-output", has_text="kernel responsive"
        ).first.inner_text()
        match = re.search(
            r"while the run was (\w+) \((\d+)/(\d+) wells finished\)", printed
        )
        assert match, printed
        state, finished, total = match.groups()
        assert state in {"queued", "running"}, printed
        assert int(finished) < int(total) == CI_WELL_COUNT, printed
        assert tab.page_errors == []
    except BaseException:
        tab.screenshot(path=OUTPUT / "failure.png", full_page=True)
        print(f"JupyterLab log:\n{lab.log.read_text()[-4000:]}")
        raise
