"""One sandboxed call, directly: what crosses the boundary and how it fails."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from openhcs_nb.errors import ExecutionError
from openhcs_nb.execution.sandbox import Sandbox, SandboxLimits, sandbox_problem

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bwrap")

SANDBOX = Sandbox(SandboxLimits(memory_mb=768, cpu_s=5, wall_s=3, processes=8))
STACK = np.arange(8, dtype=np.float32).reshape(2, 2, 2)


def test_when_bwrap_works_then_no_problem_is_reported():
    assert sandbox_problem() is None
    assert "not installed" in sandbox_problem("no-such-bwrap")


def test_when_a_function_returns_side_tables_then_they_cross_as_arrays():
    code = (
        "import numpy as np\n\n"
        "def f(stack, k=1.0):\n"
        "    return stack * k, {'objects': {'area': np.arange(3)}}\n"
    )
    out, side = SANDBOX(code, "f", STACK, {"k": 2.0})
    assert np.array_equal(out, STACK * 2)
    assert side["objects"]["area"].tolist() == [0, 1, 2]


def test_when_the_sandbox_plants_a_symlink_as_output_then_the_host_file_is_not_read():
    code = (
        "import json, os\n\n"
        "def f(stack):\n"
        "    os.symlink('/etc/hostname', 'out.npy')\n"
        "    with open('result.json', 'w') as h:\n"
        "        json.dump({'ok': True, 'side': False}, h)\n"
        "    os._exit(0)\n"
    )
    with pytest.raises(ExecutionError, match="cannot be read"):
        SANDBOX(code, "f", STACK, {})


def test_when_a_function_returns_the_wrong_shape_then_the_error_says_so():
    code = "def f(stack):\n    return stack[0]\n"
    with pytest.raises(ExecutionError, match=r"expected an \(n, y, x\) array"):
        SANDBOX(code, "f", STACK, {})


def test_when_the_child_dies_without_a_result_then_the_exit_is_named():
    code = "import os\n\ndef f(stack):\n    os._exit(3)\n"
    with pytest.raises(ExecutionError, match="exit status"):
        SANDBOX(code, "f", STACK, {})


def test_when_a_call_sleeps_past_the_wall_limit_then_it_is_stopped():
    code = "import time\n\ndef f(stack):\n    time.sleep(60)\n"
    with pytest.raises(ExecutionError, match="wall-time limit of 3 s"):
        SANDBOX(code, "f", STACK, {})
