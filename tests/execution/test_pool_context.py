"""Worker pools start even where ``$TMPDIR`` is too deep for a Unix socket."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import tempfile
    from openhcs_nb.execution._pool_context import pool_context

    def job():
        return None

    if __name__ == "__main__":
        ctx = pool_context()
        worker = ctx.Process(target=job)
        worker.start()
        worker.join(60)
        print(worker.exitcode, tempfile.gettempdir())
    """
)


def test_a_deep_temp_dir_does_not_stop_workers(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    script = tmp_path / "start.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "TMPDIR": str(deep)}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "/tmp"]
