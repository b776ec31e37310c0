"""Plates sharing one session share its one RawPixelsStore, and stay correct.

On the server one user's plates are opened with one joined session, and
omero-py hands that connection a single RawPixelsStore; every Ice read must
therefore get the pixels of its own image, whichever plate read last and
whichever thread reads.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from dataclasses import replace

import numpy as np
import pytest
from omero_double import factory_for
from omero_fixture import BOB

from openhcs_nb.omero.session import join_session
from openhcs_nb.plates._omero_store import shared_store
from openhcs_nb.plates.omero import open_omero_plate


def _truth(server, plate, well: str, site: int) -> np.ndarray:
    image = plate.image(well, site)
    return np.load(server.root / server.images[image.image_id]["truth"])


@pytest.fixture
def ice_session(join):
    """Bob's one session, every image read over Ice."""
    return join(pixel_paths=("ice",))


def test_when_two_plates_of_one_session_are_read_alternately_then_each_gets_its_own(
    ice_session, server
):
    first = open_omero_plate("omero:101", session=ice_session)
    second = open_omero_plate("omero:102", session=ice_session)
    for _ in range(2):  # 101, 102, 101, 102: the store moves every time
        for plate in (first, second):
            got = plate.read_image("A01", 0, 1)
            assert np.array_equal(got, _truth(server, plate, "A01", 0)[0, 1, 0]), (
                plate.ref
            )
    assert first.planes_read["ice"] == second.planes_read["ice"] == 2


def test_when_plates_of_two_groups_alternate_then_pixels_stay_right(
    ice_session, server
):
    screening = open_omero_plate("omero:101", session=ice_session)  # group 3
    read_only = open_omero_plate("omero:106", session=ice_session)  # group 11
    for plate in (screening, read_only, screening, read_only):
        got = plate.read_image("A01", 0, 0)
        assert np.array_equal(got, _truth(server, plate, "A01", 0)[0, 0, 0])


def test_when_one_plate_closes_then_the_other_still_reads(ice_session, server):
    first = open_omero_plate("omero:101", session=ice_session)
    second = open_omero_plate("omero:102", session=ice_session)
    first.read_image("A01", 0, 0)
    second.read_image("A01", 0, 0)
    first.read_image("A01", 0, 0)
    second.close()  # closes the connection's store; the next read reopens it
    got = first.read_image("A01", 0, 1)  # the image the store was last set to
    assert np.array_equal(got, _truth(server, first, "A01", 0)[0, 1, 0])


def test_when_threads_read_plates_of_one_session_then_none_sees_the_others(
    ice_session, server
):
    plates = [
        open_omero_plate(ref, session=ice_session) for ref in ("omero:101", "omero:102")
    ]
    wrong: list[str] = []
    start = threading.Barrier(4)

    def read(plate, well: str) -> None:
        truth = _truth(server, plate, well, 0)
        start.wait()
        for round_ in range(20):
            channel = round_ % 2
            if not np.array_equal(
                plate.read_image(well, 0, channel), truth[0, channel, 0]
            ):
                wrong.append(f"{plate.ref} {well} c{channel}")
            time.sleep(0)  # let the other threads move the store in between

    wells = {"omero:101": ("A01", "A02"), "omero:102": ("A01", "B02")}
    threads = [
        threading.Thread(target=read, args=(plate, well))
        for plate in plates
        for well in wells[plate.ref]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert wrong == []
    assert sum(p.planes_read["ice"] for p in plates) == 80


def test_when_pixels_id_is_unchanged_then_it_is_not_set_again(ice_session, server):
    plate = open_omero_plate("omero:101", session=ice_session)
    store = ice_session.gateway.createRawPixelsStore()
    before = store.sets
    plate.read_well("A01")  # 2 fields x 2 channels x 2 z, two images
    assert store.sets - before == 2  # one setPixelsId per image, not per plane


def test_when_a_session_is_dropped_then_its_store_state_does_not_keep_it_alive(
    server, settings
):
    config = replace(settings, pixel_paths=("ice",))
    session = join_session(BOB, config=config, factory=factory_for(server))
    plate = open_omero_plate("omero:101", session=session)
    plate.read_image("A01", 0, 0)
    gone = weakref.ref(session.gateway)
    assert shared_store(session.gateway) is plate._ice  # one per connection
    plate.close()
    session.close()
    del plate, session
    gc.collect()
    assert gone() is None
