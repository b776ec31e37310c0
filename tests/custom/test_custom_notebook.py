"""Own functions from IPython cells: declared in a cell, stepped, previewed, run.

The function is defined by ``run_cell``, exactly as in a notebook, so its
source comes from IPython's cell cache. The server trusts its local user
(no CurveZMQ: every connection is ``local``), as the demo server does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from server_process import ServerProcess

from openhcs_nb.server.config import demo_config

SMALL = "small.ome.zarr"

CELL = '''
from typing import Annotated
import numpy as np
from msgspec import Meta
import openhcs_nb

@openhcs_nb.function(output="mask")
def over_mean(stack, *, k: Annotated[float, Meta(ge=0.5, le=4)] = 1.5):
    """Pixels above k times the plane mean."""
    return stack > k * stack.mean(axis=(1, 2), keepdims=True)
'''


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory, plates_root: Path):
    base = tmp_path_factory.mktemp("nbserver")
    server = ServerProcess(
        base, plates_root, extra='[trust]\nusers = ["local"]\nmodules = ["numpy"]\n'
    ).start()
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "openhcs_nb")
    conn = ip.run_line_magic("openhcs_connect", server.address)
    yield ip
    conn.close()
    InteractiveShell.clear_instance()
    server.kill()


def test_when_function_is_written_in_a_cell_then_it_steps_previews_and_runs(shell):
    assert shell.run_cell(CELL).success
    fn = shell.user_ns["over_mean"]
    assert "def over_mean" in fn.source
    assert set(fn.imports) == {
        "from msgspec import Meta",
        "from typing import Annotated",
    }
    shell.run_line_magic("openhcs_step", "own over_mean k=2 --channel 0")
    shell.run_line_magic(
        "openhcs_step", "own label_objects --step over_mean --append --channel 0"
    )
    pipeline = shell.user_ns["own"]
    assert pipeline.steps[0].functions()[0] is fn
    shell.run_line_magic("openhcs_preview", f"well=A01 pipeline=own plate={SMALL}")
    preview = shell.user_ns["_openhcs_preview"]
    assert preview.images and preview.step_names[-1] == "over_mean"
    run = shell.run_line_magic(
        "openhcs_run", f"plate={SMALL} pipeline=own wells=A01 viewer=none"
    )
    table = (run or shell.user_ns["_openhcs"]).result(timeout=120)
    assert table["status"].tolist() == ["done"]


def test_when_an_unknown_name_is_stepped_then_the_error_lists_it(shell):
    with pytest.raises(UsageError, match="unknown function 'nope'"):
        shell.run_line_magic("openhcs_step", "own nope")


def test_when_demo_server_is_configured_then_it_trusts_its_local_user(tmp_path):
    config = demo_config(0, tmp_path)
    assert config.trust.users == ("local",)
