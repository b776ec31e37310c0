"""Own functions on a real server: trusted users run them, others are refused.

alice is named under ``[trust]``; bob is not. Both have their own CurveZMQ
key, so the server knows who is who from the handshake alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import pytest
from msgspec import Meta
from multiuser import start_curve_server
from scipy import ndimage as ndi

from openhcs_nb import Pipeline, Step, function, run_local
from openhcs_nb.client import RemoteError, connect
from openhcs_nb.functions import gaussian_blur, label_objects, measure_objects
from openhcs_nb.server.audit import read_audit

SMALL = "small.ome.zarr"
WELLS = ["A01", "B02"]
TRUST = """
[trust]
users = ["alice"]
modules = ["numpy", "scipy"]
memory_mb = 1024
cpu_s = 20
wall_s = 60
"""


@function(output="mask", version="2")
def bright_mask(
    stack,
    *,
    k: Annotated[float, Meta(ge=0.5, le=5, description="times the plane mean")] = 1.5,
):
    """Pixels brighter than k times their plane's mean, lightly smoothed."""
    smooth = ndi.uniform_filter(stack.astype(np.float32), size=(1, 3, 3))
    return smooth > k * smooth.mean(axis=(1, 2), keepdims=True)


def custom_pipeline() -> Pipeline:
    nuclei = [(gaussian_blur, {"sigma": 1.5}), (bright_mask, {"k": 1.8}), label_objects]
    return Pipeline(
        name="own",
        steps=[
            Step(name="nuclei", func={0: nuclei}, group_by="channel"),
            Step(name="measure", func=measure_objects, variable_components=["channel"]),
        ],
    )


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, plates_root: Path):
    base = tmp_path_factory.mktemp("custom")
    server, users = start_curve_server(base, plates_root, ["alice", "bob"], extra=TRUST)
    yield server, users
    server.kill()


def _connect(shared, name: str):
    server, users = shared
    return connect(server.address, timeout=20.0, **users.connect_args(name))


def test_when_trusted_user_runs_own_function_then_it_equals_run_local(
    shared, small_plate_path
):
    server, _ = shared
    with _connect(shared, "alice") as conn:
        execution = conn.submit(custom_pipeline(), SMALL, wells=WELLS)
        remote = execution.result(timeout=180)
    local = run_local(custom_pipeline(), small_plate_path, workers=0, wells=WELLS).wells
    assert execution.state == "done", execution.failed_wells
    assert (remote["count"] > 0).all()
    pd.testing.assert_frame_equal(remote, local)
    code = (server.results_root / execution.id / "pipeline.py").read_text()
    assert bright_mask.source in code  # provenance holds the exact code that ran
    assert '@function(version="2", output="mask")' in code


def test_when_trusted_user_previews_own_function_then_the_mask_comes_back(shared):
    with _connect(shared, "alice") as conn:
        result = conn.preview(custom_pipeline(), SMALL, "A01", upto=1)
    assert result.step_names[-1] == "nuclei"
    assert result.images  # the labels of the custom mask were computed remotely


def test_when_untrusted_user_submits_own_function_then_refused_and_audited(shared):
    server, _ = shared
    with _connect(shared, "bob") as conn:
        before = len(list(server.results_root.iterdir()))
        with pytest.raises(RemoteError) as info:
            conn.submit(custom_pipeline(), SMALL, wells=WELLS)
        with pytest.raises(RemoteError) as preview:
            conn.preview(custom_pipeline(), SMALL, "A01")
        assert conn.executions() == [] or all(
            e.user != "bob" for e in conn.executions()
        )
    assert info.value.code == "untrusted_code"
    assert preview.value.code == "untrusted_code"
    assert "[trust]" in str(info.value) and "bob" in str(info.value)
    # Nothing ran: no execution (and so no results folder) was created.
    assert len(list(server.results_root.iterdir())) == before
    refusals = [
        e
        for e in read_audit(server.results_root / "audit.jsonl")
        if e.user == "bob" and e.outcome == "refused"
    ]
    actions = {e.action for e in refusals if e.detail.startswith("untrusted_code: ")}
    assert actions == {"submit", "preview"}
