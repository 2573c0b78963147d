"""`value` and `networth` through the real command line, on SQLite and PostgreSQL, over
polls and prices written straight to the database; expected figures computed here."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from aggregator.model import Holding, Kind, PollRecord
from aggregator.prices.model import FetchRecord, Observation, PriceKind
from aggregator.storage import database
from aggregator.storage.price_writes import record_fetch
from aggregator.storage.writes import record_poll
from tests.e2e.conftest import Cli

D1 = date(2026, 11, 20)
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def poll(at: datetime, account: str, **amounts: str) -> PollRecord:
    return PollRecord(account, "bitopro", at, at, [
        Holding(asset, Kind.FIAT if asset == "TWD" else Kind.CRYPTO, Decimal(v), Decimal(v),
                Decimal(0)) for asset, v in amounts.items()])


def prices(at: datetime, source: str, kind: PriceKind, *points: tuple[str, str, str]
           ) -> FetchRecord:
    return FetchRecord(source, kind, at, at, [
        Observation(b, q, kind, at, Decimal(p)) for b, q, p in points])


@pytest.fixture
def history(db_url: str, tmp_path: Path) -> Path:
    engine = database.open_database(db_url)
    database.upgrade(engine)
    record_poll(engine, poll(NOON - timedelta(hours=1), "main", BTC="0.5", USDT="1000",
                             TWD="20000", ZPR="7"))
    record_poll(engine, poll(NOON - timedelta(hours=1), "side", ETH="2", DOGE="0"))
    record_poll(engine, poll(NOON + timedelta(days=1), "main", BTC="0.75", USDT="1000",
                             TWD="20000", ZPR="7"))
    live = PriceKind.LIVE
    record_fetch(engine, prices(NOON, "bito", live, ("BTC", "TWD", "3000000"),
                                ("USDT", "TWD", "32")))
    record_fetch(engine, prices(NOON + timedelta(minutes=30), "bito", live,
                                ("BTC", "TWD", "3100000")))
    record_fetch(engine, prices(NOON, "gecko", live, ("ETH", "USD", "2000"),
                                ("USD", "TWD", "31.5")))
    # Daily closes: 20 Nov counts from 21 Nov 00:00, 21 Nov from 22 Nov 00:00.
    for day, btc, usdt in ((D1, "3050000", "32.1"), (D1 + timedelta(days=1), "2900000", "32.2")):
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        record_fetch(engine, FetchRecord("bito", PriceKind.DAILY, end, end, [
            Observation("BTC", "TWD", PriceKind.DAILY, end, Decimal(btc)),
            Observation("USDT", "TWD", PriceKind.DAILY, end, Decimal(usdt))]))
    engine.dispose()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[valuation]\ncurrency = "TWD"\n'
                      '[[prices]]\nname = "bito"\nsource = "bitopro"\n'
                      '[[prices]]\nname = "gecko"\nsource = "coingecko"\nids = { ZPR = "zper" }\n'
                      '[[accounts]]\nname = "main"\nsource = "bitopro"\napi_key = "k"\n'
                      'api_secret = "s"\nidentity = "me@example.com"\n')
    return config


def values(cli: Cli, config: Path, *args: str) -> list[dict[str, str | None]]:
    result = cli("--config", str(config), "value", "--format", "json", *args)
    assert result.code == 0, result.err
    rows: list[dict[str, str | None]] = json.loads(result.out)
    return rows


def test_value_at_an_instant_by_the_rule(cli: Cli, history: Path) -> None:
    at = (NOON + timedelta(minutes=45)).isoformat()
    rows = {(r["account"], r["asset"]): r for r in values(cli, history, "--at", at)}
    assert ("side", "DOGE") not in rows  # a zero holding is left out
    btc = rows[("main", "BTC")]
    # The latest usable live price (12:30), not the daily close of the day before.
    assert (btc["price"], btc["value"], btc["price_source"]) == ("3100000", "1550000", "bito")
    assert btc["price_observed_at"] == "2026-11-20T12:30:00.000Z"
    assert rows[("main", "USDT")]["value"] == "32000"  # USDT priced by its market, not 1
    assert rows[("main", "TWD")]["price"] == "1" and rows[("main", "TWD")]["price_source"] is None
    eth = rows[("side", "ETH")]  # a cross: ETH->USD on gecko, USD->TWD on gecko
    assert (eth["price"], eth["value"], eth["price_source"]) == ("63000", "126000", "gecko+gecko")
    zpr = rows[("main", "ZPR")]
    assert zpr["price"] is None and zpr["value"] is None and zpr["price_source"] is None
    assert set(rows[("main", "BTC")]) >= {"account", "source", "asset", "kind", "amount",
                                          "currency", "price", "value", "price_source",
                                          "price_observed_at"}


def test_no_look_ahead_and_stale_prices(cli: Cli, history: Path) -> None:
    before = {r["asset"]: r for r in values(cli, history, "--at", "2026-11-20T12:15:00")}
    assert before["BTC"]["price"] == "3000000"  # between two fetches: the earlier one
    first = {r["asset"]: r for r in values(cli, history, "--at", "2026-11-20T11:59:59")}
    assert first["BTC"]["value"] is None  # before the first fetch
    # 14:00: live prices are over an hour old, no close yet: unknown.
    late = {r["asset"]: r for r in values(cli, history, "--at", "2026-11-20T14:00:00")}
    assert late["BTC"]["value"] is None and late["USDT"]["value"] is None


def test_the_table_ends_with_the_total_and_the_unpriced_count(cli: Cli, history: Path) -> None:
    result = cli("--config", str(history), "value", "--at", "2026-11-20T12:45:00Z")
    # 1550000 + 32000 + 20000 + 126000; ZPR unpriced
    assert result.out.splitlines()[-1] == (
        "total 1728000 TWD (1 of 5 holdings unpriced, not counted)")


def test_networth_per_day_from_the_closes(cli: Cli, history: Path) -> None:
    result = cli("--config", str(history), "networth", "--since", "2026-11-20", "--until",
                 "2026-11-22", "--format", "json")
    assert result.code == 0, result.err
    days = json.loads(result.out)
    # End of 20 Nov: the closes of 20 Nov (observed 21 Nov 00:00). ETH: gecko live prices
    # are 12 h old, so unpriced; ZPR unpriced.
    # 0.5 x 3050000 + 1000 x 32.1 + 20000 = 1525000 + 32100 + 20000 = 1577100
    # End of 21 Nov: 0.75 x 2900000 + 1000 x 32.2 + 20000 = 2227200
    # End of 22 Nov: the 21 Nov closes are 1 day old (<= 4 d): the same value.
    assert [(d["day"], d["value"], d["holdings"], d["unpriced"], d["currency"])
            for d in days] == [
        ("2026-11-20", "1577100", 5, 2, "TWD"),
        ("2026-11-21", "2227200", 5, 2, "TWD"),
        ("2026-11-22", "2227200", 5, 2, "TWD"),
    ]
    by_account = json.loads(cli("--config", str(history), "networth", "--since", "2026-11-20",
                                "--until", "2026-11-20", "--by", "account", "--format",
                                "json").out)
    assert [(d["account"], d["value"], d["unpriced"]) for d in by_account] == [
        ("main", "1577100", 1), ("side", "0", 1)]


def test_stored_daily_valuations_match_networth(db_url: str, history: Path, cli: Cli) -> None:
    from aggregator.config import load_config
    from aggregator.valuation.daily import store_days

    settings = load_config(history)
    valuation = settings.valuation_settings()
    assert valuation is not None
    engine = database.open_database(db_url)
    try:
        store_days(engine, valuation, [D1, D1 + timedelta(days=1)])
        store_days(engine, valuation, [D1])  # again: replaced, not doubled
        with engine.connect() as conn:
            worth = conn.execute(text("SELECT day, value, holdings, unpriced FROM "
                                      "networth_daily ORDER BY day")).all()
            btc = conn.execute(text("SELECT price, value, price_source FROM valuations_daily "
                                    "WHERE asset = 'BTC' ORDER BY day")).all()
    finally:
        engine.dispose()
    assert [(str(d), Decimal(v), h, u) for d, v, h, u in worth] == [
        ("2026-11-20", Decimal(1577100), 5, 2), ("2026-11-21", Decimal(2227200), 5, 2)]
    assert [(Decimal(p), Decimal(v), s) for p, v, s in btc] == [
        (Decimal(3050000), Decimal(1525000), "bito"), (Decimal(2900000), Decimal(2175000), "bito")]


def test_value_needs_a_valuation_table(cli: Cli, tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "plain.toml"
    config.write_text(f'[database]\nurl = "{sqlite_url}"\n[[accounts]]\nname = "main"\n'
                      'source = "bitopro"\napi_key = "k"\napi_secret = "s"\n'
                      'identity = "me@example.com"\n')
    result = cli("--config", str(config), "value")
    assert result.code == 78 and "needs a [valuation] table" in result.err


def test_report_keeps_the_daily_valuations_of_its_days(cli: Cli, history: Path, db_url: str,
                                                       tmp_path: Path) -> None:
    result = cli("--config", str(history), "report", "--date", "2026-11-21", "--out",
                 str(tmp_path / "out"))
    assert result.code == 0, result.err
    engine = database.open_database(db_url)
    try:
        with engine.connect() as conn:
            worth = conn.execute(text("SELECT day, value FROM networth_daily ORDER BY day")
                                 ).all()
    finally:
        engine.dispose()
    assert [(str(d), Decimal(v)) for d, v in worth] == [
        ("2026-11-20", Decimal(1577100)), ("2026-11-21", Decimal(2227200))]
