"""The OMERO write-back of a run with an own function holds its exact source.

Uses the OMERO double (tests/omero): real omero-py model objects behind a thin
gateway double. The run itself is the worker's code path (``run_well``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("omero", reason="the omero extra (omero-py) is not installed")
sys.path.insert(0, str(Path(__file__).parents[1] / "omero"))

from omero.rtypes import unwrap
from omero_double import DoubleServer, factory_for
from omero_fixture import BOB, build_fixture

from openhcs_nb import Pipeline, Step, function
from openhcs_nb.execution._store_io import store_layout
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.execution.well import run_well
from openhcs_nb.functions import label_objects, measure_objects
from openhcs_nb.omero.session import join_session
from openhcs_nb.omero.settings import OmeroSettings
from openhcs_nb.omero.writeback import writeback_execution
from openhcs_nb.plates.omero import open_omero_plate
from openhcs_nb.results.store import ResultsStore


@function(output="mask")
def above_mean(stack):
    """Pixels above their plane's mean."""
    return stack > stack.mean(axis=(1, 2), keepdims=True)


def test_when_written_back_then_the_pipeline_file_holds_the_function_source(tmp_path):
    repo = build_fixture(tmp_path / "repo")
    server = DoubleServer(repo)
    settings = OmeroSettings(host="double", data_dir=repo.parent, retry_delay_s=0.0)
    bob = join_session(BOB, config=settings, factory=factory_for(server))
    plate = open_omero_plate("omero:101", session=bob)
    pipeline = Pipeline(
        name="own",
        steps=[
            Step(
                name="nuclei",
                func={"DAPI": [above_mean, label_objects]},
                group_by="channel",
            ),
            Step(name="measure", func=measure_objects, variable_components=["channel"]),
        ],
    )
    code = pipeline.to_code()
    plan = compile_pipeline(pipeline, plate, ["A01"], code=code)
    out = tmp_path / "results" / "ex-own"
    store = ResultsStore(out)
    store.create(store_layout(plan), {"execution_id": "ex-own", "user": "local"})
    store.finalize([run_well(plan, w, out, 0, plate=plate) for w in plan.wells])
    assert above_mean.source in (out / "pipeline.py").read_text()
    report = writeback_execution("ex-own", out.parent, settings, session=bob)
    assert report.state == "done"
    (annotation,) = [
        ln.child for ln in server.links if unwrap(ln.child.ns) == "openhcs-nb/pipeline"
    ]
    saved = server.saved[unwrap(annotation.file.id)].decode()
    assert saved == code and above_mean.source in saved
    bob.close()
