"""Read the history: holdings as of a time, the intervals of an account, the poll log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Select, func, literal, or_, select
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StorageError
from aggregator.storage import answers
from aggregator.storage.tables import (
    accounts,
    holding_series,
    holdings,
    poll_responses,
    polls,
    raw_responses,
)
from aggregator.storage.types import UtcTime


@dataclass(frozen=True, kw_only=True)
class Amounts:
    """One account's holding of one asset; the rows below say when."""

    account: str
    source: str
    asset: str
    kind: str
    total: Decimal
    available: Decimal | None
    locked: Decimal | None


@dataclass(frozen=True, kw_only=True)
class HoldingRow(Amounts):
    observed_at: datetime  # when the poll that last confirmed this value finished
    valid_from: datetime
    details: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class IntervalRow(Amounts):
    valid_from: datetime
    valid_to: datetime | None
    details: dict[str, Any]


def _amounts(row: Any) -> dict[str, Any]:
    return {"account": row.account, "source": row.source, "asset": row.asset,
            "kind": row.kind, "total": row.total, "available": row.available,
            "locked": row.locked}


@dataclass(frozen=True)
class PollRow:
    id: int
    account: str
    started_at: datetime
    finished_at: datetime
    status: str
    error_kind: str | None
    error_message: str | None
    attempt: int


@dataclass(frozen=True)
class ResponseRow:
    seq: int
    endpoint: str
    http_status: int
    content_type: str | None
    body: bytes


def _interval_columns() -> Select[Any]:
    return (
        select(accounts.c.id.label("account_id"), accounts.c.name.label("account"),
               accounts.c.source, holding_series.c.asset, holdings.c.kind, holdings.c.total,
               holdings.c.available, holdings.c.locked, holdings.c.valid_from,
               holdings.c.valid_to, holdings.c.details)
        .select_from(holding_series)
        .join(accounts, accounts.c.id == holding_series.c.account_id)
        .join(holdings, holdings.c.series_id == holding_series.c.id)
    )


def holdings_at(
    engine: Engine, at: datetime | None = None, account_names: Sequence[str] = (),
    *, observed: bool = True,
) -> list[HoldingRow]:
    """Every account's holdings as of ``at`` (default: the latest), by account and asset.

    ``observed=False`` skips looking up when each account was last confirmed (then
    ``observed_at`` is the interval's start): one query less per account.
    """
    names = account_names
    query = _interval_columns()
    if at is None:
        query = query.where(holdings.c.valid_to.is_(None))
    else:
        # Per series, the last interval that began by ``at``: one index seek each, where
        # "valid_from <= at < valid_to" would scan the whole history.
        latest_start = (
            select(func.max(holdings.c.valid_from))
            .where(holdings.c.series_id == holding_series.c.id, holdings.c.valid_from <= at)
            .correlate(holding_series)
            .scalar_subquery()
        )
        query = query.where(holdings.c.valid_from == latest_start,
                            or_(holdings.c.valid_to.is_(None), holdings.c.valid_to > at))
    if names:
        query = query.where(accounts.c.name.in_(list(names)))
    query = query.order_by(accounts.c.name, holding_series.c.asset)
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
            confirmed = _last_ok(conn, {r.account_id for r in rows}, at) if observed else {}
    except SQLAlchemyError as exc:
        raise StorageError(f"reading holdings failed: {exc}") from None
    return [
        HoldingRow(**_amounts(r), observed_at=confirmed.get(r.account_id, r.valid_from),
                   valid_from=r.valid_from, details=dict(r.details))
        for r in rows
    ]


def _last_ok(conn: Any, account_ids: set[int], at: datetime | None) -> dict[int, datetime]:
    """Per account, when its last successful poll (by ``at``) finished."""
    if at is None:
        rows = conn.execute(select(accounts.c.id, accounts.c.last_ok_at)
                            .where(accounts.c.id.in_(account_ids)))
        return {r.id: r.last_ok_at for r in rows if r.last_ok_at is not None}
    found: dict[int, datetime] = {}
    for account_id in account_ids:
        # Walks the (account, status, finished_at) index backwards: one step.
        value = conn.execute(
            select(polls.c.finished_at)
            .where(polls.c.account_id == account_id, polls.c.status == "ok",
                   polls.c.finished_at <= at)
            .order_by(polls.c.finished_at.desc()).limit(1)
        ).scalar()
        if value is not None:
            found[account_id] = value
    return found


def history(
    engine: Engine, account: str, asset: str | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> list[IntervalRow]:
    """The intervals of ``account`` that overlap [since, until], by asset and time."""
    query = _interval_columns().where(accounts.c.name == account)
    if asset:
        query = query.where(holding_series.c.asset == asset.upper())
    if since is not None:
        # Bound the index scan from below too: the interval in force at ``since`` is the
        # last one that began by then; "valid_to > since" alone reads the whole series.
        in_force = (
            select(func.max(holdings.c.valid_from))
            .where(holdings.c.series_id == holding_series.c.id, holdings.c.valid_from <= since)
            .correlate(holding_series)
            .scalar_subquery()
        )
        # Typed, so SQLite compares epoch milliseconds with epoch milliseconds.
        since_value = literal(since, UtcTime())
        query = query.where(holdings.c.valid_from >= func.coalesce(in_force, since_value),
                            or_(holdings.c.valid_to.is_(None), holdings.c.valid_to > since))
    if until is not None:
        query = query.where(holdings.c.valid_from <= until)
    query = query.order_by(holding_series.c.asset, holdings.c.valid_from)
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise StorageError(f"reading history failed: {exc}") from None
    return [
        IntervalRow(**_amounts(r), valid_from=r.valid_from, valid_to=r.valid_to,
                    details=dict(r.details))
        for r in rows
    ]


def recent_polls(engine: Engine, account: str | None = None, limit: int = 100,
                 failed_only: bool = False) -> list[PollRow]:
    """The latest polls, newest first."""
    query = (
        select(polls, accounts.c.name.label("account"))
        .join(accounts, accounts.c.id == polls.c.account_id)
        .order_by(polls.c.id.desc())
        .limit(limit)
    )
    if account is not None:
        query = query.where(accounts.c.name == account)
    if failed_only:
        query = query.where(polls.c.status == "failed")
    with engine.connect() as conn:
        return [
            PollRow(r.id, r.account, r.started_at, r.finished_at, r.status, r.error_kind,
                    r.error_message, r.attempt)
            for r in conn.execute(query)
        ]


def responses_of(engine: Engine, poll_id: int) -> list[ResponseRow]:
    """The raw answers a poll received, byte for byte."""
    base = raw_responses.alias("base")
    query = (
        select(poll_responses.c.seq, raw_responses, base.c.body.label("base_body"))
        .join(raw_responses, raw_responses.c.id == poll_responses.c.response_id)
        .outerjoin(base, base.c.id == raw_responses.c.base_id)
        .where(poll_responses.c.poll_id == poll_id)
        .order_by(poll_responses.c.seq)
    )
    with engine.connect() as conn:
        return [
            ResponseRow(r.seq, r.endpoint, r.http_status, r.content_type,
                        answers.decode(r.encoding, bytes(r.body),
                                       None if r.base_body is None else bytes(r.base_body)))
            for r in conn.execute(query)
        ]


@dataclass(frozen=True, kw_only=True)
class DayRow(Amounts):
    day: date


def daily(
    engine: Engine, account: str, first: date, last: date, zone: ZoneInfo,
    asset: str | None = None,
) -> list[DayRow]:
    """End-of-day holdings of ``account`` for each day from ``first`` to ``last`` in ``zone``.

    One as-of lookup per day: each is an index seek per series, so a year costs 365 of them.
    """
    now = datetime.now(UTC)
    rows = []
    day = first
    while day <= last:
        end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
        at = min(end, now) - timedelta(milliseconds=1)
        for r in holdings_at(engine, at, [account]):
            if asset is None or r.asset == asset.upper():
                rows.append(DayRow(day=day, **_amounts(r)))
        day += timedelta(days=1)
    return rows


def assets_held_since(engine: Engine, since: datetime | None = None) -> list[str]:
    """Every asset with a non-zero holding in force at or after ``since`` (default: ever)."""
    query = (select(holding_series.c.asset).distinct()
             .join(holdings, holdings.c.series_id == holding_series.c.id))
    if since is not None:
        query = query.where(or_(holdings.c.valid_to.is_(None), holdings.c.valid_to > since))
    try:
        with engine.connect() as conn:
            return sorted(str(a) for a in conn.execute(query).scalars())
    except SQLAlchemyError as exc:
        raise StorageError(f"reading the assets held failed: {exc}") from None


def first_holding_at(engine: Engine) -> datetime | None:
    """When the stored history of holdings begins."""
    try:
        with engine.connect() as conn:
            found: datetime | None = conn.execute(select(func.min(holdings.c.valid_from))
                                                  ).scalar()
            return found
    except SQLAlchemyError as exc:
        raise StorageError(f"reading the history failed: {exc}") from None
