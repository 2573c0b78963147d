"""What a price source module declares: its config, its requests, its pure parsers.

A price source is added like a balance source: one module beside these that declares
``SOURCE = PriceSource(...)``, one line in ``registry.py``, and a fake in the sandbox.

A fetch is a list of ``PriceRequest``s (each says which pair it asks about when the
answer will not say it); the poller's machinery sends them (rate limits, host holds,
bounded reads, redaction) and hands every answer, with its request, to the parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, TypeVar

import httpx

from aggregator.model import RawResponse, Secret
from aggregator.polling.ratelimit import Rate
from aggregator.prices.model import Observation
from aggregator.sources.base import Duration


@dataclass(frozen=True, kw_only=True)
class PriceConfig:
    """Keys every ``[[prices]]`` table has; a source subclasses it with its own."""

    name: str
    source: str
    base_url: str
    interval: Duration = Duration(300.0)
    timeout: Duration = Duration(30.0)
    allow_insecure_http: bool = False

    def secrets(self) -> list[Secret]:
        """Every credential of this source, for redaction."""
        return [v for f in dataclasses.fields(self)
                if isinstance(v := getattr(self, f.name), Secret)]

    def problems(self) -> list[tuple[str, str]]:
        """Cross-key problems as (key, message)."""
        return []


P = TypeVar("P", bound=PriceConfig)


@dataclass(frozen=True)
class PriceQuery:
    """What a fetch asks for: prices of ``assets`` in any of ``quotes``."""

    assets: tuple[str, ...]  # upper-case symbols: what is held, and the pivots
    quotes: tuple[str, ...]  # the reference currency, then the pivots


@dataclass(frozen=True)
class PriceRequest:
    """One request of a fetch, and what it asks about when the answer will not say."""

    request: httpx.Request
    base: str | None = None
    quote: str | None = None
    # A guess at a pair the source may not list (BitoPro has no configured pairs): an
    # error answer that says so (4xx other than 401/403/408/429) is no data, not a failed
    # fetch. The machinery must then go on to the next request and hand this answer to
    # the parser like any other.
    missing_ok: bool = False


# A parser gets every answer of a fetch with the request it answers, and when it was
# fetched (the observed time of a live price whose answer carries none). It raises a
# SourceError subclass for an answer that is an error; an asset the source simply does
# not have is no observation, not an error, unless the config named it.
Answers = Sequence[tuple[PriceRequest, RawResponse]]


@dataclass(frozen=True)
class PriceSource(Generic[P]):
    """One price API. Register an instance in ``aggregator.prices.registry``."""

    name: str
    title: str
    config: type[P]
    # None: there is no URL (a local file) or it must be configured.
    default_base_url: str | None
    rate_limit: Rate | None
    # Live prices: the requests for a query, and their parser.
    live_requests: Callable[[P, PriceQuery], list[PriceRequest]]
    parse_live: Callable[[P, Answers, datetime], list[Observation]]
    # Daily closes of the days first..last (inclusive), or None without history.
    history_requests: Callable[[P, PriceQuery, date, date], list[PriceRequest]] | None = None
    parse_history: Callable[[P, Answers, datetime], list[Observation]] | None = None
    # Headers or signing, when the API wants a key; None for public APIs.
    auth: Callable[[P], httpx.Auth] | None = None
    # A source that reads no URL (manual: a CSV file) gives its answer itself.
    read_local: Callable[[P], RawResponse] | None = None
