"""valuations_daily and networth_daily: end-of-day values, stored for SQL and the report.

Derived data, so a day is simply computed again whenever something it rests on may have
changed (a night passed, a backfill brought closes, a report was asked for): its rows
for the reference currency are replaced in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StorageError
from aggregator.storage.database import WRITE, one_line
from aggregator.storage.price_queries import SqlPriceBook
from aggregator.storage.tables import accounts, networth, valuations
from aggregator.valuation.rule import ValuationSettings, Valuer
from aggregator.valuation.value import day_rows, totals


def store_days(engine: Engine, settings: ValuationSettings, days: Iterable[date]) -> int:
    """Value each of ``days`` at its end and store it; the number of days stored."""
    currency = settings.currency
    count = 0
    try:
        book = SqlPriceBook.open(engine)
        try:
            valuer = Valuer(book, settings)
            for day in sorted(set(days)):
                rows = day_rows(engine, valuer, day, currency)
                with engine.execution_options(**WRITE).begin() as conn:
                    ids = {name: id_ for name, id_ in conn.execute(
                        select(accounts.c.name, accounts.c.id))}
                    conn.execute(delete(valuations).where(valuations.c.day == day,
                                                          valuations.c.currency == currency))
                    conn.execute(delete(networth).where(networth.c.day == day,
                                                        networth.c.currency == currency))
                    if not rows:
                        continue
                    conn.execute(insert(valuations), [
                        {"day": day, "account_id": ids[r.account], "asset": r.asset,
                         "currency": currency, "kind": r.kind, "amount": r.amount,
                         "price": r.price, "value": r.value, "price_source": r.price_source,
                         "price_observed_at": r.price_observed_at} for r in rows])
                    (total,) = totals(day, currency, rows)
                    conn.execute(insert(networth), {
                        "day": day, "currency": currency, "value": total.value,
                        "holdings": total.holdings, "unpriced": total.unpriced})
                count += 1
        finally:
            book.close()
    except SQLAlchemyError as exc:
        raise StorageError(f"storing daily valuations failed: {one_line(exc)}") from None
    return count
