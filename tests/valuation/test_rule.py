"""The value rule over a hand-made price book; every expected figure written out here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from aggregator.prices.model import Observation, PriceKind
from aggregator.valuation.rule import ONE, ValuationSettings, Valued, Valuer

T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LIVE, DAILY = PriceKind.LIVE, PriceKind.DAILY


class Book:
    """Observations per source; ``latest`` as the SQL book answers it."""

    def __init__(self, *points: tuple[str, str, str, PriceKind, datetime, str]) -> None:
        self.points = [(s, Observation(b, q, k, at, Decimal(p))) for s, b, q, k, at, p in points]

    def latest(self, source: str, base: str, quote: str, at: datetime,
               live_since: datetime, daily_since: datetime) -> Observation | None:
        usable = [o for s, o in self.points
                  if s == source and o.base == base and o.quote == quote and o.observed_at <= at
                  and o.observed_at >= (live_since if o.kind == LIVE else daily_since)]
        return max(usable, key=lambda o: (o.observed_at, o.kind == LIVE), default=None)


def valuer(book: Book, sources: tuple[str, ...] = ("a", "b"), **options: object) -> Valuer:
    return Valuer(book, ValuationSettings(currency="TWD", sources=sources, **options))  # type: ignore[arg-type]


def test_the_same_currency_is_the_only_rate_assumed() -> None:
    assert valuer(Book()).rate("TWD", T) == ONE
    assert valuer(Book()).rate("USDT", T) is None  # a stablecoin is not 1 of anything


def test_direct_then_inverse_within_one_source() -> None:
    book = Book(("a", "BTC", "TWD", LIVE, T - timedelta(minutes=5), "3000000"),
                ("a", "TWD", "BTC", LIVE, T - timedelta(minutes=1), "0.0000003"))
    rate = valuer(book).rate("BTC", T)
    assert rate is not None and rate.price == Decimal("3000000") and rate.source == "a"
    only_inverse = Book(("a", "TWD", "ETH", LIVE, T, "0.000003"))
    rate = valuer(only_inverse).rate("ETH", T)
    # 1 / 0.000003 = 333333.333..., half-even to 28 significant digits
    assert rate is not None and rate.price == Decimal("333333.3333333333333333333333")


def test_the_first_source_with_any_usable_rate_wins() -> None:
    book = Book(("b", "BTC", "TWD", LIVE, T, "2"), ("a", "TWD", "BTC", LIVE, T, "4"))
    rate = valuer(book).rate("BTC", T)
    assert rate is not None and (rate.price, rate.source) == (Decimal("0.25"), "a")
    rate = valuer(book, sources=("b", "a")).rate("BTC", T)
    assert rate is not None and (rate.price, rate.source) == (Decimal(2), "b")


def test_ages_are_inclusive_and_by_kind() -> None:
    hour, days4 = timedelta(hours=1), timedelta(days=4)
    edge = Book(("a", "BTC", "TWD", LIVE, T - hour, "5"))
    assert valuer(edge).rate("BTC", T) is not None  # exactly max_age old: usable
    assert valuer(edge).rate("BTC", T + timedelta(milliseconds=1)) is None  # stale
    close = Book(("a", "BTC", "TWD", DAILY, T - days4, "6"))
    assert valuer(close).rate("BTC", T) is not None
    assert valuer(close).rate("BTC", T + timedelta(seconds=1)) is None
    assert valuer(close, max_age=timedelta(days=9)).rate("BTC", T + timedelta(days=1)) is None


def test_no_look_ahead() -> None:
    book = Book(("a", "BTC", "TWD", LIVE, T, "10"), ("a", "BTC", "TWD", LIVE, T + timedelta(
        minutes=10), "11"))
    assert valuer(book).rate("BTC", T - timedelta(seconds=1)) is None  # before the first
    between = valuer(book).rate("BTC", T + timedelta(minutes=5))
    assert between is not None and between.price == Decimal(10)


def test_a_cross_through_the_first_pivot_that_has_both_legs() -> None:
    book = Book(("a", "ZPR", "USD", LIVE, T - timedelta(minutes=3), "0.0123"),
                ("b", "USD", "TWD", DAILY, T - timedelta(days=1), "32.5"),
                ("a", "ZPR", "USDT", LIVE, T, "0.5"))  # USDT has no leg to TWD
    rate = valuer(book).rate("ZPR", T)
    assert rate is not None
    assert rate.price == Decimal("0.39975")  # 0.0123 x 32.5, exactly
    assert rate.source == "a+b"
    assert rate.observed_at == T - timedelta(days=1)  # the oldest observation used
    assert Valued(Decimal("1000"), rate).value == Decimal("399.75000")


def test_a_cross_leg_may_be_inverse_and_pivots_keep_their_order() -> None:
    book = Book(("a", "USDT", "ETH", LIVE, T, "0.0005"),  # ETH->USDT by inverse: 2000
                ("b", "USDT", "TWD", LIVE, T, "31"),
                ("a", "ETH", "USD", LIVE, T, "2100"), ("b", "USD", "TWD", LIVE, T, "32"))
    rate = valuer(book).rate("ETH", T)
    assert rate is not None and rate.price == Decimal(2000 * 31) and rate.source == "a+b"
    rate = valuer(book, pivots=("USD", "USDT")).rate("ETH", T)
    assert rate is not None and rate.price == Decimal(2100 * 32)


def test_unknown_is_none_never_zero() -> None:
    book = Book(("a", "BTC", "EUR", LIVE, T, "90000"))
    assert valuer(book).rate("BTC", T) is None
    assert Valued(Decimal(3), None).value is None


@pytest.mark.parametrize("currency", ["USDT", "BTC"])
def test_a_pivot_equal_to_the_currency_is_skipped(currency: str) -> None:
    book = Book(("a", "ETH", "USDT", LIVE, T, "2000"), ("a", "USDT", "BTC", LIVE, T, "0.00001"))
    rate = Valuer(book, ValuationSettings(currency=currency, sources=("a",))).rate("ETH", T)
    expected = Decimal(2000) if currency == "USDT" else Decimal("0.02000")
    assert rate is not None and rate.price == expected
