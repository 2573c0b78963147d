"""Fetch prices and store them: the step `prices fetch`, `prices backfill` and `run` share.

Shares the poll service's HTTP client, request slots, rate limits and writer, so a price
fetch has the same isolation, bounds and spool as a balance poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from aggregator.polling.service import PollService
from aggregator.prices.base import PriceConfig, PriceQuery
from aggregator.prices.fetch import Feed, fetch_until_deadline, prepare_feed
from aggregator.prices.model import FetchRecord, PriceKind
from aggregator.storage.writer import Stored
from aggregator.valuation.rule import ValuationSettings

log = logging.getLogger("aggregator.prices")


@dataclass(frozen=True)
class FetchOutcome:
    feed: str
    records: list[FetchRecord]
    stored: Stored
    seconds: float

    @property
    def final(self) -> FetchRecord:
        return self.records[-1]

    @property
    def ok(self) -> bool:
        return self.final.error_kind is None and self.stored.kept


class PriceService:
    def __init__(self, configs: Sequence[PriceConfig], valuation: ValuationSettings,
                 polls: PollService) -> None:
        self.valuation = valuation
        self.polls = polls
        self.feeds = {c.name: prepare_feed(c, polls.limits) for c in configs}

    def query(self, assets: Sequence[str] = ()) -> PriceQuery:
        """Prices of ``assets`` and the pivots, in the reference currency and the pivots."""
        v = self.valuation
        quotes = tuple(dict.fromkeys((v.currency, *v.pivots)))
        return PriceQuery(assets=tuple(dict.fromkeys((*assets, *v.pivots))), quotes=quotes)

    async def fetch(self, feed: Feed, kind: PriceKind = PriceKind.LIVE,
                    assets: Sequence[str] = (), days: tuple[date, date] | None = None,
                    deadline: float | None = None) -> FetchOutcome:
        began = time.monotonic()
        client, slots = self.polls.http()
        records = await fetch_until_deadline(
            client, feed, kind, self.query(assets), deadline or self.polls.settings.deadline,
            days, slots, self.polls.settings.max_answer_bytes)
        for record in records:
            stored = await self.polls.writer.store(record)
        outcome = FetchOutcome(feed.name, records, stored, time.monotonic() - began)
        final = outcome.final
        level = (logging.INFO if final.error_kind is None else logging.WARNING) \
            if stored.kept else logging.ERROR
        log.log(level, "%s", describe(outcome))
        return outcome

    async def fetch_all(self, names: Sequence[str] = (), kind: PriceKind = PriceKind.LIVE,
                        assets: Sequence[str] = (), days: tuple[date, date] | None = None
                        ) -> list[FetchOutcome]:
        chosen = [f for f in self.feeds.values() if not names or f.name in names]
        if kind == PriceKind.DAILY:
            chosen = [f for f in chosen if f.source.parse_history is not None
                      or f.source.read_local is not None]
        return list(await asyncio.gather(*(self.fetch(f, kind, assets, days)
                                            for f in chosen)))


def describe(outcome: FetchOutcome) -> str:
    """One line per fetch, like a poll's."""
    final, stored = outcome.final, outcome.stored
    what = "prices" if final.kind == PriceKind.LIVE else "daily closes"
    tries = f", {len(outcome.records)} attempts" if len(outcome.records) > 1 else ""
    kept = "" if stored.where == "database" else (
        ", spooled" if stored.where == "spool" else
        ", held in memory" if stored.kept else ", NOT STORED")
    if final.error_kind is None:
        return (f"prices {outcome.feed}: ok, {len(final.observations or ())} {what}, "
                f"{outcome.seconds:.2f}s{tries}{kept}")
    return (f"prices {outcome.feed}: failed [{final.error_kind}] {final.error_message}, "
            f"{outcome.seconds:.2f}s{tries}{kept}")
