"""Worker processes get a handle, join the same session and read as the user."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
from omero_double import factory_for
from omero_fixture import BOB

from openhcs_nb import nuclei_count_pipeline
from openhcs_nb.execution.compile import compile_pipeline
from openhcs_nb.execution.local import pool_context
from openhcs_nb.execution.well import run_well
from openhcs_nb.omero.errors import SessionInvalidError
from openhcs_nb.omero.session import join_session
from openhcs_nb.plates.omero import OmeroPlate, open_omero_plate, reopen_omero_plate


@pytest.fixture
def factory(server):
    """A picklable double factory: handles carry it into worker processes."""
    return factory_for(server)


def test_when_plate_is_pickled_then_only_a_handle_travels(settings, factory):
    session = join_session(BOB, config=settings, factory=factory)
    plate = open_omero_plate("omero:103", session=session)
    handle = plate.handle()
    assert BOB not in repr(handle)
    data = pickle.dumps(plate)
    assert len(data) < 2000  # a handle, not the plate's metadata or pixels
    reopen_omero_plate.cache_clear()
    again = pickle.loads(data)
    assert isinstance(again, OmeroPlate) and again is not plate
    assert again.session is not session and again.session.user_name == "bob"
    assert again.session.factory == factory  # rejoined through the same double
    assert pickle.loads(data) is again  # one reopening per process
    assert np.array_equal(
        again.read_image("A01", 0, 2, 0, 1), plate.read_image("A01", 0, 2, 0, 1)
    )
    session.close()


def test_when_handle_key_has_expired_then_reopening_is_refused(settings, factory):
    session = join_session(BOB, config=settings, factory=factory)
    handle = open_omero_plate("omero:101", session=session).handle()
    reopen_omero_plate.cache_clear()
    with pytest.raises(SessionInvalidError):
        reopen_omero_plate(replace(handle, key="expired-session-key-0000"))
    session.close()


def test_when_a_worker_process_runs_a_well_then_it_matches_the_parent(
    settings, factory, tmp_path
):
    session = join_session(BOB, config=settings, factory=factory)
    plate = open_omero_plate("omero:101", session=session)
    plan = compile_pipeline(nuclei_count_pipeline("DAPI"), plate, ["A02"])
    here = run_well(plan, "A02", None, 0, plate=plate)
    with ProcessPoolExecutor(max_workers=1, mp_context=pool_context()) as pool:
        there = pool.submit(run_well, plan, "A02", None, 0, plate).result()
    assert here.ok and there.ok, (here.error, there.error)
    assert there.summary == here.summary
    for name, column in here.objects.items():
        assert np.array_equal(column, there.objects[name])
    session.close()
