"""Backfill: daily closes of past days for what was held, then those days valued again."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine

from aggregator.errors import StorageError
from aggregator.prices.model import PriceKind
from aggregator.prices.service import FetchOutcome, PriceService
from aggregator.storage import queries
from aggregator.valuation.daily import store_days

log = logging.getLogger("aggregator.prices")


def overlap(service: PriceService) -> timedelta:
    """Days before the first one whose closes may still value it (a weekend, a holiday)."""
    return timedelta(days=math.ceil(service.valuation.daily_max_age / timedelta(days=1)))


async def backfill(service: PriceService, engine: Engine, since: date | None = None,
                   until: date | None = None) -> list[FetchOutcome]:
    """Closes of every asset held on or after ``since`` (default: the history's first day)
    and the pivots, up to ``until`` (default: yesterday: today has no close yet)."""
    last = until or datetime.now(UTC).date() - timedelta(days=1)
    # The database calls run in threads: the daemon's event loop never waits on them.
    if since is None:
        began = await asyncio.to_thread(queries.first_holding_at, engine)
        if began is None:
            return []
        since = began.date()
    if since > last:
        return []
    held = await asyncio.to_thread(queries.assets_held_since, engine,
                                   datetime.combine(since, time(0), tzinfo=UTC))
    # A few days before too: a provider corrects recent closes, and Friday's close values
    # the weekend.
    first = since - overlap(service)
    outcomes = await service.fetch_all(kind=PriceKind.DAILY, assets=held, days=(first, last))
    try:
        days = [since + timedelta(days=i) for i in range((last - since).days + 1)]
        stored = await asyncio.to_thread(store_days, engine, service.valuation, days)
        log.info("valued %d days from %s to %s", stored, since, last)
    except StorageError as exc:
        log.warning("valuing the backfilled days waits for the database: %s", exc)
    return outcomes
