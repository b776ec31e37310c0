"""Results back to OMERO: tables, mask ROIs, provenance, replace, retries."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import omero
import pandas as pd
import pytest
import zarr
from omero.rtypes import unwrap
from omero_double import DoubleFactory, DoubleServer, factory_for
from omero_fixture import ALICE, BOB

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.execution._store_io import store_layout
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.execution.well import run_well
from openhcs_nb.omero.errors import NotAuthorizedError, WritebackError
from openhcs_nb.omero.session import join_session
from openhcs_nb.omero.settings import OmeroSettings
from openhcs_nb.omero.writeback import STATUS_FILE, writeback_execution
from openhcs_nb.plates.omero import open_omero_plate
from openhcs_nb.results.store import ResultsStore

BULK = "openmicroscopy.org/omero/bulk_annotations"


@pytest.fixture(scope="session")
def stores(omero_repo: Path, tmp_path_factory) -> Path:
    """Two finished executions on plate 101: pipelines on DAPI and on GFP."""
    root = tmp_path_factory.mktemp("results")
    settings = OmeroSettings(host="double", data_dir=omero_repo.parent)
    session = join_session(
        BOB, config=settings, factory=factory_for(DoubleServer(omero_repo))
    )
    plate = open_omero_plate("omero:101", session=session)
    alice = join_session(
        ALICE, config=settings, factory=factory_for(DoubleServer(omero_repo))
    )
    runs = (
        ("ex-dapi", "DAPI", plate, ["A01", "B03"]),
        ("ex-gfp", "GFP", plate, ["A01", "B03"]),
        ("ex-106", "DAPI", open_omero_plate("omero:106", session=alice), None),
    )
    for execution_id, channel, source, wells in runs:
        plan = compile_pipeline(nuclei_count_pipeline(channel), source, wells)
        out = root / execution_id
        store = ResultsStore(out)
        store.create(
            store_layout(plan), {"execution_id": execution_id, "user": "local"}
        )
        store.finalize([run_well(plan, w, out, 0, plate=source) for w in plan.wells])
    session.close()
    alice.close()
    return root


@pytest.fixture
def results_root(stores: Path, tmp_path: Path) -> Path:
    root = tmp_path / "results"
    shutil.copytree(stores, root)
    return root


def _links(server, ns):
    return [ln.child for ln in server.links if unwrap(ln.child.ns) == ns]


def _table(server, ns):
    (annotation,) = _links(server, ns)
    return {c.name: c for c in server.tables[unwrap(annotation.file.id)].columns}


def _rois(server):
    return {
        unwrap(o.id): o
        for o in server.saved.values()
        if isinstance(o, omero.model.RoiI)
    }


def test_when_written_back_then_well_table_follows_bulk_conventions(
    bob, server, results_root
):
    report = writeback_execution("ex-dapi", results_root, bob.settings, session=bob)
    assert report.state == "done" and report.attempts == 1 and report.user == "bob"
    meta = open_omero_plate("omero:101", session=bob).meta
    wells = pd.read_parquet(results_root / "ex-dapi" / "wells.parquet")
    cols = _table(server, BULK)
    kinds = {name: type(c).__name__ for name, c in cols.items()}
    assert kinds["Plate"] == "PlateColumn" and kinds["Well"] == "WellColumn"
    assert kinds["Image"] == "ImageColumn" and kinds["count"] == "LongColumn"
    assert kinds["area_mean"] == "DoubleColumn"
    assert cols["Plate"].values == [101, 101]
    assert cols["Well Name"].values == ["A01", "B03"]
    assert cols["Well"].values == [meta.well_ids["A01"], meta.well_ids["B03"]]
    assert cols["Image"].values == [
        meta.images[("A01", 0)].image_id,
        meta.images[("B03", 0)].image_id,
    ]
    assert cols["count"].values == wells["count"].tolist()
    assert cols["area_mean"].values == wells["area_mean"].tolist()


def test_when_labels_are_written_as_rois_then_masks_rebuild_the_label_image(
    bob, server, results_root
):
    writeback_execution("ex-dapi", results_root, bob.settings, session=bob)
    meta = open_omero_plate("omero:101", session=bob).meta
    objects = pd.read_parquet(results_root / "ex-dapi" / "objects.parquet")
    cols = _table(server, "openhcs-nb/objects")
    rois = _rois(server)
    assert len(rois) == len(objects) == len(cols["Roi"].values)
    group = zarr.open_group(
        str(results_root / "ex-dapi" / "results.ome.zarr"), mode="r"
    )
    for i, roi_id in enumerate(cols["Roi"].values):
        well, site = cols["Well Name"].values[i], cols["site"].values[i]
        t, z, label = cols["t"].values[i], cols["z"].values[i], cols["label"].values[i]
        roi = rois[roi_id]
        assert unwrap(roi.image.id) == meta.images[(well, site)].image_id
        (mask,) = roi.copyShapes()
        x, y = int(unwrap(mask.x)), int(unwrap(mask.y))
        w, h = int(unwrap(mask.width)), int(unwrap(mask.height))
        bits = np.unpackbits(np.frombuffer(mask.bytes, np.uint8))[: w * h]
        labels = np.asarray(group[f"{well[0]}/{int(well[1:])}/{site}/labels/nuclei/0"])
        plane = labels[t, 0, z]
        expected = np.zeros_like(plane, dtype=bool)
        expected[y : y + h, x : x + w] = bits.reshape(h, w).astype(bool)
        assert np.array_equal(expected, plane == label)


def test_when_written_back_then_provenance_and_pipeline_code_are_on_the_plate(
    bob, server, results_root
):
    report = writeback_execution("ex-dapi", results_root, bob.settings, session=bob)
    store = results_root / "ex-dapi"
    prov = json.loads((store / "provenance.json").read_text())
    (mapped,) = _links(server, "openhcs-nb/provenance")
    values = {nv.name: nv.value for nv in mapped.getMapValue()}
    assert values["execution_id"] == "ex-dapi"
    assert values["pipeline_hash"] == prov["pipeline_hash"]
    assert values["omero_user"] == "bob" and values["submitted_by"] == "local"
    assert values["server_version"] == prov["openhcs_nb_version"]
    assert values["wells_done"] == "2" and values["rois"] == str(report.rois)
    (code,) = _links(server, "openhcs-nb/pipeline")
    assert server.saved[unwrap(code.file.id)] == (store / "pipeline.py").read_bytes()
    assert unwrap(code.file.name) == f"pipeline_{prov['pipeline_hash']}.py"
    saved = json.loads((store / STATUS_FILE).read_text())
    assert saved["state"] == "done" and saved["provenance"] == unwrap(mapped.id)


def test_when_same_pipeline_reruns_then_earlier_outputs_are_replaced_not_others(
    bob, server, results_root
):
    writeback_execution("ex-dapi", results_root, bob.settings, session=bob)
    writeback_execution("ex-gfp", results_root, bob.settings, session=bob)
    first_rois = {
        oid
        for oid, r in _rois(server).items()
        if "execution=ex-dapi " in unwrap(r.description)
    }
    # A second execution of the DAPI pipeline on the same plate.
    shutil.copytree(results_root / "ex-dapi", results_root / "ex-dapi-2")
    prov_path = results_root / "ex-dapi-2" / "provenance.json"
    prov = json.loads(prov_path.read_text())
    prov_path.write_text(json.dumps({**prov, "execution_id": "ex-dapi-2"}))
    report = writeback_execution("ex-dapi-2", results_root, bob.settings, session=bob)
    assert report.replaced_executions == ["ex-dapi"]
    markers = sorted(unwrap(ln.child.description) for ln in server.links)
    assert len(markers) == 8  # 4 objects per execution, two executions left
    assert not any("execution=ex-dapi " in m for m in markers)
    assert sum("execution=ex-gfp " in m for m in markers) == 4
    remaining = [unwrap(r.description) for r in _rois(server).values()]
    assert first_rois - set(_rois(server))  # ex-dapi's ROIs were deleted...
    assert not any("execution=ex-dapi " in d for d in remaining)
    assert any("execution=ex-gfp " in d for d in remaining)  # ...not ex-gfp's


def test_when_plate_is_outside_the_session_group_then_writes_name_its_group(
    join, server, results_root
):
    alice = join(ALICE)  # default group 7; plate 106 is in her group 11
    assert alice.group_id == 7
    report = writeback_execution("ex-106", results_root, alice.settings, session=alice)
    assert report.state == "done"
    assert {unwrap(ln.parent.id) for ln in server.links} == {106}
    assert alice.gateway.SERVICE_OPTS["omero.group"] == "11"


def test_when_user_may_not_annotate_then_refused_and_nothing_written(
    bob, server, results_root
):
    store = results_root / "ex-106"  # alice's run; bob may read plate 106 only
    before = (store / "wells.parquet").read_bytes()
    with pytest.raises(NotAuthorizedError, match="may read but not annotate plate 106"):
        writeback_execution("ex-106", results_root, bob.settings, session=bob)
    assert server.saved == {} and server.links == []
    assert (store / "wells.parquet").read_bytes() == before
    assert json.loads((store / STATUS_FILE).read_text())["state"] == "failed"


def test_when_a_call_fails_once_then_retry_writes_exactly_one_copy(
    bob, server, results_root
):
    server.fail_next["newTable"] = 1  # after the ROIs were saved
    waits: list[float] = []
    settings = replace(bob.settings, retry_delay_s=0.5)
    report = writeback_execution(
        "ex-dapi", results_root, settings, session=bob, sleep=waits.append
    )
    assert report.attempts == 2 and report.state == "done" and waits == [0.5]
    assert "ConnectionLostException" in report.errors[0]
    objects = pd.read_parquet(results_root / "ex-dapi" / "objects.parquet")
    assert len(_rois(server)) == len(objects)  # the first attempt's ROIs are gone
    assert len(server.links) == 4


def test_when_every_attempt_fails_then_error_and_local_results_remain(
    bob, server, results_root
):
    server.fail_next["newTable"] = 99
    with pytest.raises(WritebackError, match="failed 3 times; the results stay in"):
        writeback_execution(
            "ex-dapi", results_root, bob.settings, session=bob, sleep=lambda s: None
        )
    assert _rois(server) == {} and server.links == []
    status = json.loads((results_root / "ex-dapi" / STATUS_FILE).read_text())
    assert status["state"] == "failed" and len(status["errors"]) == 3
    assert ResultsStore(results_root / "ex-dapi").load().wells.shape[0] == 2


def test_when_labels_are_off_then_no_rois_and_no_roi_column(join, server, results_root):
    session = join(labels="none")
    report = writeback_execution(
        "ex-dapi", results_root, session.settings, session=session
    )
    assert report.rois == 0 and _rois(server) == {}
    assert "Roi" not in _table(server, "openhcs-nb/objects")


def test_when_no_session_is_available_then_writeback_says_how(
    results_root, settings, monkeypatch
):
    monkeypatch.delenv("OMERO_SESSION_KEY", raising=False)
    with pytest.raises(WritebackError, match="set OMERO_SESSION_KEY"):
        writeback_execution("ex-dapi", results_root, settings)
    with pytest.raises(WritebackError, match="no results store for execution nope"):
        writeback_execution("nope", results_root, settings)


def test_when_run_with_a_key_then_it_joins_through_the_factory_and_writes_are_logged(
    results_root, settings, omero_repo
):
    report = writeback_execution(
        "ex-gfp",
        results_root,
        settings,
        session_key=BOB,
        factory=DoubleFactory(omero_repo),
    )
    assert report.state == "done"
    log = [
        json.loads(x)
        for x in (omero_repo.parent / "writes.jsonl").read_text().splitlines()
    ]
    kinds = {entry["kind"] for entry in log}
    assert {"roi", "table", "link"} <= kinds
