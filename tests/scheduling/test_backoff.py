"""A rate limit holds every account of its source and host across polls, and only those.

Against the sandbox, where all four fakes share one host:port: the hold is per (source,
host), so the other sources are the "other hosts".
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from sqlalchemy import text

from aggregator.config import load_config
from aggregator.polling.client import make_client
from aggregator.polling.poller import Account, RetryPolicy, poll_until_deadline, prepare
from aggregator.polling.ratelimit import RateLimits, host_of
from aggregator.sandbox import Sandbox, account_tables, demo_accounts
from aggregator.storage import database
from tests.scheduling.test_daemon import (  # noqa: F401  (fixtures)
    Start,
    balance_times,
    sandbox,
    sqlite,
    start,
    stop,
    wait_for,
)

ZOOM = ("demo-bitzoom", "demo-bitzoom-hmac")  # bearer and HMAC: one source, one host
OTHERS = tuple(a.name for a in demo_accounts() if a.source != "bitzoom")  # every other source


def accounts(tmp_path: Path, box: Sandbox) -> dict[str, Account]:
    """The box's accounts, prepared as the daemon does: one RateLimits for all."""
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///unused.db"\n'
                    + account_tables(box, box.accounts()))
    limits = RateLimits()
    return {a.name: prepare(a, limits) for a in load_config(path).accounts}


def sent(box: Sandbox, source_prefix: str, after: float = 0.0) -> list[float]:
    """When each request under ``source_prefix`` arrived, after ``after``."""
    return [r.time for r in box.requests if r.path.startswith(source_prefix)
            and r.time > after]


async def test_a_held_poll_sends_nothing_and_says_until_when(tmp_path: Path) -> None:
    with Sandbox(demo_accounts()) as box:
        by_name = accounts(tmp_path, box)
        box.set_fault("demo-bitzoom-hmac", "rate_limited", count=1, retry_after=0.8)
        async with make_client() as client:
            (limited,) = await poll_until_deadline(client, by_name["demo-bitzoom-hmac"], 0.5)
            assert limited.error_kind == "rate_limited"
            before = len(box.requests)
            # The other account of that host: held, without a request (not even for a token).
            (held,) = await poll_until_deadline(client, by_name["demo-bitzoom"], 5.0)
            assert len(box.requests) == before
            assert held.error_kind == "backoff" and held.responses == []
            host = host_of(box.url)
            assert held.error_message is not None
            assert held.error_message.startswith(f"bitzoom host {host} on hold after a rate "
                                                 "limit until 20")
            assert "nothing sent" in held.error_message
            # Another source on the same host:port polls as usual.
            (other,) = await poll_until_deadline(client, by_name["demo-bitz"], 5.0)
            assert other.error_kind is None
            hold = by_name["demo-bitzoom"].hold
            assert hold is not None and hold is by_name["demo-bitzoom-hmac"].hold
            await asyncio.sleep(hold.remaining() + 0.01)
            for name in ZOOM:
                (after,) = await poll_until_deadline(client, by_name[name], 5.0)
                assert after.error_kind is None, after.error_message


async def test_a_retry_waits_for_a_hold_that_began_while_its_request_was_out(
    tmp_path: Path,
) -> None:
    with Sandbox(demo_accounts(), latency=0.3) as box:
        account = accounts(tmp_path, box)["demo-bitzoom-hmac"]
        hold = account.hold
        assert hold is not None
        box.set_fault(account.name, "server_error", count=1)
        async with make_client() as client:
            poll = asyncio.create_task(poll_until_deadline(
                client, account, 10.0, RetryPolicy(first_delay=0.01)))
            await asyncio.sleep(0.1)
            hold.trip(0.5)  # another account's 429, while our request is out
            await asyncio.sleep(0.4)  # our 500 is in: the retry waits for the hold ...
            hold.trip(1.0)  # ... which grows meanwhile
            until = time.monotonic() + 1.0
            records = await poll
    assert [r.error_kind for r in records] == ["server_error", None]
    _, retry = sorted(sent(box, "/bitzoom"))
    assert retry >= until, retry - until


async def test_a_rate_limit_longer_than_the_deadline_ends_the_poll(tmp_path: Path) -> None:
    with Sandbox(demo_accounts()) as box:
        account = accounts(tmp_path, box)["demo-bitopro"]
        box.set_fault(account.name, "rate_limited", retry_after=3)
        async with make_client() as client:
            began = time.monotonic()
            records = await poll_until_deadline(client, account, 1.0)
            took = time.monotonic() - began
    # One attempt: waiting 3 s cannot fit into 1 s, so the poll ends at once.
    assert [r.error_kind for r in records] == ["rate_limited"]
    assert took < 0.5
    assert len(sent(box, "/bitopro")) == 1


RETRY_AFTER = 3.0  # three polls' worth at a 1 s interval
IN_FLIGHT = 0.1  # a request sent before the 429 had arrived may land just after it


def test_a_rate_limited_host_stays_quiet_while_the_others_poll_on_time(
    start: Start, sandbox: Sandbox, sqlite: str  # noqa: F811
) -> None:
    sandbox.set_fault("demo-bitzoom-hmac", "rate_limited", count=1, retry_after=RETRY_AFTER)
    process = start("1s")

    def limited_at() -> float | None:
        return next((r.time for r in sandbox.requests if r.outcome == "fault:rate_limited"),
                    None)

    wait_for(lambda: limited_at() is not None, 10)
    t429 = limited_at()
    assert t429 is not None
    end = t429 + RETRY_AFTER
    # Both accounts of the host come back after the hold, and poll once more after that.
    wait_for(lambda: all(len([t for t in balance_times(sandbox).get(n, []) if t > end]) >= 2
                         for n in ZOOM), 10)
    code, err, _ = stop(process)
    assert code == 0, err

    zoom = sent(sandbox, "/bitzoom", after=t429)
    assert [t - t429 for t in zoom if t429 + IN_FLIGHT < t < end] == []
    resumed = min(t for t in zoom if t >= end) - end
    assert resumed <= 1.1 + 0.5, resumed  # the next poll after the hold, within the interval

    times = balance_times(sandbox)
    for name in OTHERS:
        gaps = [b - a for a, b in itertools.pairwise(times[name])]
        assert max(gaps) <= 1.1 + 1.0, (name, gaps)  # interval + jitter + 1 s
        assert len([t for t in times[name] if t429 < t < end]) >= RETRY_AFTER - 1, name

    engine = database.open_database(sqlite)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT account, status, error_kind, error_message FROM poll_log "
                "WHERE account IN ('demo-bitzoom', 'demo-bitzoom-hmac') "
                "ORDER BY started_at")).all()
    finally:
        engine.dispose()
    host = host_of(sandbox.url)
    for name in ZOOM:
        mine = [r for r in rows if r.account == name]
        held = [r for r in mine if r.error_kind == "backoff"]
        assert len(held) >= RETRY_AFTER - 1, mine
        assert all(r.status == "failed" and f"bitzoom host {host} on hold" in r.error_message
                   and " until " in r.error_message for r in held), held
        assert mine[-1].status == "ok", mine
    assert "failed [backoff]" in err
