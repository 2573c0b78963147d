"""What the price fakes serve, and the knobs tests turn: one board per Sandbox.

Every series is named as the aggregator sees it, (source, asset, quote): "BitoPro prices
BTC in TWD", "CoinGecko prices ZPR in TWD", "Yahoo prices USD in TWD". Each has a live
price (and when it last changed: CoinGecko's ``last_updated_at``, Yahoo's
``regularMarketTime``; by default the instant it is asked) and closes by day. How each
API names it (a BitoPro pair, a CoinGecko coin id, a Yahoo symbol and its exchange's
time zone) is the fake's business, with defaults a test may override.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from decimal import Decimal
from zoneinfo import ZoneInfo

from aggregator.sandbox.faults import MALFORMED_BODY, retry_after_text
from aggregator.sandbox.wire import Reply

PRICE_SOURCES = ("bitopro", "coingecko", "yahoo", "manual")
PRICE_FAULTS = ("rate_limited", "server_error", "malformed", "hang")


@dataclass
class Series:
    live: Decimal | None = None
    updated_at: float | None = None  # unix seconds; None: the instant it is asked
    closes: dict[date, Decimal] = field(default_factory=dict)


@dataclass
class PriceFault:
    kind: str
    remaining: int | None  # None: until cleared
    retry_after: float


@dataclass(frozen=True)
class Listing:
    """How Yahoo lists an asset: its symbol, its exchange's zone and session open."""

    symbol: str
    zone: str = "America/New_York"
    opens: clock_time = clock_time(9, 30)
    minor: bool = False  # quoted in the currency's hundredths (GBp, ZAc)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


# The Yahoo symbol of a currency pair: 1 USD in TWD is "TWD=X"; others "BASEQUOTE=X".
def fx_symbol(base: str, quote: str) -> str:
    return f"{quote}=X" if base == "USD" else f"{base}{quote}=X"


class PriceBoard:
    """Series, names, faults and keys of every price fake; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.series: dict[tuple[str, str, str], Series] = {}
        self.coin_ids: dict[str, str] = {}  # asset -> CoinGecko id (default: lower-case)
        self.listings: dict[str, Listing] = {}  # asset -> Yahoo listing
        self.faults: dict[str, PriceFault] = {}
        # CoinGecko: the key every request must carry in x-cg-demo-api-key (None: none).
        self.coingecko_key: str | None = None
        # CoinGecko's own limit per minute (None: unlimited), answered with its 429.
        self.coingecko_per_minute: int | None = None
        self.coingecko_calls: list[float] = []
        # Yahoo answers 429 to a client that does not look like a browser.
        self.yahoo_wants_browser = True

    # series

    def set_price(self, source: str, asset: str, quote: str, price: Decimal, *,
                  at: datetime | None = None) -> None:
        """The live price of ``asset`` in ``quote`` at ``source`` (changed at ``at``)."""
        with self.lock:
            series = self._series(source, asset, quote)
            series.live = price
            series.updated_at = None if at is None else at.timestamp()

    def set_closes(self, source: str, asset: str, quote: str,
                   closes: Mapping[date, Decimal]) -> None:
        """Closes by day (added to those already set)."""
        with self.lock:
            self._series(source, asset, quote).closes.update(closes)

    def remove(self, source: str, asset: str, quote: str) -> None:
        """The source no longer has this pair: it answers as for one it never had."""
        with self.lock:
            del self.series[(source, asset.upper(), quote.upper())]

    def _series(self, source: str, asset: str, quote: str) -> Series:
        if source not in PRICE_SOURCES:
            raise ValueError(f"unknown price source {source!r}; one of {PRICE_SOURCES}")
        return self.series.setdefault((source, asset.upper(), quote.upper()), Series())

    def of(self, source: str) -> dict[tuple[str, str], Series]:
        """(asset, quote) -> a copy of each series of ``source``."""
        with self.lock:
            return {(a, q): Series(s.live, s.updated_at, dict(s.closes))
                    for (src, a, q), s in self.series.items() if src == source}

    def assets(self, source: str) -> list[str]:
        return sorted({a for a, _ in self.of(source)})

    # names

    def coin_id(self, asset: str) -> str:
        with self.lock:
            return self.coin_ids.get(asset, asset.lower())

    def listing(self, asset: str) -> Listing:
        with self.lock:
            return self.listings.get(asset, Listing(asset))

    def list_on_yahoo(self, asset: str, symbol: str, zone: str = "America/New_York",
                      opens: clock_time = clock_time(9, 30), minor: bool = False) -> None:
        ZoneInfo(zone)  # a typo fails here, not in a request
        with self.lock:
            self.listings[asset] = Listing(symbol, zone, opens, minor)

    # faults

    def set_fault(self, source: str, fault: str | None, *, count: int | None = None,
                  retry_after: float = 1.0) -> None:
        """The next ``count`` requests to ``source`` fail so (None: until cleared)."""
        with self.lock:
            if fault is None:
                self.faults.pop(source, None)
                return
            if fault not in PRICE_FAULTS:
                raise ValueError(f"unknown fault {fault!r}; one of {', '.join(PRICE_FAULTS)}")
            if count is not None and count < 1:
                raise ValueError("count must be at least 1 (or None for until cleared)")
            self.faults[source] = PriceFault(fault, count, retry_after)

    def take_fault(self, source: str) -> PriceFault | None:
        with self.lock:
            fault = self.faults.get(source)
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self.faults[source]
            return PriceFault(fault.kind, None, fault.retry_after)

    def coingecko_over_limit(self) -> bool:
        """Count one CoinGecko call; True if it is over the per-minute limit."""
        with self.lock:
            if self.coingecko_per_minute is None:
                return False
            now = self.clock()
            self.coingecko_calls = [t for t in self.coingecko_calls if now - t < 60]
            if len(self.coingecko_calls) >= self.coingecko_per_minute:
                return True
            self.coingecko_calls.append(now)
            return False

    # time

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def updated(self, series: Series) -> int:
        """When the series last changed, whole seconds (the instant asked by default)."""
        return int(self.clock() if series.updated_at is None else series.updated_at)


def fault_reply(source: str, fault: PriceFault, limited: Reply, failed: Reply) -> Reply:
    """The answer of an injected fault: the API's own 429 (with Retry-After) and 5xx."""
    outcome = f"fault:{fault.kind}"
    if fault.kind == "rate_limited":
        reply = limited
        reply.headers["Retry-After"] = retry_after_text(fault.retry_after)
    elif fault.kind == "server_error":
        reply = failed
    elif fault.kind == "malformed":
        reply = Reply(200, MALFORMED_BODY)
    else:
        reply = Reply(0, b"", hang=True)
    reply.outcome = outcome
    return reply
