"""The token bucket: bursts served, floods refused, then dropped unanswered."""

from __future__ import annotations

from openhcs_nb.server.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_when_user_sends_a_burst_then_it_is_served_and_the_next_is_refused():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=5, clock=clock)
    assert [limiter.take("bob") for _ in range(5)] == [0.0] * 5
    wait = limiter.take("bob")
    assert 0.0 < wait <= 0.1
    assert limiter.take("alice") == 0.0  # buckets are per user


def test_when_time_passes_then_tokens_come_back():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=2, clock=clock)
    limiter.take("bob"), limiter.take("bob")
    assert limiter.take("bob") > 0
    clock.now += 0.2
    assert limiter.take("bob") == 0.0


def test_when_refusals_exceed_the_burst_within_a_second_then_it_is_a_flood():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=3, clock=clock)
    for _ in range(3):
        limiter.take("bob")
    for _ in range(3):
        assert limiter.take("bob") > 0
    assert not limiter.flooding("bob")
    limiter.take("bob")
    assert limiter.flooding("bob")
    assert not limiter.flooding("alice")
    clock.now += 1.5
    assert not limiter.flooding("bob")


def test_when_rate_is_zero_then_nothing_is_limited():
    limiter = RateLimiter(rate=0, burst=1)
    assert all(limiter.take("bob") == 0.0 for _ in range(1000))
    assert not limiter.flooding("bob")
