"""Holdings valued by the rule: at an instant (``value``) and at the end of days."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from aggregator.storage import queries
from aggregator.storage.price_queries import SqlPriceBook
from aggregator.valuation.rule import ValuationSettings, Valued, Valuer, exact_total

ONE_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class ValueRow:
    """One non-zero holding valued in ``currency``; price and value None when unknown."""

    account: str
    source: str
    asset: str
    kind: str
    amount: Decimal
    currency: str
    price: Decimal | None
    value: Decimal | None
    price_source: str | None
    price_observed_at: datetime | None


@dataclass(frozen=True)
class DayTotal:
    """The net worth at the end of ``day``: the exact sum of the known values."""

    day: date
    currency: str
    value: Decimal
    holdings: int
    unpriced: int
    group: str | None = None  # the account or asset with --by


def end_of_day(day: date) -> datetime:
    """The instant that ends a UTC day: D+1 00:00:00 UTC."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def value_rows(holdings: Iterable[queries.Amounts], valuer: Valuer, at: datetime,
               currency: str) -> list[ValueRow]:
    """Each non-zero holding with its rate at ``at``; zero amounts are left out."""
    rows = []
    for holding in holdings:
        if holding.total == 0:
            continue
        valued = Valued(holding.total, valuer.rate(holding.asset, at, currency))
        rate = valued.rate
        rows.append(ValueRow(
            account=holding.account, source=holding.source, asset=holding.asset,
            kind=holding.kind, amount=holding.total, currency=currency,
            price=None if rate is None else rate.price, value=valued.value,
            price_source=None if rate is None else rate.source,
            price_observed_at=None if rate is None else rate.observed_at))
    return rows


def value_at(engine: Engine, settings: ValuationSettings, at: datetime | None = None,
             accounts: Sequence[str] = (), currency: str | None = None) -> list[ValueRow]:
    """Every holding as of ``at`` (default now) valued at that instant."""
    moment = at or datetime.now(UTC)
    holdings = queries.holdings_at(engine, at=moment, account_names=accounts, observed=False)
    book = SqlPriceBook.open(engine)
    try:
        return value_rows(holdings, Valuer(book, settings), moment,
                          currency or settings.currency)
    finally:
        book.close()


def day_rows(engine: Engine, valuer: Valuer, day: date, currency: str) -> list[ValueRow]:
    """The holdings ``holdings_daily`` has for ``day``, valued at the end of the day."""
    end = end_of_day(day)
    # In force just before midnight: began before it and did not end before it.
    holdings = queries.holdings_at(engine, at=end - ONE_MS, observed=False)
    return value_rows(holdings, valuer, end, currency)


def totals(day: date, currency: str, rows: Sequence[ValueRow], by: str | None = None
           ) -> list[DayTotal]:
    """The day's net worth, or one per account or asset with ``by``."""
    groups: dict[str | None, list[ValueRow]] = {}
    for row in rows:
        key = None if by is None else getattr(row, by)
        groups.setdefault(key, []).append(row)
    return [DayTotal(day, currency, exact_total([r.value for r in members]), len(members),
                     sum(1 for r in members if r.value is None), key)
            for key, members in sorted(groups.items(), key=lambda kv: kv[0] or "")]


def networth(engine: Engine, settings: ValuationSettings, first: date, last: date,
             by: str | None = None, currency: str | None = None) -> list[DayTotal]:
    """The value at the end of each day from ``first`` to ``last``; no row for a day
    without holdings."""
    chosen = currency or settings.currency
    book = SqlPriceBook.open(engine)
    try:
        valuer = Valuer(book, settings)
        out: list[DayTotal] = []
        day = first
        while day <= last:
            rows = day_rows(engine, valuer, day, chosen)
            if rows:
                out.extend(totals(day, chosen, rows, by))
            day += timedelta(days=1)
        return out
    finally:
        book.close()
