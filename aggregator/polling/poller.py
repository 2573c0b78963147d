"""Poll one account: sign, fetch, parse. A source's failure becomes a record, never a raise."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import httpx

from aggregator import errors
from aggregator.auth.minted import MintsSecrets
from aggregator.model import Holding, PollRecord, RawResponse
from aggregator.polling import body
from aggregator.polling.client import RequestSlots
from aggregator.polling.ratelimit import HostHold, RateLimits, TokenBucket
from aggregator.polling.redact import Redactor
from aggregator.sources.base import AccountConfig, Source, safe_text
from aggregator.sources.registry import SOURCES

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Account:
    """An account ready to poll: its config, source, auth state and redactor."""

    config: AccountConfig
    source: Source[Any]
    auth: httpx.Auth
    redactor: Redactor
    limiter: TokenBucket | None = None
    hold: HostHold | None = None  # shared by every account of the source and host

    @property
    def name(self) -> str:
        return self.config.name


def prepare(config: AccountConfig, limits: RateLimits | None = None) -> Account:
    """The account's auth and its redactor, which also learns every token the auth makes."""
    source = SOURCES[config.source]
    limiter = limits.bucket(config.source, config.base_url) if limits else None
    hold = limits.hold(config.source, config.base_url) if limits else None
    auth = source.auth(config)
    redactor = Redactor(config.secrets(), owner=config.name)
    if isinstance(auth, MintsSecrets):
        auth.report_secrets(redactor.add)
    return Account(config, source, auth, redactor, limiter, hold)


async def poll_once(
    client: httpx.AsyncClient, account: Account, clock: Clock = utcnow,
    slots: RequestSlots | None = None, max_answer_bytes: int = body.MAX_ANSWER_BYTES,
) -> PollRecord:
    """One attempt: every request of the source in order, then the parser.

    Every answer is read within ``max_answer_bytes`` (after decompression), those an
    auth flow reads included; a success answer over it or undecodable fails the poll.
    """
    config = account.config
    started = clock()
    responses: list[RawResponse] = []
    timeout = httpx.Timeout(config.timeout.seconds).as_dict()
    try:
        try:
            for request in account.source.requests(config):
                ready_request(request, client, timeout)
                if account.limiter is not None:
                    await account.limiter.acquire()
                # A slot first, then signing inside send(): nothing waits signed.
                async with slots.hold(request.url.netloc.decode()) if slots \
                        else contextlib.nullcontext():
                    answer = await exchange(client, account.auth, request, timeout,
                                             max_answer_bytes, account.hold)
                # A refused answer to a request the auth flow made (a token endpoint's)
                # keeps no body: its start may well be the token.
                own = answer.request.url.copy_with(query=None) == request.url.copy_with(
                    query=None)
                responses.append(raw_response(answer, config.base_url, account.redactor, own))
                if answer.refused is not None:
                    raise type(answer.refused)(f"{responses[-1].endpoint}: {answer.refused}")
                if answer.status >= 400:
                    break  # the parser reports it; later requests would fail the same way
            holdings = account.source.parse(responses)
            _check_unique(holdings)
            if account.hold is not None:
                account.hold.succeeded()
        except httpx.TransportError as exc:
            raise transport_error(exc, config.timeout) from exc
    except errors.SourceError as exc:
        if exc.holds_host and account.hold is not None:
            account.hold.trip(exc.retry_after)
        return _failed(account, started, clock(), responses, exc.kind, str(exc))
    except Exception as exc:
        # Not foreseen: keep the poll (kind "bug") and the traceback, let the others go on.
        trace = account.redactor.text("".join(traceback.format_exception(exc)))
        log.error("account %s: unexpected error\n%s", account.name, trace)
        return _failed(account, started, clock(), responses, errors.BUG_KIND,
                       f"{type(exc).__name__}: {exc}")
    return PollRecord(
        account=account.name,
        source=config.source,
        started_at=started,
        finished_at=clock(),
        holdings=holdings,
        responses=responses,
    )


def transport_error(exc: httpx.TransportError, timeout: object) -> errors.SourceError:
    """What a failure to exchange a request means, as a kind."""
    if isinstance(exc, httpx.TimeoutException):
        return errors.Timeout(f"no answer within {timeout}: {type(exc).__name__}")
    if isinstance(exc, httpx.LocalProtocolError):
        # Our own request is not valid HTTP: a token with a line break, say. Retrying
        # cannot help, and httpx's message would quote the header value.
        return errors.BadCredentials("the request cannot be sent: a header value is not "
                                     "valid HTTP (a token with a control character?)")
    return errors.Unreachable(f"{type(exc).__name__}: {exc}")


def _check_unique(holdings: list[Holding]) -> None:
    seen: set[str] = set()
    for holding in holdings:
        if holding.asset in seen:
            raise errors.SchemaMismatch(f"asset {holding.asset} is listed twice")
        seen.add(holding.asset)


def _failed(
    account: Account, started: datetime, finished: datetime, responses: list[RawResponse],
    kind: str, message: str,
) -> PollRecord:
    return PollRecord(
        account=account.name,
        source=account.config.source,
        started_at=started,
        finished_at=finished,
        holdings=None,
        responses=responses,
        error_kind=kind,
        error_message=safe_text(account.redactor.text(message))[:1000],
    )


def ready_request(request: httpx.Request, client: httpx.AsyncClient,
                  timeout: dict[str, Any]) -> None:
    request.extensions.setdefault("timeout", timeout)
    # send() does not merge the client's default headers (User-Agent).
    for name, value in client.headers.items():
        request.headers.setdefault(name, value)
    # Only what body.py can decompress within its bound (httpx would offer br and zstd
    # whenever their packages happen to be installed).
    request.headers["Accept-Encoding"] = body.ACCEPT_ENCODING


async def exchange(
    client: httpx.AsyncClient, auth: httpx.Auth, request: httpx.Request,
    timeout: dict[str, Any], max_answer_bytes: int, hold: HostHold | None = None,
) -> body.Answer:
    """``request`` through the auth flow, as httpx's own send() would, every read bounded.

    httpx reads the answers a flow looks at (a 401 before re-signing, a token endpoint's)
    whole and decompressed; here the flow gets them already read within the limit.
    Nothing goes out while ``hold`` lasts, a token request included.
    """
    flow = auth.async_auth_flow(request)
    try:
        outgoing = await flow.__anext__()
        while True:
            if hold is not None:
                hold.check()  # the last thing before sending: a hold may just have begun
            ready_request(outgoing, client, timeout)
            answer = await body.fetch(client, outgoing, max_answer_bytes)
            if answer.refused is not None:
                return answer  # nothing a flow could do with it
            try:
                outgoing = await flow.asend(answer.response())
            except StopAsyncIteration:
                return answer
    finally:
        await flow.aclose()


def raw_response(answer: body.Answer, base_url: str, redactor: Redactor, keep_body: bool = True
         ) -> RawResponse:
    base = base_url.rstrip("/")
    url = str(answer.request.url.copy_with(query=None))
    endpoint = url[len(base):] if url.startswith(base) else url
    return RawResponse(
        endpoint=endpoint,
        status=answer.status,
        body=answer.body.kept(redactor.bytes) if keep_body else b"",
        content_type=answer.headers.get("content-type"),
        retry_after=_retry_after(answer.headers.get("retry-after")),
    )


# A hostile or broken Retry-After must not silence a host for years.
MAX_RETRY_AFTER = 86400.0


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "1e999" is inf, "nan" is nan: neither is a time to wait.
        return min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        from email.utils import parsedate_to_datetime

        seconds = (parsedate_to_datetime(value) - utcnow()).total_seconds()
        return min(max(0.0, seconds), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Waits between the attempts of one poll: full jitter below a delay that doubles."""

    first_delay: float = 1.0
    max_delay: float = 30.0


async def poll_until_deadline(
    client: httpx.AsyncClient,
    account: Account,
    deadline: float,
    policy: RetryPolicy = RetryPolicy(),
    clock: Clock = utcnow,
    slots: RequestSlots | None = None,
    max_answer_bytes: int = body.MAX_ANSWER_BYTES,
) -> list[PollRecord]:
    """Attempts until one succeeds, fails permanently, or ``deadline`` seconds pass.

    Returns every attempt's record: failed attempts are visible in the poll log. A retry
    waits for its host's hold (see ``HostHold``) as well as for its own backoff.
    """
    return await retry_until_deadline(
        lambda: poll_once(client, account, clock, slots, max_answer_bytes),
        lambda started: _failed(account, started, clock(), [], errors.Timeout.kind,
                                f"poll deadline of {deadline:g}s reached"),
        deadline, account.hold, policy, clock)


class Attempt(Protocol):
    """What the retry loop reads of an attempt's record (a poll's or a price fetch's)."""

    @property
    def error_kind(self) -> str | None: ...

    @property
    def responses(self) -> Sequence[RawResponse]: ...


A = TypeVar("A", bound=Attempt)


async def retry_until_deadline(
    attempt: Callable[[], Awaitable[A]], timed_out: Callable[[datetime], A],
    deadline: float, hold: HostHold | None, policy: RetryPolicy = RetryPolicy(),
    clock: Clock = utcnow,
) -> list[A]:
    """``attempt`` again after transient failures, within ``deadline`` seconds.

    Each record is numbered (``attempts``) in order; ``timed_out(started)`` makes the
    record of an attempt the deadline cut short.
    """
    end = time.monotonic() + deadline
    records: list[A] = []
    delay = policy.first_delay
    while True:
        remaining = end - time.monotonic()
        started = clock()
        try:
            async with asyncio.timeout(max(remaining, 0.001)):
                record = await attempt()
        except TimeoutError:
            record = timed_out(started)
        records.append(dataclasses.replace(record, attempts=len(records) + 1))  # type: ignore[type-var]
        kind = record.error_kind
        if kind is None or kind not in _RETRYABLE:
            return records
        wait = random.uniform(0, delay)  # full jitter
        retry_after = record.responses[-1].retry_after if record.responses else None
        if retry_after is not None:
            wait = max(wait, retry_after)
        if hold is not None:
            wait = max(wait, hold.remaining())
        # Another account's rate limit may hold the host while we wait: wait that out too.
        while wait > 0:
            if time.monotonic() + wait >= end:
                return records
            await asyncio.sleep(wait)
            wait = hold.remaining() if hold is not None else 0.0
        delay = min(delay * 2, policy.max_delay)


_RETRYABLE = frozenset(kind for kind, error in errors.kinds().items() if error.retryable)
