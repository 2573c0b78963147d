"""The valued report: what the holdings were worth at the end of the report's day.

The day is the report's, in its zone (unlike `networth`'s UTC days): holdings as of the
instant it ends and rates at that instant, by the value rule. The change against the
end of the day before splits, over the holdings priced on both days, into

    price effect     sum of amount(D-1) * (rate(D) - rate(D-1))
    quantity effect  sum of (amount(D) - amount(D-1)) * rate(D)

which add up to those holdings' change in value exactly; holdings new, gone or unpriced
on either day are kept apart, each with what it adds to the net worth's change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from aggregator.prices.model import Observation, PriceKind
from aggregator.reports.build import day_bounds
from aggregator.reports.model import Report, Worth, WorthChange, WorthDay
from aggregator.storage import queries
from aggregator.storage.price_queries import SqlPriceBook
from aggregator.valuation.rule import (
    PriceBook,
    ValuationSettings,
    Valuer,
    exact_total,
    multiply,
)
from aggregator.valuation.value import ONE_MS, ValueRow, totals, value_rows

SHORT_CHART = 30
LONG_CHART = 365
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class NewestFirst:
    """A price book that first asks each pair for its newest observation by ``until``.

    Valuing a year of day ends asks the rule's every pair once a day, and most pairs it
    tries (inverses, pivots, assets no source quotes) have no observation at all, or
    none recent enough: those are answered from the newest one, without a query. The
    answer is the inner book's in every case.
    """

    def __init__(self, book: PriceBook, until: datetime) -> None:
        self.book = book
        self.until = until
        self._newest: dict[tuple[str, str, str], Observation | None] = {}

    def latest(self, source: str, base: str, quote: str, at: datetime,
               live_since: datetime, daily_since: datetime) -> Observation | None:
        key = (source, base, quote)
        if key not in self._newest:
            self._newest[key] = self.book.latest(source, base, quote, self.until, _EPOCH,
                                                 _EPOCH)
        newest = self._newest[key]
        if at > self.until:
            return self.book.latest(source, base, quote, at, live_since, daily_since)
        if newest is None or newest.observed_at < min(live_since, daily_since):
            return None  # nothing by ``until`` is recent enough, so nothing by ``at``
        if newest.observed_at <= at and newest.observed_at >= (
                live_since if newest.kind == PriceKind.LIVE else daily_since):
            return newest  # the newest of all is usable: no other can be newer
        return self.book.latest(source, base, quote, at, live_since, daily_since)


def with_worth(engine: Engine, report: Report, settings: ValuationSettings) -> Report:
    """``report`` with its valuation, in ``settings.currency``."""
    return dataclasses.replace(report, worth=build_worth(engine, report, settings))


def build_worth(engine: Engine, report: Report, settings: ValuationSettings) -> Worth:
    """Value the report's day and, for the charts, each day back to 30 or 365 days."""
    zone = ZoneInfo(report.timezone)
    day, currency = report.day, settings.currency
    began = queries.first_holding_at(engine)
    first = began.astimezone(zone).date() if began is not None else day
    span = LONG_CHART if first <= day - timedelta(days=LONG_CHART - 1) else SHORT_CHART
    days = [day - timedelta(days=n) for n in range(span - 1, -1, -1)]
    book = SqlPriceBook.open(engine)
    try:
        # One valuer for the whole report: the day before's rates serve both the change
        # and the charts.
        valuer = Valuer(NewestFirst(book, report.end), settings)
        rows: dict[date, list[ValueRow]] = {}
        for each in {*days, day - timedelta(days=1)}:
            if each < first:
                rows[each] = []  # before the history began: nothing held, no query
                continue
            at = _instant(each, report)
            held = queries.holdings_at(engine, at - ONE_MS, observed=False)
            rows[each] = value_rows(held, valuer, at, currency)
    finally:
        book.close()
    now, before = rows[day], rows[day - timedelta(days=1)]
    return Worth(
        currency=currency, at=report.end, before_at=_instant(day - timedelta(days=1), report),
        rows=now, previous=_day(day - timedelta(days=1), before), changes=changes(before, now),
        by_account=totals(day, currency, now, "account"),
        by_asset=totals(day, currency, now, "asset"),
        history=[_day(each, rows[each]) for each in days if each >= first],
        chart_days=[SHORT_CHART] + ([LONG_CHART] if span == LONG_CHART else []),
    )


def _instant(day: date, report: Report) -> datetime:
    """The instant a day of the report's zone is valued at: its end, or now if sooner."""
    if day == report.day:
        return report.end
    return min(day_bounds(day, ZoneInfo(report.timezone))[1], report.generated_at)


def _day(day: date, rows: Sequence[ValueRow]) -> WorthDay:
    return WorthDay(day, exact_total([r.value for r in rows]), len(rows),
                    sum(1 for r in rows if r.value is None))


def _minus(a: Decimal, b: Decimal) -> Decimal:
    # copy_negate is exact; unary minus would round to the context's 28 digits.
    return exact_total([a, b.copy_negate()])


def changes(before: Sequence[ValueRow], now: Sequence[ValueRow]) -> list[WorthChange]:
    """Every holding of either day, by account and asset, with what moved its value."""
    then = {(r.account, r.asset): r for r in before}
    later = {(r.account, r.asset): r for r in now}
    out = []
    for key in sorted(then.keys() | later.keys()):
        old, new = then.get(key), later.get(key)
        counted = _minus(Decimal(0) if new is None or new.value is None else new.value,
                         Decimal(0) if old is None or old.value is None else old.value)
        price_effect = quantity_effect = None
        if old is None:
            change = "new"
        elif new is None:
            change = "gone"
        elif old.price is None or new.price is None:
            change = "unpriced"
        else:
            change = "priced"
            price_effect = multiply(old.amount, _minus(new.price, old.price))
            quantity_effect = multiply(_minus(new.amount, old.amount), new.price)
        out.append(WorthChange(
            account=key[0], asset=key[1], change=change,
            amount_before=None if old is None else old.amount,
            amount=None if new is None else new.amount,
            rate_before=None if old is None else old.price,
            rate=None if new is None else new.price,
            price_effect=price_effect, quantity_effect=quantity_effect, counted=counted))
    return out
