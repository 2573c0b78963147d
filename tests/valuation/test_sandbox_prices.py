"""Prices from the sandbox's price fakes through the real CLI, on SQLite and PostgreSQL:
fetch, value, a failing source, backfilled closes. Expected figures computed here."""

from __future__ import annotations

import decimal
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from aggregator.model import Holding, Kind, PollRecord
from aggregator.sandbox import Sandbox, price_tables
from aggregator.sandbox.fake import HUGE
from aggregator.storage import database
from aggregator.storage.writes import record_poll
from tests.e2e.conftest import Cli, accounts, write_config

D = Decimal
# The tests' own arithmetic must not round either (the default context keeps 28 digits).
decimal.getcontext().prec = 200
USD_TWD, AAPL, VOO, USDT_USD = D("31.765"), D("232.78"), D("543.21"), D("1.0002")
BTC_TWD, ETH_TWD = D("3052811"), D("98123.5")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(accounts()) as box:
        board = box.prices
        board.set_price("bitopro", "BTC", "TWD", BTC_TWD)
        board.set_price("bitopro", "ETH", "TWD", ETH_TWD)
        board.coin_ids["USDT"] = "tether"
        board.set_price("coingecko", "USDT", "USD", USDT_USD)
        for asset, price in (("AAPL", AAPL), ("VOO", VOO)):
            board.list_on_yahoo(asset, asset)
            board.set_price("yahoo", asset, "USD", price)
        board.list_on_yahoo("USD", "TWD=X", zone="Europe/London", opens=time(0))
        board.set_price("yahoo", "USD", "TWD", USD_TWD)
        yield box


@pytest.fixture
def config(tmp_path: Path, sandbox: Sandbox, db_url: str) -> Path:
    return write_config(tmp_path / "config.toml", sandbox, db_url, sandbox.accounts(),
                        '[valuation]\ncurrency = "TWD"\n' + price_tables(sandbox))


def expected_rate(asset: str) -> tuple[Decimal, str] | None:
    """By the rule, by hand: sources in order bitopro, coingecko, yahoo; pivots USDT, USD."""
    return {
        "TWD": (D(1), None),
        "BTC": (BTC_TWD, "bitopro"),
        "ETH": (ETH_TWD, "bitopro"),
        "USD": (USD_TWD, "yahoo"),  # TWD=X: 1 USD in TWD, direct
        # No USDT/TWD anywhere: across USD, never 1.
        "USDT": (USDT_USD * USD_TWD, "coingecko+yahoo"),
        "AAPL": (AAPL * USD_TWD, "yahoo+yahoo"),
        "VOO": (VOO * USD_TWD, "yahoo+yahoo"),
    }.get(asset)  # type: ignore[return-value]


def value_json(cli: Cli, config: Path) -> list[dict[str, str | None]]:
    result = cli("--config", str(config), "value", "--format", "json")
    assert result.code == 0, result.err
    rows: list[dict[str, str | None]] = json.loads(result.out)
    return rows


def test_fetched_prices_value_every_holding(cli: Cli, config: Path) -> None:
    assert cli("--config", str(config), "poll").code == 0
    fetched = cli("--config", str(config), "prices", "fetch")
    assert fetched.code == 0, fetched.out + fetched.err
    assert fetched.out.count(": ok,") == 3
    rows = value_json(cli, config)
    assert rows
    for row in rows:
        rate = expected_rate(str(row["asset"]))
        assert rate is not None, row
        price, source = rate
        assert D(str(row["price"])) == price and row["price_source"] == source, row
        assert D(str(row["value"])) == D(str(row["amount"])) * price, row
        assert row["currency"] == "TWD"
    voo = next(r for r in rows if r["asset"] == "VOO")
    assert voo["value"] == "2130255001263.4528493462233343837607"  # HUGE x 543.21 x 31.765
    assert D(str(voo["amount"])) == HUGE
    assert any(r["amount"] == "0.000000000000000001" for r in rows)  # TINY, exactly


def test_a_failing_price_source_is_logged_and_the_others_are_used(
        cli: Cli, config: Path, sandbox: Sandbox, db_url: str) -> None:
    assert cli("--config", str(config), "poll").code == 0
    sandbox.prices.set_fault("coingecko", "malformed")  # not retried: one attempt
    fetched = cli("--config", str(config), "prices", "fetch")
    assert fetched.code == 1
    assert "prices coingecko: failed [malformed]" in fetched.out, fetched.out
    rows = value_json(cli, config)
    usdt = [r for r in rows if r["asset"] == "USDT"]
    assert usdt and all(r["value"] is None and r["price"] is None for r in usdt)
    assert all(r["value"] is not None for r in rows if r["asset"] != "USDT")
    engine = database.open_database(db_url)
    try:
        with engine.connect() as conn:
            log = conn.execute(text("SELECT source, status, error_kind FROM price_log "
                                    "ORDER BY source")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in log] == [("bitopro", "ok", None),
                                       ("coingecko", "failed", "malformed"),
                                       ("yahoo", "ok", None)]


def test_backfilled_closes_give_the_net_worth_of_past_days(
        cli: Cli, config: Path, sandbox: Sandbox, db_url: str) -> None:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=3)
    # Holdings of the past three days, as polls then would have stored them.
    engine = database.open_database(db_url)
    database.upgrade(engine)
    for back, btc in ((3, "1"), (2, "2"), (1, "2")):
        at = datetime.combine(today - timedelta(days=back), time(9), UTC)
        record_poll(engine, PollRecord("bp", "bitopro", at, at, [
            Holding("BTC", Kind.CRYPTO, D(btc), D(btc), D(0)),
            Holding("TWD", Kind.FIAT, D(1000), D(1000), D(0))]))
    engine.dispose()
    closes = {first - timedelta(days=1): D(2900000), first: D(2950000),
              first + timedelta(days=1): D(3000000), first + timedelta(days=2): D(3010000)}
    sandbox.prices.set_closes("bitopro", "BTC", "TWD", closes)
    since = first.isoformat()
    done = cli("--config", str(config), "prices", "backfill", "--since", since)
    assert done.code == 0, done.out + done.err
    result = cli("--config", str(config), "networth", "--since", since, "--format", "json")
    days = [(d["day"], d["value"], d["unpriced"]) for d in json.loads(result.out)]
    assert days == [
        (first.isoformat(), str(1 * 2950000 + 1000), 0),
        ((first + timedelta(days=1)).isoformat(), str(2 * 3000000 + 1000), 0),
        ((first + timedelta(days=2)).isoformat(), str(2 * 3010000 + 1000), 0),
    ]
    # The same in the stored view, kept current by the backfill.
    engine = database.open_database(db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT day, value FROM networth_daily ORDER BY day")
                                  ).all()
    finally:
        engine.dispose()
    assert [(str(d), D(v)) for d, v in stored] == [(day, D(value)) for day, value, _ in days]


def test_never_look_ahead_a_close_counts_from_the_end_of_its_day(
        cli: Cli, config: Path, sandbox: Sandbox, db_url: str) -> None:
    today = datetime.now(UTC).date()
    day = today - timedelta(days=2)
    engine = database.open_database(db_url)
    database.upgrade(engine)
    at = datetime.combine(day, time(9), UTC)
    record_poll(engine, PollRecord("bp", "bitopro", at, at, [
        Holding("BTC", Kind.CRYPTO, D(1), D(1), D(0))]))
    engine.dispose()
    sandbox.prices.set_closes("bitopro", "BTC", "TWD", {day: D(100)})
    assert cli("--config", str(config), "prices", "backfill", "--since",
               day.isoformat()).code == 0
    noon = value_json_at(cli, config, datetime.combine(day, time(12), UTC))
    assert noon[0]["value"] is None  # its own day's close is not known at noon
    end = value_json_at(cli, config, datetime.combine(day + timedelta(days=1), time(0), UTC))
    assert end[0]["value"] == "100"


def value_json_at(cli: Cli, config: Path, at: datetime) -> list[dict[str, str | None]]:
    result = cli("--config", str(config), "value", "--format", "json", "--at", at.isoformat())
    assert result.code == 0, result.err
    rows: list[dict[str, str | None]] = json.loads(result.out)
    return rows



def test_the_daemon_fetches_prices_on_their_interval(tmp_path: Path, sandbox: Sandbox,
                                                     sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sandbox, sqlite_url, sandbox.accounts(),
                          '[schedule]\ninterval = "1s"\n[valuation]\ncurrency = "TWD"\n'
                          + price_tables(sandbox, ("bitopro", "yahoo"), interval="1s"))
    process = subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(config),
                                "run", "--duration", "5"], cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert err.count("prices bitopro: ok") >= 3, err
    engine = database.open_database(sqlite_url)
    try:
        with engine.connect() as conn:
            fetches = conn.execute(text("SELECT source, count(*) FROM price_log WHERE "
                                        "status = 'ok' AND kind = 'live' GROUP BY source "
                                        "ORDER BY source")).all()
            btc = conn.execute(text("SELECT count(*) FROM prices WHERE base = 'BTC' "
                                    "AND kind = 'live'")).scalar()
    finally:
        engine.dispose()
    assert [name for name, count in fetches if count >= 3] == ["bitopro", "yahoo"]
    assert btc is not None and btc >= 3  # one observation per fetch, each at its own time


def test_an_inverse_rate_from_the_fakes(cli: Cli, config: Path) -> None:
    assert cli("--config", str(config), "poll").code == 0
    assert cli("--config", str(config), "prices", "fetch").code == 0
    result = cli("--config", str(config), "value", "--currency", "USD", "--format", "json")
    rows = {r["asset"]: r for r in json.loads(result.out)}
    # Only TWD=X (1 USD in TWD) prices TWD in USD: 1 / 31.765, half-even to 28 digits.
    twd = rows["TWD"]
    assert twd["price"] == "0.03148118998898158350385644577"
    assert (twd["price_source"], twd["currency"]) == ("yahoo", "USD")
    assert rows["USD"]["price"] == "1"
    assert rows["AAPL"]["price"] == "232.78" and rows["AAPL"]["price_source"] == "yahoo"


def test_preference_order_and_a_stale_price_from_the_fakes(
        cli: Cli, tmp_path: Path, sandbox: Sandbox, db_url: str) -> None:
    board = sandbox.prices
    board.coin_ids["BTC"] = "bitcoin"
    board.set_price("coingecko", "BTC", "TWD", D("2999999"))
    # CoinGecko says ETH last changed two hours ago: older than max_age (1 h).
    board.coin_ids["ETH"] = "ethereum"
    board.set_price("coingecko", "ETH", "TWD", D("97000"),
                    at=datetime.now(UTC) - timedelta(hours=2))

    def config(order: tuple[str, ...]) -> Path:
        return write_config(tmp_path / f"{'-'.join(order)}.toml", sandbox, db_url,
                            sandbox.accounts(), '[valuation]\ncurrency = "TWD"\n'
                            + price_tables(sandbox, order))

    gecko_first = config(("coingecko", "bitopro", "yahoo"))
    assert cli("--config", str(gecko_first), "poll").code == 0
    assert cli("--config", str(gecko_first), "prices", "fetch").code == 0
    rows = {(r["account"], r["asset"]): r for r in value_json(cli, gecko_first)}
    assert (rows[("bp", "BTC")]["price"], rows[("bp", "BTC")]["price_source"]) == (
        "2999999", "coingecko")
    # CoinGecko's ETH is stale, so the next source in the order gives it.
    assert (rows[("bp", "ETH")]["price"], rows[("bp", "ETH")]["price_source"]) == (
        str(ETH_TWD), "bitopro")
    bitopro_first = config(("bitopro", "coingecko", "yahoo"))
    rows = {(r["account"], r["asset"]): r for r in value_json(cli, bitopro_first)}
    assert (rows[("bp", "BTC")]["price"], rows[("bp", "BTC")]["price_source"]) == (
        str(BTC_TWD), "bitopro")
