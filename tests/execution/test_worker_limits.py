"""Workers pin their thread pools and fail an oversized well with well_memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openhcs_nb.execution.worker_limits import WorkerLimits

pytestmark = pytest.mark.timeout(180)


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script file in ``cwd`` (a real ``__main__`` module)."""
    script = cwd / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )


def test_share_gives_each_worker_its_cores_and_memory() -> None:
    one = WorkerLimits.share(1, memory_bytes=8 << 30)
    many = WorkerLimits.share(64, memory_bytes=8 << 30)
    assert one.threads >= many.threads == 1
    assert one.memory_bytes == 8 << 30
    assert WorkerLimits.share(2).memory_bytes > 0  # auto: a share of RAM
    assert WorkerLimits.share(2, memory_bytes=0).memory_bytes == 0  # no cap


def test_pool_workers_pin_blas_and_openmp_threads(tmp_path: Path) -> None:
    done = run_python(
        """
        from concurrent.futures import ProcessPoolExecutor
        from openhcs_nb.execution.local import pool_context
        from openhcs_nb.execution.worker_limits import WorkerLimits, apply_limits

        def threads():
            import os
            from threadpoolctl import threadpool_info
            return os.environ["OMP_NUM_THREADS"], [
                p["num_threads"] for p in threadpool_info()
            ]

        if __name__ == "__main__":
            with ProcessPoolExecutor(
                2, mp_context=pool_context(), initializer=apply_limits,
                initargs=(WorkerLimits(threads=1),),
            ) as pool:
                print(pool.submit(threads).result())
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    env, pools = eval(done.stdout.strip())
    assert env == "1"
    assert pools and set(pools) == {1}  # numpy's BLAS at least, all pinned


def test_an_unguarded_script_gets_one_line_naming_the_main_guard(
    tmp_path: Path,
) -> None:
    done = run_python(
        """
        from openhcs_nb import nuclei_count_pipeline, run_local
        from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate
        from pathlib import Path
        plate = Path("plate.ome.zarr")
        if not plate.exists():
            generate_plate(SyntheticPlateSpec(rows=1, columns=2), plate)
        run_local(nuclei_count_pipeline(), plate, workers=2, out="out")
        """,
        tmp_path,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("openhcs_nb.errors.ExecutionError:")
    assert 'if __name__ == "__main__":' in last and "script.py" in last
    assert "BrokenProcessPool" not in done.stderr
    assert "bootstrapping phase" not in done.stderr  # the workers stayed quiet


def test_a_well_past_the_memory_cap_fails_with_well_memory(tmp_path: Path) -> None:
    done = run_python(
        """
        from openhcs_nb import nuclei_count_pipeline
        from openhcs_nb.execution.compile import compile_pipeline
        from openhcs_nb.execution.well import run_well
        from openhcs_nb.execution.worker_limits import WorkerLimits, apply_limits
        from openhcs_nb.plates import open_plate
        from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate

        spec = SyntheticPlateSpec(rows=1, columns=1, fields=6, shape=(2048, 2048))
        generate_plate(spec, "big.ome.zarr")
        small = SyntheticPlateSpec(rows=1, columns=1, shape=(128, 128))
        generate_plate(small, "small.ome.zarr")
        apply_limits(WorkerLimits(threads=1, memory_bytes=400 << 20))
        for name in ("big", "small", "big"):
            plate = open_plate(f"{name}.ome.zarr")
            plan = compile_pipeline(nuclei_count_pipeline(), plate)
            result = run_well(plan, "A01", plate=plate)
            print(name, result.error.type if result.error else "ok")
            if result.error:
                print(str(result.error))
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "big well_memory"
    assert lines[1].startswith("well_memory: well A01 needed more than its worker's")
    assert "400 MiB" in lines[1]
    assert lines[2] == "small ok"  # the same process carries on with the next well
    assert lines[3] == "big well_memory"
