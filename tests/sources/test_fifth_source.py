"""A fifth balance source takes one source module, one fake and one registry line each.

Quintet (tests/fifth/) is registered only for these tests. With no other edit it has rate
limits, a report title, end-to-end coverage (poll and holdings through the real command
line against the sandbox) and daemon coverage (a real `aggregator run` subprocess polls
it); without its fake the drift checks say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from aggregator.config import load_config
from aggregator.polling.ratelimit import RateLimits
from aggregator.sandbox import FAKES, Sandbox, demo_accounts
from aggregator.sources.base import Rate
from aggregator.sources.registry import SOURCES
from aggregator.storage import database
from tests import fifth as quintet
from tests.e2e.conftest import Cli, accounts, cli, poll_then_holdings, write_config
from tests.scheduling.test_daemon import Start, balance_times, sqlite, start, stop, wait_for
from tests.sources.test_registry import coverage_problems, registry_problems

__all__ = ["cli", "sqlite", "start"]  # fixtures used here


@pytest.fixture
def fifth(monkeypatch: pytest.MonkeyPatch) -> None:
    quintet.register(monkeypatch.setitem)


@pytest.fixture
def sandbox(fifth: None) -> Iterator[Sandbox]:
    """The daemon tests' sandbox (every fake's demo accounts), Quintet's included."""
    with Sandbox(demo_accounts()) as running:
        yield running


def test_the_drift_checks_pass_with_it_and_report_a_missing_fake(
    fifth: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "quintet" in SOURCES and "quintet" in FAKES
    assert registry_problems(SOURCES, FAKES) == []
    assert coverage_problems(tmp_path) == []
    monkeypatch.delitem(FAKES, "quintet")
    assert registry_problems(SOURCES, FAKES) == [
        "quintet: no fake exchange in aggregator/sandbox/registry.py"]
    missing = coverage_problems(tmp_path)
    assert "quintet: missing from the end-to-end accounts" in missing
    assert "quintet: missing from the demo and daemon-test accounts" in missing
    assert "quintet: missing from the daemon tests' poll paths" in missing


def test_it_has_its_published_rate_limit_and_an_override(fifth: None, tmp_path: Path) -> None:
    bucket = RateLimits().bucket("quintet", "https://api.quintet.example")
    assert bucket is not None and bucket.rate == Rate(7, 1.0)
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///unused.db"\n[rate_limits]\nquintet = "2/s"\n')
    overridden = RateLimits(load_config(path).rate_limits).bucket("quintet", "https://h")
    assert overridden is not None and overridden.rate == Rate(2, 1.0)


def test_poll_holdings_and_the_report_through_the_command_line(
    fifth: None, cli: Cli, tmp_path: Path, db_url: str
) -> None:
    with Sandbox(accounts()) as sandbox:
        config = write_config(tmp_path / "config.toml", sandbox, db_url, sandbox.accounts())
        rows = poll_then_holdings(cli, config, sandbox)
    assert {r["asset"] for r in rows if r["source"] == "quintet"} == {"BTC", "SOL"}
    today = datetime.now(UTC).date().isoformat()
    result = cli("--config", str(config), "report", "--date", today, "--out", str(tmp_path))
    assert result.code == 0, result.err
    assert "<small>(Quintet)</small>" in (tmp_path / f"{today}.html").read_text()


def test_the_daemon_polls_it(start: Start, sandbox: Sandbox, sqlite: str,
                             tmp_path: Path) -> None:
    # The daemon cannot see this process's registries: it starts with Quintet registered
    # by a sitecustomize module on its PYTHONPATH, and is otherwise `python -m aggregator run`.
    process = start(
        "1s", env={"PYTHONPATH": quintet.site_dir(tmp_path / "site")})
    names = [a.name for a in sandbox.accounts()]
    assert "demo-quintet" in names
    try:
        wait_for(lambda: all(len(balance_times(sandbox).get(n, [])) >= 2 for n in names), 15)
    finally:
        code, err, _ = stop(process)
    assert code == 0, err
    engine = database.open_database(sqlite)
    try:
        with engine.connect() as conn:
            statuses = conn.execute(text(
                "SELECT status FROM poll_log WHERE account = 'demo-quintet'")).scalars().all()
    finally:
        engine.dispose()
    assert len(statuses) >= 2 and set(statuses) == {"ok"}, err
    assert "demo-quintet: ok" in err

