"""The plate-level illumination phase on a real server: streamed, resumable."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from server_process import ServerProcess

from openhcs_nb.client import connect
from openhcs_nb.execution import plate_phase
from openhcs_nb.functions import correct_illumination, measure_objects, threshold_otsu
from openhcs_nb.pipeline import Pipeline, Step
from openhcs_nb.plates.synthetic import SyntheticPlateSpec, generate_plate

pytestmark = pytest.mark.timeout(300)
PLATE = "lit.ome.zarr"


@pytest.fixture(scope="module")
def lit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lit")
    spec = SyntheticPlateSpec(
        rows=3, columns=4, fields=4, shape=(512, 512), illumination=0.4, seed=3
    )
    generate_plate(spec, root / PLATE)
    return root


def pipeline() -> Pipeline:
    return Pipeline(
        "flat",
        (
            Step(name="flat", func={0: correct_illumination}, group_by="channel"),
            Step(name="nuclei", func={0: threshold_otsu}, group_by="channel"),
            Step(name="measure", func=measure_objects, variable_components=["channel"]),
        ),
    )


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_kill_9_mid_phase_resumes_without_redoing_finished_wells(
    tmp_path: Path, lit_root: Path
) -> None:
    server = ServerProcess(tmp_path / "server", lit_root, workers=1).start()
    try:
        with connect(server.address, timeout=10.0) as conn:
            run = conn.submit(pipeline(), PLATE)
            out = server.results_root / run.id
            parts = lambda: sorted((out / "parts").glob("*.illumination.npz"))  # noqa: E731
            wait_for(lambda: len(parts()) >= 2)
            server.kill()
            assert not plate_phase.is_fitted(out)  # killed inside the phase
            before = {p.name: p.stat().st_mtime_ns for p in parts()}
            assert 2 <= len(before) < 12
            server.start()
            table = run.result(timeout=240)
        assert sorted(table["well"]) == sorted(
            f"{r}{c:02d}" for r in "ABC" for c in range(1, 5)
        )
        assert (table["status"] == "done").all()
        for name, stamp in before.items():  # finished contributions kept
            assert (out / "parts" / name).stat().st_mtime_ns == stamp
        assert len(parts()) == 12 and plate_phase.is_fitted(out)
        flat = plate_phase.load_fit(out)[0]
        assert flat.shape == (512, 512) and abs(float(flat.mean()) - 1) < 1e-3
        assert flat.max() / flat.min() > 1.3  # it found the vignetting
    finally:
        server.kill()


def test_phase_progress_streams_before_the_wells(
    tmp_path: Path, lit_root: Path
) -> None:
    server = ServerProcess(tmp_path / "server", lit_root, workers=2).start()
    try:
        with connect(server.address, timeout=10.0) as conn:
            run = conn.submit(pipeline(), PLATE)
            first = next(iter(run))  # the first well comes after the fit
            assert run.phase == ("illumination", 12, 12)
            assert first.ok
            run.result(timeout=240)
            assert np.isfinite(run.result()["count"]).all()
    finally:
        server.kill()
