"""What the price parsers share: prices, instants and days, pairs, and the provider's reason.

Every number goes through ``aggregator.amounts.parse_amount`` (the one grammar) and every
instant through the bounded converters here, so that no answer can make a parser raise
anything but a ``SourceError``.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from aggregator import errors
from aggregator.amounts import loads_exact, parse_amount
from aggregator.model import RawResponse
from aggregator.prices.model import Observation, PriceKind
from aggregator.sources.base import check_status, expect, reason

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The last instant a datetime holds; a larger timestamp is a schema error, not an overflow.
MAX_UNIX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
ONE_DAY = timedelta(days=1)
# Enough digits for any price of the grammar: the default context would round at 28.
_EXACT = decimal.Context(prec=200)


def price(value: Any, where: str) -> Decimal | None:
    """A price as the answer wrote it; None where the answer has none (null, or 0: a pair
    that never traded). A negative price, or anything outside the grammar, is a schema error.
    """
    if value is None:
        return None
    amount = parse_amount(value, where)
    if amount < 0:
        raise errors.SchemaMismatch(f"{where}: a price cannot be negative")
    return amount if amount > 0 else None


def required_price(value: Any, where: str) -> Decimal:
    """A price that must be there and above zero."""
    amount = price(value, where)
    if amount is None:
        raise errors.SchemaMismatch(f"{where}: expected a price above zero")
    return amount


def in_major_units(value: Decimal, minor: int, where: str) -> Decimal:
    """``value`` divided by 10**minor, exactly (a pence price in pounds), within the grammar."""
    return parse_amount(value.scaleb(-minor, context=_EXACT), where)


def _integer(value: Any, where: str) -> int:
    # JSON integers arrive as int; 1.7e9 or "1700000000" are not timestamps we know.
    expect(isinstance(value, int) and not isinstance(value, bool),
           f"{where}: expected an integer timestamp")
    result: int = value
    return result


def unix_seconds(value: Any, where: str) -> datetime:
    """An instant from whole seconds since the epoch."""
    seconds = _integer(value, where)
    expect(0 <= seconds <= MAX_UNIX_SECONDS, f"{where}: timestamp out of range")
    return EPOCH + timedelta(seconds=seconds)


def unix_millis(value: Any, where: str) -> datetime:
    """An instant from whole milliseconds since the epoch."""
    millis = _integer(value, where)
    expect(0 <= millis <= MAX_UNIX_SECONDS * 1000, f"{where}: timestamp out of range")
    return EPOCH + timedelta(milliseconds=millis)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def end_of_day(day: date) -> datetime:
    """When the close of ``day`` counts as observed: the next day, 00:00:00 UTC."""
    return start_of_day(day) + ONE_DAY


def unix(instant: datetime) -> int:
    """Whole seconds since the epoch, for a request's query."""
    return int((instant - EPOCH).total_seconds())


def pairs(assets: Iterable[str], quotes: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Every (base, quote) of a query, each once, never an asset in itself."""
    seen: set[tuple[str, str]] = set()
    quotes = list(quotes)
    for base in assets:
        for quote in quotes:
            if base != quote and (base, quote) not in seen:
                seen.add((base, quote))
                yield base, quote


def daily(base: str, quote: str, day: date, close: Decimal) -> Observation:
    """The close of ``day``, observed at its end."""
    return Observation(base, quote, PriceKind.DAILY, end_of_day(day), close)


def check(response: RawResponse, provider_reason: Callable[[Any], str] | None = None) -> None:
    """``check_status``, with the provider's own error text when it nests it somewhere.

    429 stays rate_limited with its Retry-After, 5xx server_error, and so on.
    """
    try:
        check_status(response)
    except errors.SourceError as exc:
        text = ""
        if provider_reason is not None:
            try:
                text = reason(provider_reason(loads_exact(response.body)))
            except errors.SourceError:
                text = ""
        if text and text not in str(exc):
            exc.args = (f"{exc}: {text}",)
        raise


def dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None wherever the path is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
