"""Fetch prices from one source: the poller's machinery, a price source's parser.

Requests go out exactly as a poll's do (rate limit per source and host, the host's
hold after a rate limit, a request slot before signing, bounded reads, redaction); a
failure becomes a record of its kind, never a raise.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx

from aggregator import errors
from aggregator.model import RawResponse
from aggregator.polling import body
from aggregator.polling.client import RequestSlots
from aggregator.polling.poller import (
    Clock,
    RetryPolicy,
    exchange,
    raw_response,
    ready_request,
    retry_until_deadline,
    transport_error,
    utcnow,
)
from aggregator.polling.ratelimit import HostHold, RateLimits, TokenBucket
from aggregator.polling.redact import Redactor
from aggregator.prices.base import Answers, PriceConfig, PriceQuery, PriceRequest, PriceSource
from aggregator.prices.model import FetchRecord, Observation, PriceKind
from aggregator.prices.registry import PRICE_SOURCES
from aggregator.sources.base import safe_text

log = logging.getLogger(__name__)

_POLICY = RetryPolicy()
# 4xx answers that say something about us, not about a pair the source lacks.
_NOT_MISSING = frozenset({401, 403, 407, 408, 429})


class _NoAuth(httpx.Auth):
    """Public APIs: the request goes out as it is."""


@dataclass(frozen=True)
class Feed:
    """A ``[[prices]]`` source ready to fetch: config, descriptor, auth, limits."""

    config: PriceConfig
    source: PriceSource[Any]
    auth: httpx.Auth
    redactor: Redactor
    limiter: TokenBucket | None = None
    hold: HostHold | None = None

    @property
    def name(self) -> str:
        return self.config.name


def prepare_feed(config: PriceConfig, limits: RateLimits | None = None) -> Feed:
    source = PRICE_SOURCES[config.source]
    limiter = hold = None
    if limits is not None and source.read_local is None:
        key = f"prices:{config.source}"  # never shares a bucket with the private APIs
        limiter = limits.bucket(key, config.base_url, source.rate_limit)
        hold = limits.hold(key, config.base_url)
    auth = source.auth(config) if source.auth is not None else _NoAuth()
    return Feed(config, source, auth, Redactor(config.secrets(), owner=config.name),
                limiter, hold)


async def fetch_once(client: httpx.AsyncClient, feed: Feed, kind: PriceKind,
                     query: PriceQuery, days: tuple[date, date] | None = None,
                     clock: Clock = utcnow, slots: RequestSlots | None = None,
                     max_answer_bytes: int = body.MAX_ANSWER_BYTES) -> FetchRecord:
    """One attempt: live prices, or the daily closes of ``days`` (first, last)."""
    config, source = feed.config, feed.source
    started = clock()
    responses: list[RawResponse] = []
    try:
        try:
            answers = await _answers(client, feed, kind, query, days, responses, slots,
                                     max_answer_bytes)
            parse = _parser(source, kind)
            observations = parse(config, answers, clock())
            if feed.hold is not None:
                feed.hold.succeeded()
        except httpx.TransportError as exc:
            raise transport_error(exc, config.timeout) from exc
    except errors.SourceError as exc:
        if exc.holds_host and feed.hold is not None:
            feed.hold.trip(exc.retry_after)
        return _failed(feed, kind, started, clock(), responses, exc.kind, str(exc))
    except Exception as exc:
        trace = feed.redactor.text("".join(traceback.format_exception(exc)))
        log.error("prices %s: unexpected error\n%s", feed.name, trace)
        return _failed(feed, kind, started, clock(), responses, errors.BUG_KIND,
                       f"{type(exc).__name__}: {exc}")
    return FetchRecord(config.name, kind, started, clock(), observations, responses)


async def fetch_until_deadline(client: httpx.AsyncClient, feed: Feed, kind: PriceKind,
                               query: PriceQuery, deadline: float,
                               days: tuple[date, date] | None = None,
                               slots: RequestSlots | None = None,
                               max_answer_bytes: int = body.MAX_ANSWER_BYTES,
                               policy: RetryPolicy = _POLICY) -> list[FetchRecord]:
    """Attempts until one succeeds, fails for good, or ``deadline`` seconds pass."""
    return await retry_until_deadline(
        lambda: fetch_once(client, feed, kind, query, days, slots=slots,
                           max_answer_bytes=max_answer_bytes),
        lambda started: _failed(feed, kind, started, utcnow(), [], errors.Timeout.kind,
                                f"fetch deadline of {deadline:g}s reached"),
        deadline, feed.hold, policy)


def _parser(source: PriceSource[Any], kind: PriceKind
            ) -> Callable[[Any, Answers, datetime], list[Observation]]:
    if kind == PriceKind.LIVE:
        return source.parse_live
    if source.parse_history is None:
        raise errors.ApiError(f"{source.name} has no price history")
    return source.parse_history


async def _answers(client: httpx.AsyncClient, feed: Feed, kind: PriceKind, query: PriceQuery,
                   days: tuple[date, date] | None, responses: list[RawResponse],
                   slots: RequestSlots | None, max_answer_bytes: int) -> Answers:
    config, source = feed.config, feed.source
    if source.read_local is not None:
        local = source.read_local(config)
        responses.append(local)
        return [(PriceRequest(httpx.Request("GET", "file:///" + local.endpoint.lstrip("/"))),
                 local)]
    if kind == PriceKind.LIVE:
        requests = source.live_requests(config, query)
    else:
        assert source.history_requests is not None and days is not None
        requests = source.history_requests(config, query, *days)
    timeout = httpx.Timeout(config.timeout.seconds).as_dict()
    answers: list[tuple[PriceRequest, RawResponse]] = []
    for asked in requests:
        request = asked.request
        ready_request(request, client, timeout)
        if feed.limiter is not None:
            await feed.limiter.acquire()
        async with slots.hold(request.url.netloc.decode()) if slots \
                else contextlib.nullcontext():
            answer = await exchange(client, feed.auth, request, timeout, max_answer_bytes,
                                    feed.hold)
        raw = raw_response(answer, config.base_url, feed.redactor)
        responses.append(raw)
        answers.append((asked, raw))
        if answer.refused is not None:
            raise type(answer.refused)(f"{raw.endpoint}: {answer.refused}")
        if answer.status >= 400 and not (asked.missing_ok and 400 <= answer.status < 500
                                         and answer.status not in _NOT_MISSING):
            break  # the parser reports it; later requests would fail the same way
    return answers


def _failed(feed: Feed, kind: PriceKind, started: datetime, finished: datetime,
            responses: list[RawResponse], error_kind: str, message: str) -> FetchRecord:
    return FetchRecord(feed.name, kind, started, finished, None, responses, error_kind,
                       safe_text(feed.redactor.text(message))[:1000])
