"""Token buckets per source and host."""

from __future__ import annotations

import asyncio
import time

import pytest

from aggregator.polling.ratelimit import Rate, RateLimits, TokenBucket, parse_rate


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
