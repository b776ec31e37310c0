"""``[execution] gpu_oom`` reaches every plan a real server compiles.

No GPU here: with ``gpus`` empty the server compiles for the CPU, so what
can be checked is that the option is accepted and carried into the plans of
a submit and a preview (the GPU behaviour itself is in
tests/functions/test_device_path.py, on a stand-in namespace).

To see the plans inside the real server process, the server is started
through this module (``python -m test_gpu_oom_config serve ...``), which
wraps the server's ``compile_pipeline`` to append each plan's settings to a
file, then runs the real CLI; the shipped daemon has no such hook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
RECORD = "OPENHCS_NB_TEST_PLAN_RECORD"


def _recording_main(argv: list[str]) -> int:
    """Run the server CLI with compiled plans recorded to ``$RECORD``."""
    from openhcs_nb.execution.placement import uses_device
    from openhcs_nb.server import work
    from openhcs_nb.server.cli import main

    real = work.compile_pipeline
    record = Path(os.environ[RECORD])

    def compile_and_record(*args: Any, **kwargs: Any) -> Any:
        plan = real(*args, **kwargs)
        line = {
            "gpu_oom": plan.gpu_oom,
            "device": kwargs.get("device"),
            "uses_device": uses_device(plan),
            "wells": list(plan.wells),
        }
        with record.open("a") as out:
            out.write(json.dumps(line) + "\n")
        return plan

    work.compile_pipeline = compile_and_record
    return main(argv)


if __name__ == "__main__":
    sys.exit(_recording_main(sys.argv[1:]))


from server_process import ServerProcess  # noqa: E402

from openhcs_nb import nuclei_count_pipeline  # noqa: E402
from openhcs_nb.client import connect  # noqa: E402

SMALL = "small.ome.zarr"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, plates_root):
    base = tmp_path_factory.mktemp("gpu-oom")
    record = base / "plans.jsonl"
    env = {
        RECORD: str(record),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH")])
        ),
    }
    server = ServerProcess(
        base / "server",
        plates_root,
        workers=1,
        extra='gpus = []\ngpu_oom = "fail"',
        env=env,
        module="test_gpu_oom_config",
    ).start()
    try:
        yield server, record
    finally:
        server.kill()


def test_when_gpu_oom_is_fail_then_submit_and_preview_plans_carry_it(recorded):
    server, record = recorded
    conn = connect(server.address, timeout=20.0)
    try:
        execution = conn.submit(nuclei_count_pipeline(), SMALL, ["A01"])
        table = execution.result(timeout=120)
        assert list(table["well"]) == ["A01"]
        assert not execution.failed_wells
        shown = conn.preview(nuclei_count_pipeline(), SMALL, "A02", max_size=32)
        assert shown is not None
    finally:
        conn.close()
    plans = [json.loads(line) for line in record.read_text().splitlines()]
    assert [p["wells"] for p in plans[:2]] == [["A01"], ["A02"]]
    for plan in plans:
        assert plan["gpu_oom"] == "fail"
        # gpus = [] compiles for the CPU: nothing would run on a device.
        assert plan["device"] == "cpu"
        assert not plan["uses_device"]


def test_when_gpu_oom_is_not_cpu_or_fail_then_check_config_names_it(tmp_path):
    config = tmp_path / "server.toml"
    config.write_text(
        f'[results]\nroot = "{tmp_path / "results"}"\n\n'
        '[execution]\ngpus = [0]\ngpu_oom = "retry"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "openhcs_nb.server.cli", "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = [line for line in done.stdout.splitlines() if "gpu_oom" in line]
    assert len(lines) == 1, done.stdout
    assert "retry" in lines[0] or "cpu" in lines[0]
