"""Reports built from a multi-day history polled from the sandbox."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from aggregator.config import load_config
from aggregator.polling.client import make_client
from aggregator.polling.poller import poll_once, prepare
from aggregator.reports.build import build_report
from aggregator.reports.html_report import render_html
from aggregator.reports.nightly import missed_days, write_day
from aggregator.reports.text_report import render_text
from aggregator.sandbox import FakeAccount, FakeBalance, Sandbox, account_tables
from aggregator.storage import database
from aggregator.storage.writes import record_poll

UTC_ZONE = ZoneInfo("UTC")
DAYS = 5


def fakes() -> list[FakeAccount]:
    return [
        FakeAccount("bp", "bitopro", {"api_key": "k1", "api_secret": "s1",
                                      "identity": "me@example.com"},
                    {"btc": FakeBalance(Decimal("0.5")), "twd": FakeBalance(Decimal(1000))}),
        FakeAccount("bz", "bitz", {"api_key": "k2", "api_secret": "s2"},
                    {"usdt": FakeBalance(Decimal("100.25"))}),
        FakeAccount("pt", "pitrade", {"client_id": "c", "secret": "s3" * 16},
                    {"AAPL": FakeBalance(Decimal(10))}, cash=Decimal("2500.50"),
                    cost_basis={"AAPL": Decimal("145.00")}),
    ]


@dataclass
class History:
    engine: Engine
    first_day: date
    served: dict[date, dict[tuple[str, str], Decimal]]  # end of day, as the sandbox served


@pytest.fixture
def history(tmp_path: Path, db_url: str) -> Iterator[History]:
    """Five days, four polls a day; a drift every poll, bz down on day 3 from 06:00 to
    18:00, ETH appears in bp on day 2 and TWD leaves it on day 4."""
    first_day = (datetime.now(UTC) - timedelta(days=DAYS + 1)).date()
    engine = database.open_database(db_url)
    database.upgrade(engine)
    served: dict[date, dict[tuple[str, str], Decimal]] = {}
    with Sandbox(fakes(), seed=3) as sandbox:
        path = tmp_path / "config.toml"
        path.write_text(f'[database]\nurl = "{db_url}"\n' + account_tables(sandbox, fakes()))
        accounts = [prepare(a) for a in load_config(path).accounts]

        async def run() -> None:
            async with make_client() as client:
                for day in range(DAYS):
                    for hour in (0, 6, 12, 18):
                        at = datetime.combine(first_day + timedelta(days=day),
                                              datetime.min.time(), UTC) + timedelta(hours=hour)
                        if day == 1 and hour == 6:
                            sandbox.set_balance("bp", "eth", FakeBalance(Decimal("2.5")))
                        if day == 3 and hour == 6:
                            sandbox.remove_asset("bp", "twd")
                        sandbox.set_fault("bz", "server_error" if day == 2 and 6 <= hour <= 12
                                          else None)
                        sandbox.drift()
                        for account in accounts:
                            record = await poll_once(client, account, clock=lambda at=at: at)
                            record_poll(engine, record)
                    served[first_day + timedelta(days=day)] = {
                        (a.name, asset.upper()): b.total
                        for a in sandbox.accounts() for asset, b in a.balances.items()
                    } | {("pt", "USD"): sandbox.account("pt").cash}

        asyncio.run(run())
    yield History(engine, first_day, served)
    engine.dispose()


def test_report_numbers_are_what_the_sandbox_served(history: History) -> None:
    for n in range(DAYS):
        day = history.first_day + timedelta(days=n)
        report = build_report(history.engine, day, UTC_ZONE)
        assert not report.partial
        held = {(line.account, line.asset): line.total for line in report.lines}
        assert held == history.served[day], day
        before = history.served.get(day - timedelta(days=1), {})
        for line in report.lines:
            if (line.account, line.asset) in before:
                assert line.previous_total == before[(line.account, line.asset)]
                assert line.delta == line.total - before[(line.account, line.asset)]
            else:
                assert line.change == "new"
        assert {(g.account, g.asset) for g in report.gone} == set(before) - set(held)


def test_appearing_and_disappearing_assets(history: History) -> None:
    day2 = build_report(history.engine, history.first_day + timedelta(days=1), UTC_ZONE)
    assert [(line.asset, line.change) for line in day2.lines if line.asset == "ETH"] == [
        ("ETH", "new")]
    day4 = build_report(history.engine, history.first_day + timedelta(days=3), UTC_ZONE)
    assert [(g.account, g.asset, g.previous_total) for g in day4.gone] == [
        ("bp", "TWD", history.served[history.first_day + timedelta(days=2)][("bp", "TWD")])]
    costs = {line.asset: line.cost_basis for line in day4.lines if line.account == "pt"}
    assert costs == {"AAPL": Decimal("145.00"), "USD": None}
    assert any(line.valuation for line in day4.lines if line.account == "bz")


def test_the_outage_shows_in_poll_health(history: History) -> None:
    report = build_report(history.engine, history.first_day + timedelta(days=2), UTC_ZONE)
    health = {h.account: h for h in report.health}
    assert health["bz"].failures == {"server_error": 2}
    assert health["bz"].polls == 4
    assert health["bz"].longest_gap == timedelta(hours=18)  # ok at 00:00, next ok at 18:00
    assert health["bp"].failures == {}
    assert [h.account for h in report.failing] == ["bz"]
    assert len({p.day for p in report.history}) == 3  # days with data so far
    summary = render_text(report)
    failing = [line for line in summary.splitlines() if "bz" in line]
    assert any("server_error" in line for line in failing), summary
    assert "18h" in summary or "18:00" in summary or "18 h" in summary, summary
    page = render_html(report)
    assert "server_error" in page and "bz" in page


def test_missed_days_are_written_once(history: History, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    now = datetime.combine(history.first_day + timedelta(days=DAYS), datetime.min.time(),
                           UTC) + timedelta(hours=1)
    first = history.first_day
    write_day(history.engine, first, UTC_ZONE, reports, now)
    due = missed_days(history.engine, reports, UTC_ZONE, now)
    assert due == [first + timedelta(days=n) for n in range(1, DAYS)]
    for day in due:
        write_day(history.engine, day, UTC_ZONE, reports, now)
    assert missed_days(history.engine, reports, UTC_ZONE, now) == []
    assert sorted(p.name for p in reports.iterdir()) == sorted(
        f"{first + timedelta(days=n)}.{ext}" for n in range(DAYS) for ext in ("html", "csv",
                                                                             "txt"))


def test_daemon_writes_missed_days_on_start_up(history: History, tmp_path: Path,
                                               db_url: str) -> None:
    reports = tmp_path / "daemon-reports"
    first = history.first_day
    write_day(history.engine, first, UTC_ZONE, reports)  # the last report before downtime
    config = tmp_path / "daemon.toml"
    # `run` needs an account; this one's polls fail (nothing listens), which is beside
    # the point here.
    config.write_text(f'[database]\nurl = "{db_url}"\n[report]\ndirectory = "{reports}"\n'
                      '[poll]\ndeadline = "1s"\n'  # its retries end before the stop
                      '[[accounts]]\nname = "pt"\nsource = "pitrade"\n'
                      'base_url = "http://127.0.0.1:9/api"\nclient_id = "c"\nsecret = "s"\n')

    def run() -> None:
        result = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run",
             "--duration", "3"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env=os.environ.copy(), check=False)
        assert result.returncode == 0, result.stderr

    run()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    expected = [first + timedelta(days=n) for n in range((yesterday - first).days + 1)]
    written = {p.name: p.stat().st_mtime_ns for p in reports.iterdir()}
    assert sorted(written) == sorted(f"{d}.{e}" for d in expected for e in ("html", "csv",
                                                                             "txt"))
    run()  # nothing missed any more: nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in reports.iterdir()} == written
