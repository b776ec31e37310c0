"""The same source and write-back against a real OMERO server (``pytest -m omero``).

Set ``OMERO_HOST``, ``OMERO_USER``, ``OMERO_PASSWORD`` (and ``OMERO_PORT``,
``OMERO_DATA_DIR`` when this machine mounts the server's binary repository).
The suite logs in once, creates a small plate through the API (two wells, one
field, two channels, 64 x 64 uint16: OMERO stores such images as ROMIO
buffers), reads it through every allowed path, runs the default pipeline,
writes the results back, checks the table and annotations through OMERO's own
services, and deletes everything it created. With ``OMERO_IMPORT_FILE`` (an HCS
file OMERO can import) and the ``omero`` CLI on PATH, it also imports that file
and checks the original-file path against Ice.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.omero
_NEEDED = ("OMERO_HOST", "OMERO_USER", "OMERO_PASSWORD")
_MISSING = [name for name in _NEEDED if not os.environ.get(name)]


@pytest.fixture(scope="module")
def real():
    if _MISSING:
        pytest.skip(f"needs a real OMERO server: set {', '.join(_MISSING)}")
    from openhcs_nb.omero.session import join_session, login
    from openhcs_nb.omero.settings import OmeroSettings

    data = os.environ.get("OMERO_DATA_DIR")
    settings = OmeroSettings(
        host=os.environ["OMERO_HOST"],
        port=int(os.environ.get("OMERO_PORT", "4064")),
        data_dir=Path(data) if data else None,
        retry_delay_s=1.0,
    )
    key = login(
        settings.host,
        os.environ["OMERO_USER"],
        settings.port,
        ask=lambda _: os.environ["OMERO_PASSWORD"],
    )
    session = join_session(key, config=settings)
    yield session
    session.close()


@pytest.fixture(scope="module")
def api_plate(real) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """A two-well plate made through the API; deleted afterwards."""
    from omero.rtypes import rint, rstring

    from openhcs_nb.omero.gateway import load_omero

    model = load_omero().model
    conn = real.gateway
    rng = np.random.default_rng(3)
    truth: dict[str, np.ndarray] = {}
    plate = model.PlateI()
    plate.name = rstring("openhcs-nb pytest -m omero")
    plate.rows, plate.columns = rint(1), rint(2)
    for column, well_name in enumerate(("A01", "A02")):
        data = rng.integers(0, 4000, (2, 64, 64), dtype=np.uint16)  # c, y, x
        truth[well_name] = data
        image = conn.createImageFromNumpySeq(
            iter([data[0], data[1]]), f"pytest {well_name}", sizeZ=1, sizeC=2, sizeT=1
        )
        well = model.WellI()
        well.row, well.column = rint(0), rint(column)
        sample = model.WellSampleI()
        sample.image = model.ImageI(image.getId(), False)
        well.addWellSample(sample)
        plate.addWell(well)
    saved = conn.getUpdateService().saveAndReturnObject(plate)
    plate_id = int(saved.id.val)
    yield plate_id, truth
    conn.deleteObjects(
        "Plate", [plate_id], deleteAnns=True, deleteChildren=True, wait=True
    )


def test_when_real_plate_is_read_then_every_path_equals_uploaded_pixels(
    real, api_plate
):
    from dataclasses import replace

    from openhcs_nb.plates.omero import open_omero_plate

    plate_id, truth = api_plate
    fast = open_omero_plate(f"omero:{plate_id}", session=real)
    ice_session = replace(real, settings=replace(real.settings, pixel_paths=("ice",)))
    ice = open_omero_plate(f"omero:{plate_id}", session=ice_session)
    assert fast.wells == ("A01", "A02") and fast.layout.dtype == "uint16"
    expected_path = "romio" if real.settings.data_dir else "ice"
    for well, data in truth.items():
        assert fast.pixel_path(well, 0) == expected_path, fast.why_not(well, 0)
        got = fast.read_well(well).data[0, 0, :, 0]
        assert np.array_equal(got, data)
        assert np.array_equal(ice.read_well(well).data[0, 0, :, 0], data)


def test_when_real_plate_or_key_is_bad_then_refusals_are_clear(real):
    from openhcs_nb.errors import UnknownPlateError
    from openhcs_nb.omero.errors import SessionInvalidError
    from openhcs_nb.omero.session import join_session
    from openhcs_nb.plates.omero import open_omero_plate

    with pytest.raises(UnknownPlateError):
        open_omero_plate("omero:987654321", session=real)
    with pytest.raises(SessionInvalidError):
        join_session("not-a-session-key-0000", config=real.settings)


def test_when_real_writeback_runs_twice_then_one_table_and_provenance_remain(
    real, api_plate, tmp_path
):
    from openhcs_nb import nuclei_count_pipeline
    from openhcs_nb.execution._store_io import store_layout
    from openhcs_nb.execution.compile import compile_pipeline
    from openhcs_nb.execution.well import run_well
    from openhcs_nb.omero.writeback import writeback_execution
    from openhcs_nb.plates.omero import open_omero_plate
    from openhcs_nb.results.store import ResultsStore

    plate_id, _ = api_plate
    plate = open_omero_plate(f"omero:{plate_id}", session=real)
    plan = compile_pipeline(nuclei_count_pipeline(0), plate, None)
    out = tmp_path / "ex-real"
    store = ResultsStore(out)
    store.create(store_layout(plan), {"execution_id": "ex-real", "user": "pytest"})
    store.finalize([run_well(plan, w, out, 0, plate=plate) for w in plan.wells])
    for _ in range(2):  # the second run replaces the first
        report = writeback_execution("ex-real", tmp_path, real.settings, session=real)
        assert report.state == "done", report.errors
    wrapper = real.gateway.getObject("Plate", plate_id)
    bulk = list(wrapper.listAnnotations(ns="openmicroscopy.org/omero/bulk_annotations"))
    assert len(bulk) == 1
    assert len(list(wrapper.listAnnotations(ns="openhcs-nb/provenance"))) == 1
    resources = real.gateway.getSharedResources()
    table = resources.openTable(bulk[0].getFile()._obj)
    try:
        names = [c.name for c in table.getHeaders()]
        assert {"Plate", "Well", "Image", "Well Name"} <= set(names)
        assert table.getNumberOfRows() == 2
    finally:
        table.close()


def test_when_real_import_is_read_then_original_files_equal_ice(real):
    path = os.environ.get("OMERO_IMPORT_FILE")
    if not path or shutil.which("omero") is None or real.settings.data_dir is None:
        pytest.skip("set OMERO_IMPORT_FILE and OMERO_DATA_DIR, with the omero CLI")
    from dataclasses import replace

    from openhcs_nb.plates.omero import open_omero_plate

    done = subprocess.run(
        [
            "omero",
            "import",
            "-s",
            real.settings.host,
            "-p",
            str(real.settings.port),
            "-k",
            real.key,
            "--output",
            "ids",
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    match = re.search(r"Plate:(\d+)", done.stdout)
    if match is None:
        pytest.skip(f"the import made no plate: {done.stdout[-200:]}")
    plate_id = int(match.group(1))
    try:
        fast = open_omero_plate(f"omero:{plate_id}", session=real)
        ice = open_omero_plate(
            f"omero:{plate_id}",
            session=replace(
                real, settings=replace(real.settings, pixel_paths=("ice",))
            ),
        )
        well = fast.wells[0]
        assert fast.pixel_path(well, 0) == "original", fast.why_not(well, 0)
        assert fast.read_well(well).data.tobytes() == ice.read_well(well).data.tobytes()
    finally:
        real.gateway.deleteObjects(
            "Plate", [plate_id], deleteAnns=True, deleteChildren=True, wait=True
        )
