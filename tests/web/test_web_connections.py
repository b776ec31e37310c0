"""The plugin's connection cache: one per OMERO session, bounded, expiring.

Real connections to the real execution server of conftest.py; only the
clock is the test's, so idle expiry needs no waiting.
"""

from __future__ import annotations

import dataclasses

import pytest
from web_double import SESSIONS

from openhcs_nb.client import RemoteSessionInvalid


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_pool(plugin):
    from omero_openhcs.connections import ConnectionPool

    made = []

    def make(**changes):
        pool = ConnectionPool(
            dataclasses.replace(plugin.settings, **changes), clock=(clock := Clock())
        )
        pool.clock = clock
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()


def test_when_the_same_session_asks_twice_then_one_connection_is_kept(make_pool):
    pool = make_pool()
    first = pool.get(SESSIONS["bob"])
    assert pool.get(SESSIONS["bob"]) is first
    assert first.server_info.omero_user == "bob"
    other = pool.get(SESSIONS["alice"])
    assert other is not first and other.server_info.omero_user == "alice"
    assert len(pool) == 2


def test_when_more_sessions_than_the_bound_then_the_oldest_is_closed(make_pool):
    pool = make_pool(max_connections=1)
    bob = pool.get(SESSIONS["bob"])
    alice = pool.get(SESSIONS["alice"])
    assert len(pool) == 1
    assert repr(bob).endswith("(closed)>")
    assert not repr(alice).endswith("(closed)>")


def test_when_a_connection_sat_idle_then_the_next_lookup_closes_it(make_pool):
    pool = make_pool(idle_seconds=60.0)
    bob = pool.get(SESSIONS["bob"])
    pool.clock.now = 61.0
    alice = pool.get(SESSIONS["alice"])
    assert repr(bob).endswith("(closed)>") and len(pool) == 1
    assert pool.get(SESSIONS["bob"]) is not bob
    assert pool.get(SESSIONS["alice"]) is alice


def test_when_discarded_then_it_is_closed_and_reopened_on_demand(make_pool):
    pool = make_pool()
    bob = pool.get(SESSIONS["bob"])
    pool.discard(SESSIONS["bob"])
    assert repr(bob).endswith("(closed)>") and len(pool) == 0
    assert pool.get(SESSIONS["bob"]) is not bob


def test_when_the_session_is_expired_then_nothing_is_cached(make_pool):
    pool = make_pool()
    with pytest.raises(RemoteSessionInvalid):
        pool.get(SESSIONS["expired"])
    assert len(pool) == 0


def test_when_a_page_polls_a_run_then_one_followed_handle_answers(make_pool):
    """Each poll reads the same handle: no re-attach, no refetch of every event.

    The client holds handles weakly, so only the pool can keep one alive
    between two polls of a page.
    """
    import gc
    import weakref

    from web_client import run_for

    from openhcs_nb import nuclei_count_pipeline

    pool = make_pool()
    run = run_for(pool, "bob", nuclei_count_pipeline(), "omero:101", wells=["A01"])
    execution_id = run.id
    del run
    kept = weakref.ref(pool.execution(SESSIONS["bob"], execution_id))
    gc.collect()
    assert kept() is not None, "the pool let the followed handle go"
    assert pool.execution(SESSIONS["bob"], execution_id) is kept()
    assert kept().wait(120)
    assert kept().progress[0] == 1
