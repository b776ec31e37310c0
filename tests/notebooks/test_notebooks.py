"""Every notebook in notebooks/ runs top to bottom in a fresh kernel.

The notebooks are executed as a user would run them (nbclient, the python3
kernel, working directory = a copy of notebooks/), against the demo server
they start themselves, on the 6 wells of ``OPENHCS_NB_DEMO_WELLS``. Chosen
cells are then checked by their printed output, and no server may outlive
its notebook's kernel.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).parent))
from notebook_env import (
    CI_WELL_COUNT,
    NOTEBOOKS,
    kernel_env,
    kill_all,
    wait_until_gone,
)

WIDGET = "application/vnd.jupyter.widget-view+json"


def cells_by_id(nb) -> dict[str, object]:
    return {cell.id: cell for cell in nb.cells}


def text_of(cell) -> str:
    """Everything a cell printed or returned, as text."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(str(out.data.get("text/plain", "")))
            parts.append(str(out.data.get("text/html", "")))
    return "".join(parts)


def widgets_of(cell) -> int:
    return sum(1 for out in cell.outputs if WIDGET in out.get("data", {}))


def run_notebook(path: Path, base: Path) -> nbformat.NotebookNode:
    """Execute a copy of ``path`` in ``base``; the kernel is shut down after."""
    work = base / "work"
    shutil.copytree(NOTEBOOKS, work)
    nb = nbformat.read(work / path.name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
    )
    client.execute(env=kernel_env(base))
    return nb


def check_quickstart(nb) -> None:
    cells = cells_by_id(nb)
    assert "24 wells" in text_of(cells["plates"])
    catalogue = text_of(cells["catalogue"])
    assert "<code>gaussian_blur</code>" in catalogue
    assert "…" not in catalogue and "..." not in catalogue  # help is not cut
    assert "PreviewResult" not in text_of(cells["preview"])  # no echoed repr
    assert widgets_of(cells["preview"]) == 1
    assert f"running {CI_WELL_COUNT} of 24 wells" in text_of(cells["wells"])
    assert widgets_of(cells["run"]) == 2  # the run panel and the plate viewer
    responsive = re.search(
        r"while the run was (\w+) \((\d+)/(\d+) wells finished\)",
        text_of(cells["responsive"]),
    )
    assert responsive, text_of(cells["responsive"])
    state, finished, total = responsive.groups()
    # The cell ran while the plate was still running: the run cell did not block.
    assert state in {"queued", "running"}
    assert int(finished) < int(total) == CI_WELL_COUNT
    result = re.search(
        r"done: (\d+) wells x \d+ columns, (\d+) nuclei", text_of(cells["result"])
    )
    assert result, text_of(cells["result"])
    assert int(result.group(1)) == CI_WELL_COUNT and int(result.group(2)) > 0
    assert "count" in text_of(cells["result"])
    assert "connection closed" in text_of(cells["close"])


def check_cell_by_cell(nb) -> None:
    cells = cells_by_id(nb)
    assert "name='cells'" in text_of(cells["step-measure"])
    assert "PreviewResult" not in text_of(cells["preview"])  # no echoed repr
    assert widgets_of(cells["preview"]) == 1
    assert "name='unsplit'" in text_of(cells["pipeline-cell"])
    assert widgets_of(cells["run-quiet"]) == 1  # viewer=none: the run panel only
    assert widgets_of(cells["run-live"]) == 2  # viewer=inline: panel and viewer
    assert "ex-" in str(cells["status"].outputs[0].data.get("text/html", ""))
    compare = re.search(
        r"(\d+) wells: (\d+) nuclei, (\d+) without the watershed split",
        text_of(cells["compare"]),
    )
    assert compare, text_of(cells["compare"])
    wells, split, unsplit = map(int, compare.groups())
    assert wells == CI_WELL_COUNT
    assert 0 < unsplit <= split  # merging touching nuclei never adds any
    assert widgets_of(cells["builder"]) == 1
    assert "builder pipeline == cells: True" in text_of(cells["builder-check"])
    assert "connection closed" in text_of(cells["close"])


def check_omero(nb) -> None:
    cells = cells_by_id(nb)
    connect = text_of(cells["connect"])
    if importlib.util.find_spec("omero") is not None:
        # omero-py is here, so the stand-in (tests/omero's fake repository
        # behind a real server) must work and plate 101 must run.
        assert "OMERO ready" in connect, connect
        assert "wells ['A01', 'A02', 'B03']" in text_of(cells["plate"])
        assert "PreviewResult A01" in text_of(cells["preview"])
        assert widgets_of(cells["run"]) == 2
        assert "done: 3 wells" in text_of(cells["result"])
    else:  # the OMERO cells skip and say why
        assert "skipping the OMERO cells: omero-py is not installed" in connect
        assert text_of(cells["result"]) == ""
    assert "closed" in text_of(cells["close"])


def check_custom_function(nb) -> None:
    cells = cells_by_id(nb)
    assert "custom function bright_nuclei" in text_of(cells["define"])
    assert "k: float 1..5, default 1.3" in text_of(cells["define"])
    assert widgets_of(cells["preview"]) == 1
    assert "def bright_nuclei(" in text_of(cells["to-code"])
    assert widgets_of(cells["run"]) == 2  # the run panel and the plate viewer
    result = re.search(
        r"done: (\d+) wells, (\d+) nuclei, (\d+) wells done", text_of(cells["result"])
    )
    assert result, text_of(cells["result"])
    wells, nuclei, done = map(int, result.groups())
    assert wells == done == CI_WELL_COUNT and nuclei > 0
    assert "connection closed" in text_of(cells["close"])


CHECKS: dict[str, Callable] = {
    "01_quickstart.ipynb": check_quickstart,
    "02_build_pipeline_cell_by_cell.ipynb": check_cell_by_cell,
    "03_omero.ipynb": check_omero,
    "04_custom_function.ipynb": check_custom_function,
}


def test_when_notebooks_are_listed_then_each_one_is_checked():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_when_notebook_is_committed_then_it_is_valid_and_has_no_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_when_notebook_runs_top_to_bottom_then_chosen_cells_show_results(
    name, tmp_path, monkeypatch
):
    # The kernel's connection file, too, goes into the test's folder.
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    try:
        nb = run_notebook(NOTEBOOKS / name, tmp_path)
        CHECKS[name](nb)
    finally:
        leftovers = wait_until_gone(tmp_path)
        kill_all(leftovers)
    assert leftovers == [], f"processes outlived the kernel: {leftovers}"
