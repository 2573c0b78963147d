"""Request rate limits per source and host, so a thousand accounts never trip a ban."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_RATE = re.compile(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([smh])")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Rate:
    """At most ``requests`` per ``seconds``, written "600/m", "5/s" or "30/10s"."""

    requests: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}s"


def parse_rate(text: object) -> Rate:
    if not isinstance(text, str):
        raise ValueError('expected a rate such as "600/m" or "5/s"')
    match = _RATE.fullmatch(text.strip())
    if not match or int(match[1]) < 1:
        raise ValueError(f'{text!r} is not a rate such as "600/m" or "5/s"')
    return Rate(int(match[1]), float(match[2] or 1) * _UNITS[match[3]])


# Published limits (SOURCES.md); PiTrade publishes none.
DEFAULT_RATES: Mapping[str, Rate] = {
    "bitopro": Rate(600, 60.0),
    "bitz": Rate(30, 1.0),
    "bitzoom": Rate(5, 1.0),
}


class TokenBucket:
    """Up to ``rate.requests`` at once, refilled evenly; waiters are served in call order."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._per_second = rate.requests / rate.seconds
        self._clock = clock
        self._tokens = float(rate.requests)
        self._updated = clock()

    def reserve(self) -> float:
        """Take a token now; return how long to wait before using it."""
        # No await between reading and writing: atomic on the event loop.
        now = self._clock()
        self._tokens = min(float(self.rate.requests),
                           self._tokens + (now - self._updated) * self._per_second)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._per_second

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class RateLimits:
    """One bucket per (source, host): two accounts on one exchange share its limit."""

    def __init__(self, overrides: Mapping[str, Rate] | None = None) -> None:
        self.rates = {**DEFAULT_RATES, **(overrides or {})}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def bucket(self, source: str, base_url: str) -> TokenBucket | None:
        rate = self.rates.get(source)
        if rate is None:
            return None
        key = (source, urlsplit(base_url).netloc.lower())
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(rate)
        return self._buckets[key]
