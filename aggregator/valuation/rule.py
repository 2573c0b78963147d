"""The rule for a value (CONTRACT.md, "The rule for a value"), pure over a price book.

1. A = C: the rate is 1, and the only rate ever assumed.
2. Else the ``[[prices]]`` sources in order: the first with a usable observation of A/C
   (direct) or C/A (inverse) gives it: its latest usable direct one, else its latest
   usable inverse one. Usable at T: observed at or before T, and at most the max age of
   its kind old (inclusive).
3. Else the pivots in order (not A or C): the first P with a rate A→P and P→C, each by
   rule 2 from any source, gives their product, named "SOURCE+SOURCE".
4. Else unknown: None. Never 0, never 1: a stablecoin is priced by its market too.

An inverse rate is 1/price rounded half-even to 28 significant digits; a cross and a
value are exact products.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from aggregator.prices.model import Observation

DEFAULT_PIVOTS = ("USDT", "USD")
DEFAULT_MAX_AGE = timedelta(hours=1)
DEFAULT_DAILY_MAX_AGE = timedelta(days=4)

_INVERSE = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN,
                           traps=[decimal.DivisionByZero, decimal.InvalidOperation])
# Products of two exact decimals need at most the sum of their digits: never round.
_EXACT = decimal.Context(prec=400, traps=[decimal.Inexact, decimal.InvalidOperation])


@dataclass(frozen=True)
class ValuationSettings:
    """``[valuation]`` and the order of the ``[[prices]]`` sources."""

    currency: str
    sources: tuple[str, ...]  # [[prices]] names, in order of preference
    pivots: tuple[str, ...] = DEFAULT_PIVOTS
    max_age: timedelta = DEFAULT_MAX_AGE
    daily_max_age: timedelta = DEFAULT_DAILY_MAX_AGE


class PriceBook(Protocol):
    def latest(self, source: str, base: str, quote: str, at: datetime,
               live_since: datetime, daily_since: datetime) -> Observation | None:
        """The newest observation of base/quote from ``source`` usable at ``at``.

        Usable: observed in [live_since, at] for a live one, [daily_since, at] for a
        daily one; on a tie of times, the one stored last.
        """


@dataclass(frozen=True)
class Rate:
    """1 A = ``price`` C, and what it rests on."""

    price: Decimal
    source: str | None  # the [[prices]] name, "A+B" for a cross, None for A = C
    observed_at: datetime | None  # the oldest observation used
    used: tuple[Observation, ...] = field(default=(), compare=False)


ONE = Rate(Decimal(1), None, None)


def inverse(price: Decimal) -> Decimal:
    return _INVERSE.divide(Decimal(1), price)


def multiply(a: Decimal, b: Decimal) -> Decimal:
    return _EXACT.multiply(a, b)


class Valuer:
    """Rates for one reference currency from one price book, remembered per instant."""

    def __init__(self, book: PriceBook, settings: ValuationSettings) -> None:
        self.book = book
        self.settings = settings
        self._memo: dict[tuple[str, str, datetime], Rate | None] = {}
        # Rule 2 alone, per pair and instant: a pivot's legs serve every asset crossed.
        self._legs: dict[tuple[str, str, datetime], Rate | None] = {}

    def rate(self, asset: str, at: datetime, currency: str | None = None) -> Rate | None:
        """The rate of ``asset`` in ``currency`` (default: the reference one) at ``at``."""
        quote = currency or self.settings.currency
        if asset == quote:
            return ONE
        key = (asset, quote, at)
        if key not in self._memo:
            self._memo[key] = self._direct_or_inverse(asset, quote, at) \
                or self._cross(asset, quote, at)
        return self._memo[key]

    def _direct_or_inverse(self, base: str, quote: str, at: datetime) -> Rate | None:
        key = (base, quote, at)
        if key not in self._legs:
            self._legs[key] = self._first_source(base, quote, at)
        return self._legs[key]

    def _first_source(self, base: str, quote: str, at: datetime) -> Rate | None:
        live_since = at - self.settings.max_age
        daily_since = at - self.settings.daily_max_age
        for source in self.settings.sources:
            direct = self.book.latest(source, base, quote, at, live_since, daily_since)
            if direct is not None:
                return Rate(direct.price, source, direct.observed_at, (direct,))
            flipped = self.book.latest(source, quote, base, at, live_since, daily_since)
            if flipped is not None:
                return Rate(inverse(flipped.price), source, flipped.observed_at, (flipped,))
        return None

    def _cross(self, base: str, quote: str, at: datetime) -> Rate | None:
        for pivot in self.settings.pivots:
            if pivot in (base, quote):
                continue
            first = self._direct_or_inverse(base, pivot, at)
            if first is None:
                continue
            second = self._direct_or_inverse(pivot, quote, at)
            if second is None:
                continue
            assert first.observed_at is not None and second.observed_at is not None
            return Rate(multiply(first.price, second.price), f"{first.source}+{second.source}",
                        min(first.observed_at, second.observed_at), first.used + second.used)
        return None


@dataclass(frozen=True)
class Valued:
    """One holding's amount with its rate and value; price and value None when unknown."""

    amount: Decimal
    rate: Rate | None

    @property
    def value(self) -> Decimal | None:
        return None if self.rate is None else multiply(self.amount, self.rate.price)


def exact_total(values: Sequence[Decimal | None]) -> Decimal:
    """The exact sum of the known values."""
    total = Decimal(0)
    for value in values:
        if value is not None:
            total = _EXACT.add(total, value)
    return total
