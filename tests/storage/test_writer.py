"""The poll writer and its spool, in-process: exact round trips, idempotent writes, the
backlog's order and bounds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from aggregator.errors import UNSTORABLE_KIND
from aggregator.model import Holding, Kind, PollRecord, RawResponse
from aggregator.storage import codec, database
from aggregator.storage.spool import Spool, SpoolFull
from aggregator.storage.writer import PollWriter, WriterSettings
from aggregator.storage.writes import record_poll

T0 = datetime(2026, 11, 24, 8, 0, 0, 123000, tzinfo=UTC)
TINY = Decimal("0.000000000000000001")
# A port nothing listens on: the database is "down" and says so at once.
DOWN = "postgresql://postgres@127.0.0.1:9/none"


def record(at: datetime = T0, *holdings: Holding, account: str = "acct",
           kind: str | None = None) -> PollRecord:
    return PollRecord(account, "bitopro", at, at + timedelta(milliseconds=40),
                      None if kind else list(holdings),
                      [RawResponse("/accounts/balance", 200, b"\xff\x00{}", "application/json",
                                   retry_after=2.5)],
                      error_kind=kind, error_message="m\u00e9ssage" if kind else None)


def btc(total: str, available: str | None = None) -> Holding:
    return Holding("BTC", Kind.CRYPTO, Decimal(total),
                   None if available is None else Decimal(available), None,
                   {"stake": "1.50", "tradable": True, "n": 3, "none": None})


def test_a_record_survives_the_codec_exactly() -> None:
    original = record(T0, btc("1.50", "0.000000000000000001"),
                      Holding("ETH", Kind.CRYPTO, Decimal("123456789.123456789012345678"),
                              TINY, Decimal("-0"), {}))
    back = codec.decode(codec.encode(original))
    assert back == original
    assert str(back.holdings[0].total) == "1.50"  # type: ignore[index]
    failed = record(T0, kind="timeout")
    assert codec.decode(codec.encode(failed)) == failed


def test_the_spool_keeps_order_across_reopening_and_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, max_bytes=4096)
    spool.load()
    first, second = record(T0, btc("1")), record(T0 + timedelta(seconds=1), btc("2"))
    spool.append(first)
    spool.append(second)
    spool.close()
    again = Spool(path, max_bytes=4096)
    again.load()
    assert again.count == 2 and again.oldest == first.finished_at
    assert [e.record for e in again.peek()] == [first, second]
    with pytest.raises(SpoolFull):
        for i in range(100):
            again.append(record(T0 + timedelta(minutes=i), btc("3")))
    assert again.size <= 4096
    again.remove([e.seq for e in again.peek(2)])
    assert again.peek(1)[0].record.holdings == [btc("3")]


def test_writing_the_same_poll_twice_stores_it_once(db_url: str) -> None:
    engine = database.open_database(db_url)
    database.upgrade(engine)
    try:
        poll = record(T0, btc("1"))
        first = record_poll(engine, poll)
        again = record_poll(engine, poll)
        assert again.duplicate and again.poll_id == first.poll_id
        assert not first.duplicate
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM polls")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM holdings")).scalar() == 1
    finally:
        engine.dispose()


async def test_a_poll_the_database_refuses_is_stored_as_a_failed_poll(db_url: str,
                                                                     tmp_path: Path) -> None:
    engine = database.open_database(db_url, write_timeout=5)
    writer = PollWriter(engine, WriterSettings(spool_path=tmp_path / "spool.db", timeout=5))
    await writer.start()
    try:
        stored = await writer.store(record(T0, btc("1"), btc("2")))  # BTC twice
        assert stored.where == "database" and stored.written is not None
    finally:
        await writer.close()
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, error_kind, error_message FROM poll_log"
                                )).one()
        answers = conn.execute(text("SELECT count(*) FROM poll_responses")).scalar()
    engine.dispose()
    assert (row.status, row.error_kind) == ("failed", UNSTORABLE_KIND)
    assert "twice" in row.error_message
    assert answers == 1  # its raw answer is kept


async def test_spool_then_memory_then_lost_each_said_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = database.open_database(DOWN, write_timeout=2)
    writer = PollWriter(engine, WriterSettings(spool_path=tmp_path / "spool.db", timeout=2,
                                               spool_max_bytes=2048, memory_polls=2))
    caplog.set_level(logging.INFO, logger="aggregator.storage")
    await writer.start()
    places = [(await writer.store(record(T0 + timedelta(seconds=i), btc(str(i))))).where
              for i in range(8)]
    health = writer.health()
    await writer.close(timeout=0.5)
    engine.dispose()
    spooled = places.count("spool")
    assert spooled >= 1
    assert places == ["spool"] * spooled + ["memory"] * 2 + ["lost"] * (6 - spooled)
    assert not health.database_up and health.spooled == spooled + 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("database unavailable" in w for w in warnings) == 1, warnings
    assert sum("in memory" in w for w in warnings) == 1, warnings
    assert "\n" not in "".join(warnings)  # one line each, no SQL, no driver hints
    # What was on disk is still there for the next start; memory is said to be lost.
    assert Spool(tmp_path / "spool.db").peek(100) != []
