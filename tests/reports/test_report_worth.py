"""The valued report over a few days of polls and prices, checked against figures by hand."""

from __future__ import annotations

import csv
import decimal
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from aggregator.model import Holding, Kind, PollRecord
from aggregator.prices.model import FetchRecord, Observation, PriceKind
from aggregator.reports.build import build_report
from aggregator.reports.csv_report import COLUMNS, render_csv
from aggregator.reports.html_report import render_html
from aggregator.reports.model import Report
from aggregator.reports.nightly import write_day
from aggregator.reports.text_report import render_text
from aggregator.reports.worth import NewestFirst, with_worth
from aggregator.storage import database
from aggregator.storage.price_queries import SqlPriceBook
from aggregator.storage.price_writes import record_fetch
from aggregator.storage.writes import record_poll

from .worth_history import (
    DAYS,
    HELD,
    PRICES,
    RATES,
    SETTINGS,
    ZONE,
    expected,
    local,
    write_history,
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = database.open_database(db_url)
    database.upgrade(engine)
    write_history(engine)
    yield engine
    engine.dispose()


def valued(engine: Engine, n: int, now: datetime | None = None) -> Report:
    return with_worth(engine, build_report(engine, DAYS[n], ZONE, now), SETTINGS)


def readable(value: Decimal, sign: str = "") -> str:
    """Half-even to cents with thousands separators, as the contract says, by hand."""
    cents = value.quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_EVEN)
    return format(cents, f"{sign},f")


def test_net_worth_and_its_split_are_what_was_served(engine: Engine) -> None:
    for n in range(len(DAYS)):
        worth = valued(engine, n).worth
        assert worth is not None
        want = expected(n)
        assert worth.currency == "TWD"
        assert {(r.account, r.asset): r.value for r in worth.rows} == want.values, n
        assert worth.value == want.value, n
        assert [(r.account, r.asset) for r in worth.unpriced] == want.unpriced, n
        assert worth.previous.value == (expected(n - 1).value if n else 0)
        assert worth.change == want.change, n
        assert worth.price_effect == want.price_effect, n
        assert worth.quantity_effect == want.quantity_effect, n
        assert {(c.account, c.asset): (c.change, c.counted) for c in worth.apart} \
            == want.apart, n
        # The two effects are the whole change of the holdings priced on both days.
        for c in worth.priced:
            assert c.amount is not None and c.amount_before is not None
            assert c.rate is not None and c.rate_before is not None
            assert c.price_effect is not None and c.quantity_effect is not None
            assert c.price_effect + c.quantity_effect == \
                c.amount * c.rate - c.amount_before * c.rate_before
        accounts: dict[str, Decimal] = {}
        for (account, _), value in want.values.items():
            accounts[account] = accounts.get(account, Decimal(0)) + (value or 0)
        assert {t.group: t.value for t in worth.by_account} == accounts


def test_the_figures_of_the_scenario() -> None:
    """The by-hand tables say what the scenario is meant to show."""
    day2, day3 = expected(2), expected(3)
    assert day2.unpriced == [("bp", "BTC"), ("bz", "DOGE")]  # BTC's price is a day old
    assert day2.apart[("bp", "ETH")] == ("new", Decimal(200000))
    assert day2.apart[("bp", "BTC")] == ("unpriced", Decimal("-1575000"))  # 0.75 * 2.1M
    assert day3.unpriced == []
    assert day3.apart[("bz", "DOGE")] == ("gone", Decimal(0))  # never priced
    assert day3.apart[("pt", "USD")] == ("gone", Decimal(-1610))  # 50 * 32.2, now 0
    # The BTC poll and price just after the last local midnight are not in its day.
    assert day3.values[("bp", "BTC")] == Decimal("0.7") * Decimal("1950000.5")
    assert day3.value == Decimal("1666321.125")
    # BTC 0.5 * (2.1M - 2M), AAPL 10 * (5826.15 - 5760), USD 50 * (32.1 - 32)
    assert expected(1).price_effect == Decimal("50000") + Decimal("661.5") + Decimal("5")


def test_history_and_unpriced_days(engine: Engine) -> None:
    worth = valued(engine, 3).worth
    assert worth is not None
    assert worth.chart_days == [30]
    assert [(d.day, d.value, d.holdings, d.unpriced) for d in worth.history] == [
        (day, expected(n).value, sum(1 for a in HELD[n].values() if a != 0),
         len(expected(n).unpriced)) for n, day in enumerate(DAYS)]
    assert [d.priced for d in worth.history] == [False, False, False, True]


def test_a_partial_day_is_valued_at_now_without_look_ahead(engine: Engine) -> None:
    # 20:00 local on the last day: the day's prices come at 23:30, the day before's are
    # 20.5 h old (max age 1 h): only TWD has a value.
    report = valued(engine, 3, now=local(DAYS[3], 20))
    worth = report.worth
    assert report.partial and worth is not None and worth.at == local(DAYS[3], 20)
    assert worth.value == Decimal("8000.75")
    assert [r.asset for r in worth.unpriced] == ["BTC", "ETH", "USDT", "AAPL"]
    late = valued(engine, 3, now=local(DAYS[3], 23, 45)).worth
    assert late is not None and late.value == expected(3).value


def test_csv_has_currency_price_and_value_exactly(engine: Engine) -> None:
    for n in (2, 3):
        rows = list(csv.DictReader(io.StringIO(render_csv(valued(engine, n)))))
        assert list(rows[0]) == [*COLUMNS, "currency", "price", "value"]
        held = {(k, a): v for (k, a), v in HELD[n].items()}
        assert {(r["account"], r["asset"]) for r in rows} == set(held)
        for row in rows:
            key = (row["account"], row["asset"])
            rate = RATES[n][key[1]]
            assert row["currency"] == "TWD"
            if held[key] == 0 or rate is None:
                assert (row["price"], row["value"]) == ("", ""), row
            else:
                assert Decimal(row["price"]) == rate
                assert Decimal(row["value"]) == held[key] * rate  # exact, not rounded
    rows = list(csv.DictReader(io.StringIO(render_csv(valued(engine, 3)))))
    assert {r["asset"]: r["value"] for r in rows}["USDT"] == "4703.125"


def test_text_summary_rounds_for_reading(engine: Engine) -> None:
    text = render_text(valued(engine, 3))
    lines = text.splitlines()
    want = expected(3)
    assert want.value == Decimal("1666321.125")
    assert f"Net worth at the end of the day: {readable(want.value)} TWD (5 holdings)" in lines
    assert readable(want.value) == "1,666,321.12"  # half-even: .125 -> .12
    assert f"Change vs the day before: {readable(want.change, '+')} TWD" in text
    assert f"from prices      {readable(want.price_effect, '+')} TWD" in text
    assert f"from quantities  {readable(want.quantity_effect, '+')} TWD" in text
    assert any("pt USD" in ln and "gone" in ln and "-1,610.00 TWD" in ln for ln in lines), text
    day2 = render_text(valued(engine, 2))
    assert "2 of 7 unpriced, not counted: bp BTC, bz DOGE" in day2, day2
    assert any("bp BTC" in ln and "unpriced at the end of the day" in ln
               for ln in day2.splitlines()), day2


def test_html_shows_the_figures(engine: Engine) -> None:
    page = render_html(valued(engine, 2))
    want = expected(2)
    assert f"{readable(want.value)} TWD" in page
    assert 'id="unpriced"' in page and "bp BTC, bz DOGE" in page
    assert readable(want.price_effect, "+") in page
    assert page.count('class="unpriced-day"') == 3  # the first three days: DOGE (and BTC)
    assert 'id="worth-30"' in page and 'id="worth-365"' not in page


def test_without_valuation_the_report_is_as_before(engine: Engine, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    plain = write_day(engine, DAYS[3], ZONE, tmp_path / "plain", now)
    report = build_report(engine, DAYS[3], ZONE, now)
    assert report.worth is None
    assert [p.read_text() for p in plain] == [render_html(report), render_csv(report),
                                              render_text(report)]
    assert next(csv.reader(io.StringIO(plain[1].read_text()))) == list(COLUMNS)
    assert "Net worth" not in plain[0].read_text() + plain[2].read_text()
    with_value = write_day(engine, DAYS[3], ZONE, tmp_path / "valued", now,
                           valuation=SETTINGS)
    assert "Net worth" in with_value[0].read_text() and "Net worth" in with_value[2].read_text()


def test_the_365_day_chart_when_the_history_is_that_long(db_url: str) -> None:
    engine = database.open_database(db_url)
    database.upgrade(engine)
    try:
        write_history(engine)
        first = DAYS[3] - timedelta(days=364)  # 365 days up to the last one
        record_poll(engine, PollRecord(
            "old", "bitopro", local(first, 12) - timedelta(seconds=1), local(first, 12),
            [Holding("TWD", Kind.FIAT, Decimal(5), None, None)]))
        started = time.perf_counter()
        report = valued(engine, 3)
        elapsed = time.perf_counter() - started
        worth = report.worth
        assert worth is not None and worth.chart_days == [30, 365]
        assert len(worth.history) == 365 and worth.history[0].value == 5
        page = render_html(report)
        assert 'id="worth-365"' in page and 'id="worth-30"' in page
        assert elapsed < 5, f"valuing 365 days took {elapsed:.1f} s"
        # One day less of history: the 30-day chart only.
        assert valued(engine, 2).worth.chart_days == [30]  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_the_report_command_is_valued(engine: Engine, db_url: str, tmp_path: Path) -> None:
    for name in ("ex", "fx"):
        (tmp_path / f"{name}.csv").write_text("base,quote,time,price\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[schedule]\ntimezone = "Asia/Taipei"\n'
        f'[report]\ndirectory = "{tmp_path / "reports"}"\n[valuation]\ncurrency = "TWD"\n'
        + "".join(f'[[prices]]\nname = "{n}"\nsource = "manual"\nfile = "{tmp_path}/{n}.csv"\n'
                  for n in ("ex", "fx")))
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "report", "--date",
         DAYS[3].isoformat()], capture_output=True, text=True, timeout=120, check=False,
        env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "reports" / f"{DAYS[3]}.txt").read_text()
    assert f"Net worth at the end of the day: {readable(expected(3).value)} TWD" in summary


def test_newest_first_answers_as_the_plain_book(engine: Engine) -> None:
    """The shortcut never changes an answer: every pair, both ways, at every hour."""
    # Daily closes besides the live prices: usable for 4 days rather than an hour.
    closes = [("ex", "BTC", "TWD", DAYS[0]), ("fx", "ETH", "USD", DAYS[1])]
    for source, base, quote, day in closes:
        at = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        record_fetch(engine, FetchRecord(source, PriceKind.DAILY, at, at, [
            Observation(base, quote, PriceKind.DAILY, at, Decimal("123.5"))]))
    pairs = {(s, b, q) for s, b, q in PRICES} | {(s, q, b) for s, b, q in PRICES} \
        | {("ex", "DOGE", "TWD"), ("fx", "USDT", "TWD"), ("fx", "ETH", "USD")}
    until = local(DAYS[-1] + timedelta(days=1), 0)
    book = SqlPriceBook.open(engine)
    try:
        fast = NewestFirst(book, until)
        at = local(DAYS[0], 0)
        asked = found = 0
        while at <= until + timedelta(hours=1):  # and past ``until``: no shortcut there
            live, daily = at - SETTINGS.max_age, at - SETTINGS.daily_max_age
            for pair in sorted(pairs):
                want = book.latest(*pair, at, live, daily)
                assert fast.latest(*pair, at, live, daily) == want, (pair, at)
                asked, found = asked + 1, found + (want is not None)
            at += timedelta(hours=1)
        assert found > 100 and asked - found > 500  # both kinds of answer were checked
    finally:
        book.close()
