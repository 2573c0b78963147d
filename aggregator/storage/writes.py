"""Store one poll in one transaction: its log row, raw answers and holding changes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from aggregator.errors import DatabaseUnavailable, PollUnstorable
from aggregator.model import Holding, PollRecord, RawResponse
from aggregator.storage import answers
from aggregator.storage.database import WRITE, one_line
from aggregator.storage.tables import (
    accounts,
    holding_series,
    holdings,
    poll_responses,
    polls,
    raw_responses,
)

# Built once: constructing a statement costs more CPU than running it on SQLite.
_ACCOUNT = select(accounts.c.id, accounts.c.source).where(accounts.c.name == bindparam("name"))
_NEW_ACCOUNT = insert(accounts).returning(accounts.c.id)
_NEW_POLL = insert(polls).returning(polls.c.id)
_SAME_POLL = select(polls.c.id).where(polls.c.account_id == bindparam("k_account"),
                                      polls.c.started_at == bindparam("k_started"),
                                      polls.c.attempt == bindparam("k_attempt"))
_RESPONSE = select(raw_responses.c.id).where(raw_responses.c.sha256 == bindparam("digest"))
_LAST_OK_POLL = (
    select(polls.c.id)
    .where(polls.c.account_id == bindparam("account_id"), polls.c.status == "ok",
           polls.c.id != bindparam("poll_id"))
    .order_by(polls.c.finished_at.desc())
    .limit(1)
    .scalar_subquery()
)
_PREVIOUS_ANSWER = (
    select(raw_responses.c.id, raw_responses.c.encoding, raw_responses.c.base_id,
           raw_responses.c.body)
    .join(poll_responses, poll_responses.c.response_id == raw_responses.c.id)
    .where(poll_responses.c.poll_id == _LAST_OK_POLL,
           raw_responses.c.endpoint == bindparam("endpoint"))
    .limit(1)
)
_BASE_BODY = select(raw_responses.c.body).where(raw_responses.c.id == bindparam("id"))
_CONFIRMED = (
    update(accounts)
    .where(accounts.c.id == bindparam("b_id"),
           or_(accounts.c.last_ok_at.is_(None), accounts.c.last_ok_at < bindparam("b_at")))
    .values(last_ok_at=bindparam("b_at"))
)
_OPEN = (
    select(holding_series.c.asset, holdings.c.series_id, holdings.c.valid_from,
           holdings.c.kind, holdings.c.total, holdings.c.available, holdings.c.locked)
    .join(holdings, holdings.c.series_id == holding_series.c.id)
    .where(holding_series.c.account_id == bindparam("account_id"),
           holdings.c.valid_to.is_(None))
)
_CLOSE = (
    update(holdings)
    .where(and_(holdings.c.series_id == bindparam("b_series_id"),
                holdings.c.valid_from == bindparam("b_valid_from")))
    .values(valid_to=bindparam("b_valid_to"))
)
_SERIES = select(holding_series.c.id).where(
    holding_series.c.account_id == bindparam("account_id"),
    holding_series.c.asset == bindparam("asset"))


@dataclass(frozen=True)
class PollWriteResult:
    poll_id: int
    opened: int  # intervals started by this poll
    closed: int  # intervals it ended (changed or gone)
    duplicate: bool = False  # the poll was stored already; nothing was written


@dataclass(frozen=True)
class _Open:
    series_id: int
    valid_from: datetime
    kind: str
    total: Decimal
    available: Decimal | None
    locked: Decimal | None


# Errors that say the database cannot take writes now, whatever is written: retry later.
# A ProgrammingError here is a missing table (a database recreated under us), not SQL
# of ours: the replay brings the schema up to date first.
_UNAVAILABLE = (OperationalError, InterfaceError, ProgrammingError, DisconnectionError,
                PoolTimeout)

Watch = Callable[[Any], None]


def record_poll(engine: Engine, record: PollRecord, watch: Watch | None = None
                ) -> PollWriteResult:
    """Write ``record``; all of it or nothing, and at most once.

    A poll is identified by (account, started_at, attempt): writing one that is already
    stored (a replay after a crash, or a write that timed out but committed) changes
    nothing and returns ``duplicate``. ``watch`` is given the DBAPI connection before
    any statement runs, so a caller can interrupt a write that hangs.
    Raises DatabaseUnavailable (try again later) or PollUnstorable (never will work).
    """

    def stored() -> PollWriteResult | None:
        found = _stored_id(engine, record)
        return None if found is None else PollWriteResult(found, 0, 0, duplicate=True)

    return write_once(engine, lambda conn: _write(conn, record), stored, watch)


R = TypeVar("R")


def write_once(engine: Engine, write: Callable[[Connection], R],
               stored: Callable[[], R | None], watch: Watch | None = None) -> R:
    """Run ``write`` in one write transaction, errors sorted into the two that matter.

    ``stored`` says whether another writer committed the same record meanwhile (the
    unique key that made the insert fail), which is not a failure.
    """
    try:
        with engine.connect() as conn:
            if watch is not None:
                watch(conn.connection.dbapi_connection)
            with conn.execution_options(**WRITE).begin():
                return write(conn)
    except _UNAVAILABLE as exc:
        raise DatabaseUnavailable(one_line(exc)) from None
    except IntegrityError as exc:
        found = stored()
        if found is not None:
            return found
        raise PollUnstorable(one_line(exc)) from None
    except (SQLAlchemyError, ValueError, TypeError, UnicodeError) as exc:
        raise PollUnstorable(f"{type(exc).__name__}: {one_line(exc)}") from None


def _stored_id(engine: Engine, record: PollRecord) -> int | None:
    try:
        with engine.connect() as conn:
            row = conn.execute(_ACCOUNT, {"name": record.account}).first()
            if row is None:
                return None
            found = conn.execute(_SAME_POLL, _poll_key(int(row.id), record)).scalar()
            return None if found is None else int(found)
    except SQLAlchemyError:
        return None


def _poll_key(account_id: int, record: PollRecord) -> dict[str, Any]:
    return {"k_account": account_id, "k_started": record.started_at,
            "k_attempt": record.attempts}


def _write(conn: Connection, record: PollRecord) -> PollWriteResult:
    account_id = _account_id(conn, record.account, record.source)
    found = conn.execute(_SAME_POLL, _poll_key(account_id, record)).scalar()
    if found is not None:
        return PollWriteResult(int(found), 0, 0, duplicate=True)
    poll_id = conn.execute(
        _NEW_POLL,
        {
            "account_id": account_id,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "status": record.status,
            "error_kind": record.error_kind,
            "error_message": record.error_message,
            "attempt": record.attempts,
        },
    ).scalar_one()
    for seq, response in enumerate(record.responses):
        conn.execute(insert(poll_responses), {
            "poll_id": poll_id, "seq": seq,
            "response_id": _response_id(conn, response, account_id, poll_id)})
    if record.holdings is None:
        return PollWriteResult(poll_id, 0, 0)
    conn.execute(_CONFIRMED, {"b_id": account_id, "b_at": record.finished_at})
    opened, closed = _apply_holdings(conn, account_id, poll_id, record)
    return PollWriteResult(poll_id, opened, closed)


def _account_id(conn: Connection, name: str, source: str) -> int:
    row = conn.execute(_ACCOUNT, {"name": name}).first()
    if row is None:
        return int(conn.execute(_NEW_ACCOUNT, {"name": name, "source": source}).scalar_one())
    if row.source != source:
        conn.execute(update(accounts).where(accounts.c.id == row.id).values(source=source))
    return int(row.id)


def _response_id(conn: Connection, response: RawResponse, account_id: int,
                 poll_id: int) -> int:
    return store_response(conn, response, lambda: _delta_base(conn, account_id, poll_id,
                                                               response.endpoint))


def store_response(conn: Connection, response: RawResponse,
                   delta_base: Callable[[], tuple[int, bytes] | None] | None = None) -> int:
    """The id of ``response`` in raw_responses, stored now unless it is there already.

    ``delta_base`` finds the plain answer an ok answer may be stored as a delta of.
    """
    head = f"{response.endpoint}\n{response.status}\n{response.content_type or ''}\n"
    digest = hashlib.sha256(head.encode() + response.body).digest()
    found = conn.execute(_RESPONSE, {"digest": digest}).scalar()
    if found is not None:
        return int(found)
    encoding, stored, base_id = answers.PLAIN, response.body, None
    if delta_base is not None and 200 <= response.status < 300:
        # Failures stay plain: readable with SQL alone.
        base = delta_base()
        delta = answers.encode_delta(response.body, base[1]) if base else None
        if base is not None and delta is not None:
            encoding, stored, base_id = answers.DELTA, delta, base[0]
    # Another writer may store the same answer between the select and the insert.
    conn.execute(_insert_ignoring_duplicates(conn).values(
        sha256=digest, endpoint=response.endpoint, http_status=response.status,
        content_type=response.content_type, encoding=encoding, base_id=base_id, body=stored))
    return int(conn.execute(_RESPONSE, {"digest": digest}).scalar_one())


def _delta_base(conn: Connection, account_id: int, poll_id: int, endpoint: str
                ) -> tuple[int, bytes] | None:
    """The plain answer the account's previous ok answer from ``endpoint`` is based on."""
    row = conn.execute(_PREVIOUS_ANSWER, {"account_id": account_id, "poll_id": poll_id,
                                          "endpoint": endpoint}).first()
    if row is None:
        return None
    if row.encoding == answers.PLAIN:
        return int(row.id), bytes(row.body)
    base = conn.execute(_BASE_BODY, {"id": row.base_id}).scalar_one()
    return int(row.base_id), bytes(base)


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(raw_responses).on_conflict_do_nothing(index_elements=["sha256"])
    if conn.dialect.name == "sqlite":
        return sqlite.insert(raw_responses).on_conflict_do_nothing(index_elements=["sha256"])
    return insert(raw_responses)


def _apply_holdings(
    conn: Connection, account_id: int, poll_id: int, record: PollRecord
) -> tuple[int, int]:
    assert record.holdings is not None
    now = record.finished_at
    current = _open_intervals(conn, account_id)
    seen = {h.asset: h for h in record.holdings}
    if len(seen) != len(record.holdings):
        raise PollUnstorable(f"the poll of {record.account} lists an asset twice")
    closed = opened = 0
    for asset, interval in current.items():
        holding = seen.get(asset)
        if holding is not None and _same(interval, holding):
            continue
        conn.execute(_CLOSE, {"b_series_id": interval.series_id,
                              "b_valid_from": interval.valid_from,
                              "b_valid_to": _after(now, interval.valid_from)})
        closed += 1
    for asset, holding in seen.items():
        previous = current.get(asset)
        if previous is not None and _same(previous, holding):
            continue
        series_id = previous.series_id if previous else _series_id(conn, account_id, asset)
        conn.execute(insert(holdings), {
            "series_id": series_id,
            "valid_from": now if previous is None else _after(now, previous.valid_from),
            "valid_to": None,
            "kind": str(holding.kind),
            "total": holding.total,
            "available": holding.available,
            "locked": holding.locked,
            "details": dict(holding.details),
            "poll_id": poll_id,
        })
        opened += 1
    return opened, closed


def _after(moment: datetime, valid_from: datetime) -> datetime:
    # The wall clock can step back (NTP); an interval never ends before it starts.
    return max(moment, valid_from + timedelta(milliseconds=1))


def _same(interval: _Open, holding: Holding) -> bool:
    # Decimal equality ignores trailing zeros: "1.50" and "1.5" are the same amount.
    # Details (valuations, unrealized profit) move all the time and are not history.
    return (interval.kind == str(holding.kind) and interval.total == holding.total
            and interval.available == holding.available and interval.locked == holding.locked)


def _open_intervals(conn: Connection, account_id: int) -> Mapping[str, _Open]:
    rows = conn.execute(_OPEN, {"account_id": account_id})
    return {
        row.asset: _Open(row.series_id, row.valid_from, row.kind, row.total, row.available,
                         row.locked)
        for row in rows
    }


def _series_id(conn: Connection, account_id: int, asset: str) -> int:
    found = conn.execute(_SERIES, {"account_id": account_id, "asset": asset}).scalar()
    if found is not None:
        return int(found)
    return int(conn.execute(
        insert(holding_series).returning(holding_series.c.id),
        {"account_id": account_id, "asset": asset},
    ).scalar_one())
