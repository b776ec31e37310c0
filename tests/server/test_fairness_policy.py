"""The picking policy alone: admission, well turns and previews, no threads."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import pytest

from openhcs_nb.server.errors import QuotaExceededError
from openhcs_nb.server.fairness import FairPolicy, SchedulerLimits


@dataclass(eq=False)
class Run:
    user: str
    pending: deque[str]
    name: str = ""
    cancelled: bool = False


@dataclass(eq=False)
class Look:
    user: str
    name: str = ""


def run(user: str, wells: int, name: str = "") -> Run:
    return Run(user, deque(f"W{i:02d}" for i in range(wells)), name or user)


def policy(
    max_concurrent: int = 2, workers: int = 2, **limits: int
) -> FairPolicy[Run, Look]:
    return FairPolicy(max_concurrent, workers, SchedulerLimits(**limits))


def take(p: FairPolicy, picks: int) -> list[object]:
    """Pick ``picks`` times as free workers would, admitting first each time."""
    out = []
    for _ in range(picks):
        p.admit()
        got = p.pick()
        if got is None:
            break
        out.append(got)
    return out


def who(picks: list[object]) -> list[str]:
    return [p[0].name if isinstance(p, tuple) else f"preview:{p.name}" for p in picks]


def test_when_a_has_twenty_runs_and_b_one_then_b_is_picked_within_two():
    p = policy(max_concurrent=2)
    for i in range(20):
        p.add(run("alice", 96, f"a{i}"))
    p.add(run("bob", 1, "b"))
    assert "b" in who(take(p, 2))


def test_when_a_fills_the_slots_then_b_is_admitted_at_the_next_free_slot():
    p = policy(max_concurrent=2, max_running_per_user=2)
    first = [run("alice", 3, f"a{i}") for i in range(5)]
    for r in first:
        p.add(r)
    p.admit()
    assert [r.name for r in p.running] == ["a0", "a1"]
    p.add(run("bob", 1, "b"))
    assert p.admit() == []  # no slot free: nothing is pre-empted
    p.remove(first[0])  # a0 finished
    assert [r.name for r in p.admit()] == ["b"]  # not a2, which came first


def test_when_a_user_is_at_their_limit_then_others_are_admitted_ahead():
    p = policy(max_concurrent=4, max_running_per_user=1)
    for i in range(3):
        p.add(run("alice", 2, f"a{i}"))
    p.add(run("bob", 2, "b"))
    p.add(run("carol", 2, "c"))
    admitted = [r.name for r in p.admit()]
    assert admitted == ["a0", "b", "c"]  # the 4th slot stays free: alice is full
    assert Counter(r.user for r in p.running) == {"alice": 1, "bob": 1, "carol": 1}


def test_when_running_limit_is_two_then_never_more_than_two_of_one_user_run():
    p = policy(max_concurrent=10, max_running_per_user=2)
    runs = [run("alice", 1, f"a{i}") for i in range(6)]
    for r in runs:
        p.add(r)
    for _ in runs:
        p.admit()
        assert sum(x.user == "alice" for x in p.running) <= 2
        p.remove(p.running[0])
    assert p.waiting == []


def test_when_users_share_workers_then_wells_alternate_by_user_not_by_run():
    p = policy(max_concurrent=3, max_running_per_user=2)
    p.add(run("alice", 4, "a0"))
    p.add(run("alice", 4, "a1"))
    p.add(run("bob", 4, "b"))
    users = [pick[0].user for pick in take(p, 8)]
    assert users == ["alice", "bob"] * 4
    # and alice's two runs take turns among themselves
    p2 = policy(max_concurrent=3, max_running_per_user=2)
    for r in (run("alice", 2, "a0"), run("alice", 2, "a1")):
        p2.add(r)
    assert who(take(p2, 4)) == ["a0", "a1", "a0", "a1"]


def test_when_a_run_is_cancelled_then_its_wells_are_not_picked():
    p = policy()
    a, b = run("alice", 3, "a"), run("bob", 3, "b")
    p.add(a)
    p.add(b)
    p.admit()
    a.cancelled = True
    assert who(take(p, 3)) == ["b", "b", "b"]


def test_when_a_preview_arrives_then_it_goes_before_queued_wells():
    p = policy(workers=3)
    p.add(run("alice", 10, "a"))
    take(p, 1)
    p.add_preview(Look("bob", "p1"))
    assert who(take(p, 1)) == ["preview:p1"]


def test_when_wells_wait_then_previews_hold_at_most_workers_minus_one():
    p = policy(workers=3, max_previews_per_user=5)
    p.add(run("alice", 10, "a"))
    for user in ("bob", "carol", "dave"):
        p.add_preview(Look(user, user))
        p.add_preview(Look(user, user))
    picks = who(take(p, 3))
    assert picks.count("a") == 1  # third worker is kept for the plate
    assert sum(x.startswith("preview") for x in picks) == 2
    assert picks[:2] == ["preview:bob", "preview:carol"]


def test_when_a_preview_ends_then_the_next_preview_takes_its_worker():
    p = policy(workers=2)
    p.add(run("alice", 10, "a"))
    first, second = Look("bob", "p1"), Look("carol", "p2")
    p.add_preview(first)
    p.add_preview(second)
    assert who(take(p, 2)) == ["preview:p1", "a"]  # cap 1: the plate keeps going
    p.preview_done(first)
    assert who(take(p, 1)) == ["preview:p2"]


def test_when_no_wells_wait_then_previews_use_every_worker():
    p = policy(workers=3, max_previews_per_user=3)
    for _ in range(3):
        p.add_preview(Look("bob", "p"))
    assert who(take(p, 3)) == ["preview:p"] * 3


def test_when_users_flood_previews_then_they_are_taken_round_robin():
    p = policy(workers=10, max_previews_per_user=4)
    for i in range(4):
        p.add_preview(Look("alice", f"a{i}"))
    p.add_preview(Look("bob", "b0"))
    p.add_preview(Look("bob", "b1"))
    assert who(take(p, 4)) == [
        "preview:a0",
        "preview:b0",
        "preview:a1",
        "preview:b1",
    ]


def test_when_a_user_has_max_previews_in_flight_then_the_next_is_refused():
    p = policy(max_previews_per_user=2)
    one, two = Look("bob", "1"), Look("bob", "2")
    p.add_preview(one)
    p.add_preview(two)
    take(p, 1)  # one running, one queued: both count
    with pytest.raises(QuotaExceededError) as info:
        p.add_preview(Look("bob", "3"))
    assert info.value.code == "quota_exceeded"
    assert "max_previews_per_user = 2" in str(info.value)
    assert "'bob'" in str(info.value)
    p.add_preview(Look("alice", "a"))  # another user is not affected
    p.preview_done(one)
    p.add_preview(Look("bob", "3"))  # a slot came free


def test_when_limits_come_from_a_config_section_then_missing_keys_keep_defaults():
    @dataclass(frozen=True)
    class Section:
        max_running_per_user: int = 5
        well_timeout_s: float = 0.0
        unrelated: int = field(default=1)

    limits = SchedulerLimits.from_config(Section(), timeout_grace_s=1.5)
    assert limits.max_running_per_user == 5
    assert limits.well_timeout_s == 0.0
    assert limits.max_previews_per_user == SchedulerLimits().max_previews_per_user
    assert limits.timeout_grace_s == 1.5


def test_when_a_new_user_arrives_after_many_turns_then_their_well_is_next():
    p = policy(max_concurrent=3)
    p.add(run("alice", 20, "a0"))
    p.add(run("alice", 20, "a1"))
    take(p, 10)
    p.add(run("bob", 1, "b"))
    assert who(take(p, 1)) == ["b"]
