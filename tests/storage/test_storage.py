"""The schema, the exact types and the interval writer on real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select, text

from aggregator.errors import StorageError
from aggregator.model import Holding, Kind, PollRecord, RawResponse
from aggregator.storage import database, queries
from aggregator.storage.tables import holdings, metadata, polls, raw_responses
from aggregator.storage.writes import record_poll

T0 = datetime(2026, 11, 24, 8, 0, 0, 123000, tzinfo=UTC)
TINY = Decimal("0.000000000000000001")
HUGE = Decimal("123456789.123456789012345678")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = database.open_database(db_url)
    database.upgrade(engine)
    yield engine
    engine.dispose()


def poll(at: datetime, *holdings_: Holding, body: bytes = b'{"data":[]}',
         account: str = "acc") -> PollRecord:
    return PollRecord(account, "bitopro", at - timedelta(milliseconds=50), at, list(holdings_),
                      [RawResponse("/accounts/balance", 200, body, "application/json")])


def btc(total: str, available: str | None = None) -> Holding:
    return Holding("BTC", Kind.CRYPTO, Decimal(total),
                   None if available is None else Decimal(available), None, {"stake": "0"})


def test_migrations_match_the_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_twice_is_harmless(engine: Engine) -> None:
    database.upgrade(engine)
    assert database.current_revision(engine) == database.SCHEMA_REVISION


def test_amounts_round_trip_exactly(engine: Engine) -> None:
    record_poll(engine, poll(T0, Holding("X", Kind.CRYPTO, HUGE, TINY, HUGE - TINY)))
    (row,) = queries.holdings_at(engine)
    assert (row.total, row.available, row.locked) == (HUGE, TINY, HUGE - TINY)
    with engine.connect() as conn:
        view = conn.execute(text("SELECT total, available FROM holdings_latest")).one()
    # SQLite gives the canonical text, PostgreSQL a numeric: both exact.
    assert (Decimal(view.total), Decimal(view.available)) == (HUGE, TINY)


def test_unchanged_polls_add_no_holding_rows(engine: Engine) -> None:
    for i in range(5):
        record_poll(engine, poll(T0 + timedelta(minutes=i), btc("1.50", "1")))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(holdings)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(polls)).scalar() == 5
        # The same body five times is stored once.
        assert conn.execute(select(func.count()).select_from(raw_responses)).scalar() == 1
    (row,) = queries.holdings_at(engine)
    assert row.observed_at == T0 + timedelta(minutes=4)
    assert row.valid_from == T0


def test_trailing_zeros_are_not_a_change(engine: Engine) -> None:
    record_poll(engine, poll(T0, btc("1.50")))
    result = record_poll(engine, poll(T0 + timedelta(minutes=1), btc("1.5000")))
    assert (result.opened, result.closed) == (0, 0)


def test_one_change_closes_one_interval_and_opens_one(engine: Engine) -> None:
    record_poll(engine, poll(T0, btc("1"), Holding("ETH", Kind.CRYPTO, Decimal(2), None, None)))
    t1 = T0 + timedelta(minutes=1)
    result = record_poll(engine, poll(t1, btc("1.1"),
                                      Holding("ETH", Kind.CRYPTO, Decimal(2), None, None)))
    assert (result.opened, result.closed) == (1, 1)
    intervals = queries.history(engine, "acc", asset="btc")
    assert [(i.total, i.valid_from, i.valid_to) for i in intervals] == [
        (Decimal(1), T0, t1), (Decimal("1.1"), t1, None)]


def test_gone_asset_closes_and_reappearing_asset_reopens(engine: Engine) -> None:
    record_poll(engine, poll(T0, btc("1")))
    record_poll(engine, poll(T0 + timedelta(minutes=1)))
    assert queries.holdings_at(engine) == []
    assert len(queries.holdings_at(engine, T0 + timedelta(seconds=30))) == 1
    record_poll(engine, poll(T0 + timedelta(minutes=2), btc("1")))
    assert [i.valid_to for i in queries.history(engine, "acc")] == [
        T0 + timedelta(minutes=1), None]


def test_as_of_query_picks_the_interval_valid_then(engine: Engine) -> None:
    for i, amount in enumerate(["1", "2", "3"]):
        record_poll(engine, poll(T0 + timedelta(hours=i), btc(amount)))
    at = T0 + timedelta(hours=1, minutes=30)
    (row,) = queries.holdings_at(engine, at)
    assert row.total == Decimal(2)
    assert row.observed_at == T0 + timedelta(hours=1)
    assert queries.holdings_at(engine, T0 - timedelta(seconds=1)) == []


def test_failed_poll_is_logged_with_its_body_and_changes_nothing(engine: Engine) -> None:
    record_poll(engine, poll(T0, btc("1")))
    failed = PollRecord("acc", "bitopro", T0, T0 + timedelta(minutes=1), None,
                        [RawResponse("/accounts/balance", 200, b'{"data": [tru')],
                        error_kind="malformed", error_message="body is not JSON")
    result = record_poll(engine, failed)
    (response,) = queries.responses_of(engine, result.poll_id)
    assert response.body == b'{"data": [tru'
    assert queries.holdings_at(engine)[0].total == Decimal(1)
    with engine.connect() as conn:
        log = conn.execute(text(
            "SELECT status, error_kind, error_message FROM poll_log ORDER BY poll_id")).all()
    assert [tuple(r) for r in log] == [("ok", None, None),
                                       ("failed", "malformed", "body is not JSON")]


def test_view_times_are_iso_utc(engine: Engine) -> None:
    record_poll(engine, poll(T0, btc("1")))
    with engine.connect() as conn:
        row = conn.execute(text("SELECT observed_at FROM holdings_latest")).one()
        history_row = conn.execute(text("SELECT valid_from, valid_to FROM holdings_history")).one()
    observed = row.observed_at
    if isinstance(observed, str):  # SQLite: ISO 8601 text
        observed = datetime.fromisoformat(observed)
        assert row.observed_at == "2026-11-24T08:00:00.123Z"
    assert observed == T0
    assert history_row.valid_to is None


def test_a_poll_is_one_transaction(engine: Engine) -> None:
    # The poll row and its body are written before the holding that fails.
    broken = Holding("ETH", Kind.CRYPTO, 1.5, None, None)  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        record_poll(engine, poll(T0, btc("1"), broken))
    with pytest.raises(StorageError, match="twice"):
        record_poll(engine, poll(T0, btc("1"), btc("2")))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(polls)).scalar() == 0


def test_holdings_daily_is_the_end_of_each_utc_day(engine: Engine) -> None:
    day1 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    record_poll(engine, poll(day1, btc("1")))
    record_poll(engine, poll(day1 + timedelta(hours=5), btc("2")))  # same day: 2 counts
    record_poll(engine, poll(day1 + timedelta(days=2), btc("3")))
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT day, total FROM holdings_daily WHERE account = 'acc' ORDER BY day")).all()
    days = [(str(day), Decimal(total)) for day, total in rows]
    assert days[:3] == [("2026-11-20", Decimal(2)), ("2026-11-21", Decimal(2)),
                        ("2026-11-22", Decimal(3))]
    assert len(days) == (datetime.now(UTC).date() - day1.date()).days + 1  # up to today


def test_history_since_and_until(engine: Engine) -> None:
    for i, amount in enumerate(["1", "2", "3", "4"]):
        record_poll(engine, poll(T0 + timedelta(days=i), btc(amount)))
    eth = Holding("ETH", Kind.CRYPTO, Decimal(5), None, None)
    record_poll(engine, poll(T0 + timedelta(days=4), btc("4"), eth))

    def totals(since: datetime, until: datetime | None = None) -> list[tuple[str, Decimal]]:
        return [(i.asset, i.total) for i in queries.history(engine, "acc", since=since,
                                                            until=until)]

    # The interval in force at `since` is included; ETH began after `since`.
    assert totals(T0 + timedelta(days=1, hours=12)) == [
        ("BTC", Decimal(2)), ("BTC", Decimal(3)), ("BTC", Decimal(4)), ("ETH", Decimal(5))]
    assert totals(T0 + timedelta(hours=1), T0 + timedelta(days=1, hours=1)) == [
        ("BTC", Decimal(1)), ("BTC", Decimal(2))]
    assert totals(T0 - timedelta(days=1)) == [
        ("BTC", Decimal(n)) for n in range(1, 5)] + [("ETH", Decimal(5))]


def test_similar_answers_are_stored_as_deltas_and_read_back_exactly(engine: Engine) -> None:
    def body(i: int) -> bytes:
        # Like Bitz: the same balances, a new timestamp in every answer.
        return (b'{"status":200,"msg":"","data":{"info":[' + b'{"name":"usdt","num":"500.25"},' * 20
                + b'{"name":"btc","num":"0.1"}]},"time":%d,"microtime":"0.%08d %d"}'
                % (1764000000 + i, i * 7919, 1764000000 + i))

    ids = []
    for i in range(3):
        at = T0 + timedelta(minutes=i)
        ids.append(record_poll(engine, poll(at, btc("1"), body=body(i))).poll_id)
    failed = PollRecord("acc", "bitopro", T0, T0 + timedelta(minutes=5), None,
                        [RawResponse("/accounts/balance", 500, body(9))],
                        error_kind="server_error", error_message="HTTP 500")
    ids.append(record_poll(engine, failed).poll_id)
    assert [queries.responses_of(engine, i)[0].body for i in ids] == [
        body(0), body(1), body(2), body(9)]
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT encoding, base_id, length(body) FROM raw_responses ORDER BY id")).all()
    assert [(e, b) for e, b, _ in stored] == [("plain", None), ("zdelta", 1), ("zdelta", 1),
                                              ("plain", None)]
    assert all(size < len(body(1)) / 4 for e, _, size in stored if e == "zdelta")


def test_schema_revision_constant_is_the_newest_migration() -> None:
    from importlib.resources import files

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(files("aggregator.migrations")))
    assert ScriptDirectory.from_config(config).get_current_head() == database.SCHEMA_REVISION
