"""Token buckets and rate-limit holds per source and host."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from aggregator import errors
from aggregator.polling.ratelimit import (
    HoldPolicy,
    HostHold,
    Rate,
    RateLimits,
    TokenBucket,
    parse_rate,
)


def test_parse_rate() -> None:
    assert parse_rate("600/m") == Rate(600, 60.0)
    assert parse_rate("5/s") == Rate(5, 1.0)
    assert parse_rate("30 / 10s") == Rate(30, 10.0)
    for bad in ("0/s", "5", "5/d", "/s", 5):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_bucket_allows_a_burst_then_spaces_requests() -> None:
    now = [100.0]
    bucket = TokenBucket(Rate(5, 1.0), clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(5)] == [0.0] * 5
    # Reservations queue up: the 6th waits 0.2 s, the 7th 0.4 s.
    assert [round(bucket.reserve(), 6) for _ in range(2)] == [0.2, 0.4]
    now[0] += 10  # refilled, never above the burst size
    assert [bucket.reserve() for _ in range(5)] == [0.0] * 5
    assert bucket.reserve() > 0


def test_accounts_on_one_host_share_a_bucket() -> None:
    limits = RateLimits({"bitz": Rate(1, 1.0)})
    a = limits.bucket("bitzoom", "https://api.bitzoom.com")
    b = limits.bucket("bitzoom", "https://API.bitzoom.com/")
    c = limits.bucket("bitzoom", "https://testnet.bitzoom.com")
    assert a is b and a is not c
    assert limits.bucket("pitrade", "https://partner.example.com/api") is None  # none published
    bitz = limits.bucket("bitz", "https://apiv2.bitz.com")
    assert bitz is not None and bitz.rate == Rate(1, 1.0)  # the config's override


async def test_acquire_waits_for_real() -> None:
    bucket = TokenBucket(Rate(2, 0.2))
    began = time.monotonic()
    await asyncio.gather(*(bucket.acquire() for _ in range(4)))
    assert time.monotonic() - began >= 0.19


class Clocks:
    """A monotonic and a wall clock that move together, by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall0 = datetime(2026, 11, 24, 8, 0, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self.wall0 + timedelta(seconds=self.now - 1000.0)

    def hold(self, policy: HoldPolicy | None = None) -> HostHold:
        return HostHold("bitzoom", "api.bitzoom.com", policy or HoldPolicy(), self.monotonic,
                        self.wall)


def test_a_hold_lasts_as_long_as_retry_after_says() -> None:
    clocks = Clocks()
    hold = clocks.hold()
    hold.check()  # not held
    assert hold.trip(4.5) == 4.5
    assert hold.remaining() == 4.5 and hold.holds == 1
    clocks.now += 1
    with pytest.raises(errors.HostOnHold) as raised:
        hold.check()
    # Named with its host and when it ends (rounded up: a poll at that time is not early).
    assert str(raised.value) == ("bitzoom host api.bitzoom.com on hold after a rate limit "
                                 "until 2026-11-24T08:00:05Z (3.5s left); nothing sent")
    assert raised.value.kind == "backoff" and not raised.value.retryable
    clocks.now += 3.5
    hold.check()
    assert hold.remaining() == 0


def test_without_a_time_the_hold_doubles_up_to_a_cap_until_a_success() -> None:
    clocks = Clocks()
    hold = clocks.hold(HoldPolicy(base=2.0, cap=10.0))
    lengths = []
    for _ in range(5):
        lengths.append(hold.trip(None))
        clocks.now += hold.remaining()  # the next answer comes after the hold
    assert lengths == [2.0, 4.0, 8.0, 10.0, 10.0]
    hold.succeeded()
    assert hold.trip(None) == 2.0
    assert hold.holds == 6


def test_answers_to_requests_sent_before_the_hold_do_not_grow_it() -> None:
    clocks = Clocks()
    hold = clocks.hold(HoldPolicy(base=2.0))
    hold.trip(None)
    clocks.now += 0.5
    assert hold.trip(None) == 1.5  # the same excess: no doubling
    assert hold.trip(6.0) == 6.0  # a longer Retry-After still counts
    assert hold.trip(1.0) == 6.0  # a shorter one never shortens the hold
    assert hold.holds == 1
    clocks.now += 6
    assert hold.trip(None) == 4.0  # a new excess after the hold: doubled


def test_broken_retry_after_values() -> None:
    clocks = Clocks()
    hold = clocks.hold(HoldPolicy(base=2.0, longest=600.0))
    assert hold.trip(float("inf")) == 600.0  # never silenced for good
    clocks.now += 600
    hold.succeeded()
    assert hold.trip(float("nan")) == 2.0  # no time given, in effect
    clocks.now += 2
    hold.succeeded()
    assert hold.trip(-5.0) == 2.0
    clocks.now += 2
    assert hold.trip(0.0) == 0.0  # "retry now": no hold
    hold.check()
    assert hold.holds == 3


def test_accounts_on_one_host_share_a_hold() -> None:
    limits = RateLimits()
    a = limits.hold("bitzoom", "https://api.bitzoom.com")
    assert a is limits.hold("bitzoom", "https://API.bitzoom.com/v1")
    assert a is limits.hold("bitzoom", "https://user:secret@api.bitzoom.com")
    assert a.host == "api.bitzoom.com"  # never a password in a message or a label
    assert a is not limits.hold("bitzoom", "https://testnet.bitzoom.com")
    # Another source on the same host:port (as in the sandbox) has a hold of its own.
    assert a is not limits.hold("bitz", "https://api.bitzoom.com")
    # A source without published limits is held all the same.
    assert limits.hold("pitrade", "https://partner.example.com/api").host == \
        "partner.example.com"
    assert len(limits.holds()) == 4
