"""Request rate limits and rate-limit holds per source and host, so no account trips a ban."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from aggregator import errors
from aggregator.sources.base import Rate as Rate  # where it was; the descriptor declares one
from aggregator.sources.registry import SOURCES

_RATE = re.compile(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([smh])")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: object) -> Rate:
    if not isinstance(text, str):
        raise ValueError('expected a rate such as "600/m" or "5/s"')
    match = _RATE.fullmatch(text.strip())
    if not match or int(match[1]) < 1 or float(match[2] or 1) <= 0:
        raise ValueError(f'{text!r} is not a rate such as "600/m" or "5/s"')
    return Rate(int(match[1]), float(match[2] or 1) * _UNITS[match[3]])


def default_rates() -> dict[str, Rate]:
    """Each registered source's published limit, from its descriptor; read at each call."""
    return {name: source.rate_limit for name, source in SOURCES.items()
            if source.rate_limit is not None}


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


@dataclass(frozen=True)
class HoldPolicy:
    """How long a host is held after a rate limit.

    An answer that names no time (Bitzoom -1003, Bitz -110) holds for ``base`` seconds,
    doubling with each hold in a row up to ``cap``; a successful poll starts over. A
    ``Retry-After`` is honoured up to ``longest``, so a broken header cannot silence a host
    for good.
    """

    base: float = 2.0
    cap: float = 300.0
    longest: float = 3600.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class HostHold:
    """While set, no account of this source and host sends a request.

    Shared by every account on the host, like its token bucket. Only the event loop
    touches it, so nothing here needs a lock.
    """

    def __init__(self, source: str, host: str, policy: HoldPolicy = HoldPolicy(),
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = _utcnow) -> None:
        self.source = source
        self.host = host
        self.policy = policy
        self.holds = 0  # how many holds began, for the metrics
        self._clock = clock
        self._wall = wall
        self._until = -math.inf  # on ``clock``
        self._until_wall = datetime.min.replace(tzinfo=UTC)
        self._strikes = 0  # holds since the last successful poll

    def remaining(self) -> float:
        """Seconds until requests may go out again; 0 when not on hold."""
        return max(0.0, self._until - self._clock())

    def until(self) -> datetime:
        """When the current (or last) hold ends, UTC."""
        return self._until_wall

    def trip(self, retry_after: float | None) -> float:
        """A rate-limit answer arrived: hold the host. Returns the seconds it is held."""
        now = self._clock()
        held = self._until > now
        if retry_after is not None and retry_after >= 0:  # NaN is no time given
            seconds = min(retry_after, self.policy.longest)
        elif held:
            # The answer to a request sent before the hold began: the same excess, not
            # a new one, so the backoff does not grow.
            return self._until - now
        else:
            seconds = min(self.policy.base * 2.0 ** min(self._strikes, 64), self.policy.cap)
        if now + seconds > self._until:
            if not held and seconds > 0:
                self.holds += 1
                self._strikes += 1
            self._until = now + seconds
            self._until_wall = self._wall() + timedelta(seconds=seconds)
        return max(0.0, self._until - now)

    def succeeded(self) -> None:
        """A poll of this host went through: the next hold without a time starts small."""
        self._strikes = 0

    def check(self) -> None:
        """Raise ``HostOnHold`` while the hold lasts."""
        left = self._until - self._clock()
        if left > 0:
            # Rounded up to the second: a poll sent at the time shown is never early.
            until = self._until_wall
            if until.microsecond:
                until = until.replace(microsecond=0) + timedelta(seconds=1)
            raise errors.HostOnHold(
                f"{self.source} host {self.host} on hold after a rate limit until "
                f"{until:%Y-%m-%dT%H:%M:%SZ} ({left:.1f}s left); nothing sent",
                retry_after=left)


def host_of(base_url: str) -> str:
    """The host[:port] of a base URL, lower-case, without any user:password@."""
    return urlsplit(base_url).netloc.rpartition("@")[2].lower()


class RateLimits:
    """One bucket and one hold per (source, host): accounts on one exchange share both."""

    def __init__(self, overrides: Mapping[str, Rate] | None = None,
                 hold_policy: HoldPolicy = HoldPolicy()) -> None:
        self.rates = {**default_rates(), **(overrides or {})}
        self.hold_policy = hold_policy
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._holds: dict[tuple[str, str], HostHold] = {}

    def bucket(self, source: str, base_url: str, default: Rate | None = None
               ) -> TokenBucket | None:
        """The bucket of (source, host); ``default`` when the table has no rate."""
        rate = self.rates.get(source, default)
        if rate is None:
            return None
        key = (source, host_of(base_url))
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(rate)
        return self._buckets[key]

    def hold(self, source: str, base_url: str) -> HostHold:
        """The host's hold; every source has one, published limits or not."""
        key = (source, host_of(base_url))
        if key not in self._holds:
            self._holds[key] = HostHold(source, key[1], self.hold_policy)
        return self._holds[key]

    def holds(self) -> list[HostHold]:
        return list(self._holds.values())
