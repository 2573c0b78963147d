"""Build the report of one day from the stored history."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from aggregator.amounts import exact_sum, subtract
from aggregator.reports.model import (
    AccountHealth,
    AssetTotal,
    DayPoint,
    HoldingLine,
    Report,
)
from aggregator.sources.registry import SOURCES
from aggregator.storage import queries
from aggregator.storage.tables import accounts, polls

HISTORY_DAYS = 30
_INSTANT = timedelta(milliseconds=1)  # times are stored to the millisecond


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The day's first instant and the next day's, in UTC (DST days are 23 or 25 h)."""
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def build_report(engine: Engine, day: date, zone: ZoneInfo,
                 now: datetime | None = None) -> Report:
    now = now or datetime.now(UTC)
    start, end = day_bounds(day, zone)
    partial = end > now
    if partial:
        end = now
    held = queries.holdings_at(engine, end - _INSTANT)
    before = {(r.account, r.asset): r for r in queries.holdings_at(engine, start - _INSTANT)}
    lines = [_line(row, before.get((row.account, row.asset))) for row in held]
    held_keys = {(r.account, r.asset) for r in held}
    gone = [_gone(row) for key, row in sorted(before.items()) if key not in held_keys]
    return Report(
        day=day, timezone=zone.key, start=start, end=end, partial=partial, generated_at=now,
        lines=lines, gone=gone, totals=_totals(lines, before.values()),
        health=_health(engine, start, end), history=_history(engine, day, zone, now),
    )


def _line(row: queries.HoldingRow, previous: queries.HoldingRow | None) -> HoldingLine:
    if previous is None:
        change, delta = "new", row.total
    else:
        delta = subtract(row.total, previous.total)
        change = "up" if delta > 0 else "down" if delta < 0 else "same"
    # Which details are a valuation or a cost basis is the source's to say; a source no
    # longer registered has neither.
    source = SOURCES.get(row.source)
    valuation = {
        currency: Decimal(str(value))
        for key, currency in (source.valuation_details if source else {}).items()
        if (value := row.details.get(key)) is not None
    }
    cost_key = source.cost_basis_detail if source else None
    cost = None if cost_key is None else row.details.get(cost_key)
    return HoldingLine(
        account=row.account, source=row.source, asset=row.asset, kind=row.kind,
        total=row.total, available=row.available, locked=row.locked,
        previous_total=None if previous is None else previous.total,
        change=change, delta=delta, valuation=valuation,
        valuation_at=row.valid_from if valuation else None,
        cost_basis=None if cost is None else Decimal(str(cost)),
    )


def _gone(previous: queries.HoldingRow) -> HoldingLine:
    return HoldingLine(
        account=previous.account, source=previous.source, asset=previous.asset,
        kind=previous.kind, total=Decimal(0), available=None, locked=None,
        previous_total=previous.total, change="gone", delta=-previous.total,
    )


def _totals(lines: Sequence[HoldingLine], before: Iterable[queries.HoldingRow]
            ) -> list[AssetTotal]:
    now: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    then: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    for line in lines:
        now[(line.asset, line.kind)].append(line.total)
    for row in before:
        then[(row.asset, row.kind)].append(row.total)
    return [
        AssetTotal(asset, kind, exact_sum(now[(asset, kind)]),
                   exact_sum(then.get((asset, kind), [])), len(now[(asset, kind)]))
        for asset, kind in sorted(now)
    ]


def _health(engine: Engine, start: datetime, end: datetime) -> list[AccountHealth]:
    with engine.connect() as conn:
        first_poll = (select(func.min(polls.c.finished_at))
                      .where(polls.c.account_id == accounts.c.id).scalar_subquery())
        names = conn.execute(
            select(accounts.c.id, accounts.c.name, accounts.c.source,
                   first_poll.label("first_poll")).order_by(accounts.c.name)
        ).all()
        rows = conn.execute(
            select(polls.c.account_id, polls.c.finished_at, polls.c.status, polls.c.error_kind,
                   polls.c.error_message)
            .where(polls.c.finished_at >= start, polls.c.finished_at < end)
            .order_by(polls.c.finished_at)
        ).all()
    by_account: dict[int, list[tuple[datetime, str, str | None, str | None]]] = defaultdict(list)
    for row in rows:
        by_account[row.account_id].append(
            (row.finished_at, row.status, row.error_kind, row.error_message))
    health = []
    for account in names:
        day_polls = by_account.get(account.id, [])
        if not day_polls and _last_success(engine, account.id, start) is None:
            continue  # not polled yet by then
        failures = Counter(kind or "unknown" for _, status, kind, _ in day_polls
                           if status != "ok")
        last_error = next((message for _, status, _, message in reversed(day_polls)
                           if status != "ok"), None)
        successes = [at for at, status, _, _ in day_polls if status == "ok"]
        last_success = successes[-1] if successes else _last_success(engine, account.id, start)
        # An account first polled during the day was not failing before that.
        begin = max(start, account.first_poll) if account.first_poll else start
        edges = [begin, *successes, end]
        gap = max((b - a for a, b in itertools.pairwise(edges)), default=None)
        health.append(AccountHealth(account.name, account.source, len(day_polls),
                                    dict(failures), last_error, gap, last_success))
    return health


def _last_success(engine: Engine, account_id: int, before: datetime) -> datetime | None:
    with engine.connect() as conn:
        found: datetime | None = conn.execute(
            select(polls.c.finished_at)
            .where(polls.c.account_id == account_id, polls.c.status == "ok",
                   polls.c.finished_at < before)
            .order_by(polls.c.finished_at.desc()).limit(1)
        ).scalar()
    return found


def _history(engine: Engine, day: date, zone: ZoneInfo, now: datetime) -> list[DayPoint]:
    points = []
    for back in range(HISTORY_DAYS - 1, -1, -1):
        each = day - timedelta(days=back)
        _, end = day_bounds(each, zone)
        at = min(end, now) - _INSTANT
        points += [DayPoint(each, r.account, r.asset, r.total)
                   for r in queries.holdings_at(engine, at, observed=False)]
    return points
