"""What a price source observes: the price of one asset in another at an instant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from aggregator.model import RawResponse


class PriceKind(StrEnum):
    LIVE = "live"  # a price at an instant, usable for [valuation] max_age after it
    DAILY = "daily"  # a close, usable for daily_max_age after it


@dataclass(frozen=True, slots=True)
class Observation:
    """``1 base = price quote``, as a source said it, at ``observed_at`` (aware, UTC).

    A daily close of trading date D is observed at the end of D (D+1 00:00:00 UTC),
    unless the source gives the point its own timestamp (CoinGecko).
    """

    base: str  # upper-case symbol
    quote: str
    kind: PriceKind
    observed_at: datetime
    price: Decimal  # > 0, exact as written in the answer


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """Everything one price fetch produced, written in one transaction, like a poll."""

    source: str  # the [[prices]] name
    kind: PriceKind  # live fetch or daily backfill
    started_at: datetime
    finished_at: datetime
    observations: Sequence[Observation] | None  # None when the fetch failed
    responses: Sequence[RawResponse] = ()
    error_kind: str | None = None
    error_message: str | None = None
    attempts: int = 1

    @property
    def status(self) -> str:
        return "ok" if self.error_kind is None else "failed"
