"""What a daily report says, independent of how it is rendered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

# How a holding moved from the end of the day before to the end of the day.
CHANGES = ("new", "gone", "up", "down", "same")


@dataclass(frozen=True)
class HoldingLine:
    """One account's holding of one asset at the end of the day (or gone during it)."""

    account: str
    source: str
    asset: str
    kind: str
    total: Decimal  # 0 for a gone holding
    available: Decimal | None
    locked: Decimal | None
    previous_total: Decimal | None  # at the end of the day before; None when new
    change: str  # one of CHANGES
    delta: Decimal  # total - previous_total (the whole total when new)
    # The exchange's own valuation of this line (Bitz: btc/usd/cny), as of valuation_at;
    # never mixed with amounts from other sources.
    valuation: Mapping[str, Decimal] = field(default_factory=dict)
    valuation_at: datetime | None = None
    cost_basis: Decimal | None = None  # PiTrade's average purchase price per unit


@dataclass(frozen=True)
class AssetTotal:
    """One asset summed over the accounts holding it at the end of the day."""

    asset: str
    kind: str
    total: Decimal
    previous_total: Decimal  # 0 when nobody held it the day before
    accounts: int


@dataclass(frozen=True)
class AccountHealth:
    """How polling went for one account during the day."""

    account: str
    source: str
    polls: int
    failures: Mapping[str, int]  # error kind -> count
    last_error: str | None  # the last failure's message
    longest_gap: timedelta | None  # longest stretch without a successful poll
    last_success: datetime | None  # the last successful poll by the end of the day


@dataclass(frozen=True)
class DayPoint:
    """End-of-day total of one account's asset, for the 30-day charts."""

    day: date
    account: str
    asset: str
    total: Decimal


@dataclass(frozen=True)
class Report:
    day: date
    timezone: str  # IANA name; days run midnight to midnight there
    start: datetime  # the day's first instant, UTC
    end: datetime  # the day's end (or now, when partial), UTC
    partial: bool  # the day is not over yet
    generated_at: datetime
    lines: Sequence[HoldingLine]  # held at the end of the day
    gone: Sequence[HoldingLine]  # held the day before, not at the end of this one
    totals: Sequence[AssetTotal]
    health: Sequence[AccountHealth]
    history: Sequence[DayPoint]  # the last 30 days up to this one

    @property
    def failing(self) -> list[AccountHealth]:
        return [h for h in self.health if h.failures]
