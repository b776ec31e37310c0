"""The notebooks pass ``pytest --nbval-lax``, the check facilities run in CI.

nbval makes one test item per code cell and, in lax mode, fails a cell only
when it raises (outputs are compared just for cells marked
``# NBVAL_CHECK_OUTPUT``, which ours do not use). The run happens in a child
pytest, on a copy of notebooks/, with the kernel environment of
test_notebooks.py: its own demo cache and the 6 CI wells.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from notebook_env import NOTEBOOKS, kernel_env, kill_all, wait_until_gone


def code_cells(folder: Path) -> int:
    """How many items nbval should collect: one per code cell."""
    return sum(
        cell["cell_type"] == "code"
        for path in folder.glob("*.ipynb")
        for cell in json.loads(path.read_text())["cells"]
    )


@pytest.mark.slow
@pytest.mark.timeout(1500)  # three notebooks, each starting its own server
def test_when_notebooks_run_under_nbval_lax_then_every_cell_passes(tmp_path):
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work)
    expected = code_cells(work)
    assert expected > 20  # three real notebooks, not an empty folder
    env = {**kernel_env(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--nbval-lax",
                "--nbval-cell-timeout=300",
                "-p",
                "no:cacheprovider",
                "-q",
                str(work),
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=1400,
            check=False,
        )
    finally:
        leftovers = wait_until_gone(tmp_path)
        kill_all(leftovers)
    tail = done.stdout[-3000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed, tail
    assert int(passed.group(1)) == expected, tail
    assert "failed" not in done.stdout.splitlines()[-1], tail
    assert leftovers == [], f"processes outlived the kernel: {leftovers}"
