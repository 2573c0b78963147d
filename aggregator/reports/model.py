"""What a daily report says, independent of how it is rendered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from aggregator.valuation.rule import exact_total
from aggregator.valuation.value import DayTotal, ValueRow

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
    worth: Worth | None = None  # with [valuation] only

    @property
    def failing(self) -> list[AccountHealth]:
        return [h for h in self.health if h.failures]


# How a holding's value moved from the end of the day before to the end of the day:
# "priced" on both days (split into a price and a quantity effect), else shown apart.
WORTH_CHANGES = ("priced", "new", "gone", "unpriced")


@dataclass(frozen=True)
class WorthChange:
    """One holding (account and asset), valued at the end of the day and the day before.

    Amounts are None where the holding was not held (or held zero); rates None where it
    was not held or could not be priced.
    """

    account: str
    asset: str
    change: str  # one of WORTH_CHANGES
    amount_before: Decimal | None
    amount: Decimal | None
    rate_before: Decimal | None
    rate: Decimal | None
    # Only for "priced": amount_before * (rate - rate_before), (amount - amount_before) * rate.
    price_effect: Decimal | None
    quantity_effect: Decimal | None
    # What this holding adds to the change of the net worth: its known value at the end of
    # the day minus its known value the day before (an unknown value counts as not there).
    counted: Decimal


@dataclass(frozen=True)
class WorthDay:
    """The net worth at the end of one day of the report's zone, for the charts."""

    day: date
    value: Decimal  # the exact sum of the known values
    holdings: int  # non-zero holdings
    unpriced: int  # of them, without a value

    @property
    def priced(self) -> bool:
        """Whether the day has a value at all and every holding counted in it."""
        return self.holdings > 0 and self.unpriced == 0


@dataclass(frozen=True)
class Worth:
    """What the holdings were worth at the end of the day, in the reference currency."""

    currency: str
    at: datetime  # the instant valued (the day's end, or now when partial), UTC
    before_at: datetime  # the end of the day before, UTC
    rows: Sequence[ValueRow]  # every non-zero holding at ``at``, by account and asset
    previous: WorthDay  # the day before
    changes: Sequence[WorthChange]  # every holding of either day, by account and asset
    by_account: Sequence[DayTotal]
    by_asset: Sequence[DayTotal]
    history: Sequence[WorthDay]  # from the first day with holdings (at most 365 back) to this one
    chart_days: Sequence[int]  # the chart windows: 30, and 365 when the history is that long

    @property
    def value(self) -> Decimal:
        """The net worth: the exact sum of the known values."""
        return exact_total([r.value for r in self.rows])

    @property
    def unpriced(self) -> list[ValueRow]:
        return [r for r in self.rows if r.value is None]

    @property
    def change(self) -> Decimal:
        """The net worth minus the day before's (= the sum of every ``counted``)."""
        return exact_total([c.counted for c in self.changes])

    @property
    def priced(self) -> list[WorthChange]:
        return [c for c in self.changes if c.change == "priced"]

    @property
    def apart(self) -> list[WorthChange]:
        """New, gone, or unpriced on either day: outside the split."""
        return [c for c in self.changes if c.change != "priced"]

    @property
    def price_effect(self) -> Decimal:
        return exact_total([c.price_effect for c in self.priced])

    @property
    def quantity_effect(self) -> Decimal:
        return exact_total([c.quantity_effect for c in self.priced])
