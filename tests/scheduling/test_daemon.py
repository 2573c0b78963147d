"""`aggregator run` as a real subprocess against the sandbox."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from aggregator.sandbox import (
    FAKES,
    FakeAccount,
    FakeBalance,
    Sandbox,
    account_tables,
    demo_accounts,
)
from aggregator.storage import database
from tests.e2e.conftest import write_config

Start = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(demo_accounts()) as running:
        yield running


@pytest.fixture
def sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'holdings.db'}"


@pytest.fixture
def start(tmp_path: Path, sandbox: Sandbox, sqlite: str) -> Iterator[Start]:
    """Start the daemon on a config for the sandbox's accounts; killed at the end."""
    processes: list[subprocess.Popen[str]] = []

    def run(interval: str = "1s", env: dict[str, str] | None = None,
            extra: str = "", options: tuple[str, ...] = ()) -> subprocess.Popen[str]:
        config = write_config(tmp_path / "config.toml", sandbox, sqlite, sandbox.accounts(),
                              f'[schedule]\ninterval = "{interval}"\n{extra}')
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", *options, "--config", str(config), "run"],
            cwd=tmp_path, env={**os.environ, **(env or {})}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        processes.append(process)
        return process

    yield run
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def requests_by_account(sandbox: Sandbox, path: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for entry in sandbox.requests:
        if entry.account is not None and path in entry.path:
            times.setdefault(entry.account, []).append(entry.time)
    return times


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def stop(process: subprocess.Popen[str]) -> tuple[int, str, float]:
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)
    return process.returncode, err, time.monotonic() - began


def balance_times(sandbox: Sandbox) -> dict[str, list[float]]:
    """When each account's polls reached the sandbox: one request per poll, by its fake."""
    merged: dict[str, list[float]] = {}
    for fake in FAKES.values():
        for account, times in requests_by_account(sandbox, fake.poll_marker).items():
            merged.setdefault(account, []).extend(times)
    return {a: sorted(t) for a, t in merged.items()}


def test_every_account_is_polled_on_schedule(start: Start, sandbox: Sandbox) -> None:
    process = start("1s")
    names = [a.name for a in sandbox.accounts()]
    wait_for(lambda: all(len(balance_times(sandbox).get(n, [])) >= 4 for n in names), 15)
    code, err, _ = stop(process)
    assert code == 0, err
    for name, times in balance_times(sandbox).items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # Every 1 s with at most 10 % jitter (and a little scheduling slack).
        assert all(0.75 <= gap <= 1.35 for gap in gaps[:3]), (name, gaps)
    assert err.count(": ok,") >= 4 * len(names)  # one log line per poll


def test_a_hanging_or_failing_source_does_not_delay_the_others(
    start: Start, sandbox: Sandbox
) -> None:
    sandbox.set_fault("demo-bitz", "hang")
    sandbox.set_fault("demo-bitopro", "server_error")
    sandbox.set_fault("demo-pitrade", "rate_limited", retry_after=0.5)
    process = start("1s")
    healthy = ["demo-bitzoom", "demo-bitzoom-hmac"]
    wait_for(lambda: all(len(balance_times(sandbox).get(n, [])) >= 5 for n in healthy), 20)
    assert stop(process)[0] == 0
    for name in healthy:
        times = balance_times(sandbox)[name]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) <= 1.1 + 1.0, (name, gaps)  # interval + jitter, + at most 1 s


def test_expired_token_costs_exactly_one_token_request(
    start: Start, sandbox: Sandbox, sqlite: str
) -> None:
    process = start("1s")
    wait_for(lambda: sandbox.count("/testtoken") == 1
             and len(balance_times(sandbox).get("demo-bitzoom", [])) >= 1, 10)
    sandbox.expire_tokens()
    seen = len(balance_times(sandbox)["demo-bitzoom"])
    wait_for(lambda: len(balance_times(sandbox)["demo-bitzoom"]) >= seen + 3, 10)
    assert stop(process)[0] == 0
    assert sandbox.count("/testtoken") == 2
    engine = database.open_database(sqlite)
    try:
        with engine.connect() as conn:
            statuses = conn.execute(text(
                "SELECT status FROM poll_log WHERE account = 'demo-bitzoom'")).scalars().all()
    finally:
        engine.dispose()
    assert set(statuses) == {"ok"}


def test_retry_after_is_honoured(start: Start, sandbox: Sandbox) -> None:
    sandbox.set_fault("demo-bitzoom-hmac", "rate_limited", count=1, retry_after=2)
    process = start("10s")
    wait_for(lambda: len(balance_times(sandbox).get("demo-bitzoom-hmac", [])) >= 2, 10)
    assert stop(process)[0] == 0
    first, second = balance_times(sandbox)["demo-bitzoom-hmac"][:2]
    assert second - first >= 2.0


def count_consistency(engine: Engine) -> tuple[int, int]:
    """(polls, ok polls missing one of their answers: each fake says how many a poll has)."""
    with engine.connect() as conn:
        polls = conn.execute(text("SELECT count(*) FROM polls")).scalar_one()
        answers = conn.execute(text(
            "SELECT a.source, (SELECT count(*) FROM poll_responses r WHERE r.poll_id = p.id) "
            "FROM polls p JOIN accounts a ON a.id = p.account_id WHERE p.status = 'ok'")).all()
    broken = sum(1 for source, n in answers if n != len(FAKES[source].poll_paths))
    return polls, broken


def test_sigterm_during_polls_exits_cleanly(start: Start, sandbox: Sandbox, sqlite: str) -> None:
    sandbox.latency = 0.4  # every answer takes a while: polls are in flight
    sandbox.set_fault("demo-bitz", "hang")  # and one never finishes
    process = start("1s")
    wait_for(lambda: sum(len(t) for t in balance_times(sandbox).values()) >= 8, 20)
    code, err, took = stop(process)
    assert code == 0, err
    assert took < 10
    engine = database.open_database(sqlite)
    try:
        polls, broken = count_consistency(engine)
    finally:
        engine.dispose()
    assert polls > 0 and broken == 0


def test_systemd_notifications_arrive_in_order(start: Start, tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(10)
    process = start("1s", env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    messages: list[str] = []
    try:
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(listener.recv(4096).decode())
        code, _, _ = stop(process)
        listener.settimeout(2)
        with pytest.raises(TimeoutError):
            while True:
                messages.append(listener.recv(4096).decode())
    finally:
        listener.close()
    assert code == 0
    firsts = [next(i for i, m in enumerate(messages) if key in m.split("\n"))
              for key in ("READY=1", "WATCHDOG=1", "STOPPING=1")]
    assert firsts == sorted(firsts), messages
    statuses = [line for m in messages for line in m.split("\n") if line.startswith("STATUS=")]
    assert any("accounts" in line for line in statuses), messages


def test_json_log_lines(start: Start, sandbox: Sandbox) -> None:
    sandbox.set_fault("demo-bitopro", "malformed")
    process = start("1s", options=("--log-format", "json"))
    wait_for(lambda: len(balance_times(sandbox).get("demo-bitopro", [])) >= 2, 10)
    code, err, _ = stop(process)
    assert code == 0
    lines = [json.loads(line) for line in err.splitlines()]
    polls = [line for line in lines if line["logger"] == "aggregator.poll"]
    failed = next(p for p in polls if p["account"] == "demo-bitopro")
    assert failed["outcome"] == "failed" and failed["error_kind"] == "malformed"
    ok = next(p for p in polls if p["account"] == "demo-pitrade")
    assert ok["outcome"] == "ok" and ok["holdings"] == 4 and ok["source"] == "pitrade"


def test_metrics_endpoint_of_the_running_daemon(start: Start, sandbox: Sandbox) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sandbox.set_fault("demo-bitz", "malformed")
    process = start("1s", extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    wait_for(lambda: len(balance_times(sandbox).get("demo-bitz", [])) >= 2, 10)
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert stop(process)[0] == 0
    # prometheus_client writes the labels in alphabetical order.
    assert 'aggregator_polls_total{account="demo-bitz",error_kind="malformed",' \
           'outcome="failed",source="bitz"}' in body
    assert 'aggregator_last_success_timestamp_seconds{account="demo-pitrade"' in body
    assert 'aggregator_holdings{account="demo-pitrade",source="pitrade"} 4' in body


def test_a_dead_host_does_not_starve_the_others(tmp_path: Path, sandbox: Sandbox,
                                                sqlite: str) -> None:
    # More hanging accounts on one host than the client has connections.
    dead = [FakeAccount(f"dead-{i}", "bitz", {"api_key": f"k{i}", "api_secret": f"s{i}"},
                        {"usdt": FakeBalance(Decimal(1))}) for i in range(40)]
    with Sandbox(dead) as dead_host:
        for account in dead:
            dead_host.set_fault(account.name, "hang")
        config = write_config(tmp_path / "config.toml", sandbox, sqlite, sandbox.accounts(),
                              '[schedule]\ninterval = "1s"\n[rate_limits]\nbitz = "1000/s"\n')
        # A long interval, so each hung request keeps its slot for the whole deadline.
        tables = account_tables(dead_host, dead).replace(
            "source = 'bitz'", "source = 'bitz'\ninterval = '60s'")
        config.write_text(config.read_text() + "\n" + tables)
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: dead_host.count("/getUserAssets") >= 24, 15)
            healthy = [a.name for a in sandbox.accounts()]
            seen = {n: len(balance_times(sandbox).get(n, [])) for n in healthy}
            wait_for(lambda: all(len(balance_times(sandbox).get(n, [])) >= seen[n] + 3
                                 for n in healthy), 10)
        finally:
            code, err, _ = stop(process)
    assert code == 0, err
    for name in healthy:
        times = balance_times(sandbox)[name]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps[-3:]) <= 2.1, (name, gaps)
