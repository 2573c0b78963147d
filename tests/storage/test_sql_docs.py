"""Every query in docs/sql.md runs, and finds rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from aggregator.model import Holding, Kind, PollRecord, RawResponse
from aggregator.prices.model import FetchRecord, Observation, PriceKind
from aggregator.storage import database
from aggregator.storage.price_writes import record_fetch
from aggregator.storage.writes import record_poll
from aggregator.valuation.daily import store_days
from aggregator.valuation.rule import ValuationSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"
BLOCK = re.compile(r"```sql\n(.*?)```", re.S)
DAY0 = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


def queries() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def holding(asset: str, total: str, kind: Kind = Kind.CRYPTO, **details: str) -> Holding:
    return Holding(asset, kind, Decimal(total), Decimal(total), Decimal(0), details)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Eight days of history: drifting balances, an asset gone, failures on the last day."""
    engine = database.open_database(db_url)
    database.upgrade(engine)
    for day in range(8):
        at = DAY0 + timedelta(days=day)
        response = [RawResponse("/balance", 200, b"{}")]
        bitopro = [holding("BTC", f"1.{day}"), holding("TWD", "152340")]
        if day < 5:
            bitopro.append(holding("ETH", "2.5"))  # sold on day 5
        record_poll(engine, PollRecord("bitopro-main", "bitopro", at, at, bitopro, response))
        bitz = [holding("USDT", str(500 + day * 10), value_usd=str(500 + day * 10)),
                holding("BTC", "0.000000000000000001")]
        record_poll(engine, PollRecord("bitz-1", "bitz", at, at, bitz, response))
        record_poll(engine, PollRecord(
            "pitrade-partner", "pitrade", at, at,
            [holding("AAPL", "10", Kind.STOCK, averagePurchasePrice="145"),
             holding("USD", "2500.5", Kind.FIAT)], response))
    failed_at = DAY0 + timedelta(days=7, hours=1)
    record_poll(engine, PollRecord("bitz-1", "bitz", failed_at, failed_at, None,
                                   [RawResponse("/balance", 200, b'{"status":-110}')],
                                   error_kind="rate_limited", error_message="Bitz status -110"))
    for day in range(8):
        at = DAY0 + timedelta(days=day, hours=1)
        record_fetch(engine, FetchRecord("bito", PriceKind.LIVE, at, at, [
            Observation("BTC", "TWD", PriceKind.LIVE, at, Decimal(3000000 + day * 10000)),
            Observation("USDT", "TWD", PriceKind.LIVE, at, Decimal("32.1"))]))
        close = datetime.combine((at + timedelta(days=1)).date(), datetime.min.time(), UTC)
        record_fetch(engine, FetchRecord("bito", PriceKind.DAILY, close, close, [
            Observation("BTC", "TWD", PriceKind.DAILY, close, Decimal(3000500 + day * 10000)),
            Observation("USDT", "TWD", PriceKind.DAILY, close, Decimal("32.2"))]))
    record_fetch(engine, FetchRecord("gecko", PriceKind.LIVE, DAY0, DAY0, None,
                                     error_kind="rate_limited", error_message="HTTP 429"))
    store_days(engine, ValuationSettings(currency="TWD", sources=("bito",)),
               [(DAY0 + timedelta(days=d)).date() for d in range(8)])
    yield engine
    engine.dispose()


def test_there_are_at_least_eight_queries() -> None:
    assert len(queries()) >= 8


@pytest.mark.parametrize("number", range(len(queries())))
def test_documented_query_finds_rows(engine: Engine, number: int) -> None:
    query = queries()[number]
    dialect = engine.dialect.name
    if "-- postgresql only" in query and dialect != "postgresql":
        pytest.skip("PostgreSQL-only query")
    if "-- sqlite only" in query and dialect != "sqlite":
        pytest.skip("SQLite-only query")
    with engine.connect() as conn:
        rows = conn.execute(text(query)).all()
    assert rows, query
