"""What a source module declares: its account config, its requests, its auth, its parser."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from aggregator import errors
from aggregator.amounts import loads_exact
from aggregator.model import Holding, RawResponse, Secret


@dataclass(frozen=True)
class Duration:
    """A span of time written as "30s", "5m" or "1h" in the config."""

    seconds: float

    def __str__(self) -> str:
        return f"{self.seconds:g}s"


@dataclass(frozen=True)
class Rate:
    """At most ``requests`` per ``seconds``, written "600/m", "5/s" or "30/10s"."""

    requests: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}s"


@dataclass(frozen=True, kw_only=True)
class AccountConfig:
    """Keys every account has; a source subclasses it with its own credentials."""

    name: str
    source: str
    base_url: str
    interval: Duration | None = None
    timeout: Duration = Duration(30.0)
    allow_insecure_http: bool = False

    def secrets(self) -> list[Secret]:
        """Every credential of this account, for redaction."""
        found: list[Secret] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                found.append(value)
        return found

    def problems(self) -> list[tuple[str, str]]:
        """Cross-key problems as (key, message); the loader already checked each key's type."""
        return []


C = TypeVar("C", bound=AccountConfig)


@dataclass(frozen=True)
class Source(Generic[C]):
    """One balance API: everything the program knows about it. Register it in ``registry``."""

    name: str
    config: type[C]
    # None means the base URL is per customer and must be configured.
    default_base_url: str | None
    auth: Callable[[C], httpx.Auth]
    # The requests of one poll, unsigned, in the order they are sent.
    requests: Callable[[C], list[httpx.Request]]
    # Pure: the answers of one poll to holdings; raises a SourceError subclass.
    parse: Callable[[Sequence[RawResponse]], list[Holding]]
    # How reports name it ("BitoPro").
    title: str
    # The published request limit per host, shared by every account there; None when the
    # API publishes none. A ``[rate_limits]`` entry in the config overrides it.
    rate_limit: Rate | None
    # Holding details that are the exchange's own valuation of the line: detail key to
    # the currency it is in. The report shows them apart, never mixed with other sources.
    valuation_details: Mapping[str, str] = field(default_factory=dict)
    # The holding detail that is the average purchase price per unit, if it reports one.
    cost_basis_detail: str | None = None


def endpoint_url(base_url: str, path: str) -> str:
    """Append ``path`` to the base URL as text: urljoin would drop the base URL's own path."""
    return base_url.rstrip("/") + path


_GENERIC_STATUS: Mapping[int, type[errors.SourceError]] = {
    401: errors.BadCredentials,
    403: errors.PermissionDenied,
    408: errors.Timeout,
}


def check_status(
    response: RawResponse, specific: Mapping[int, type[errors.SourceError]] | None = None
) -> None:
    """Raise the error an HTTP status means; 2xx passes."""
    status = response.status
    if 200 <= status < 300:
        return
    reason = exchange_reason(response.body)
    message = status_message(response, reason)
    if status == 429:
        raise errors.RateLimited(message, retry_after=response.retry_after)
    table = {**_GENERIC_STATUS, **(specific or {})}
    if status in table:
        raise table[status](message)
    if status >= 500:
        raise errors.ServerError(message)
    raise errors.ApiError(message, code=status)


def status_message(response: RawResponse, reason: str) -> str:
    return f"HTTP {response.status} from {response.endpoint}" + (f": {reason}" if reason else "")


def checked(
    responses: Sequence[RawResponse], count: int,
    check: Callable[[RawResponse], None] = check_status,
) -> list[RawResponse]:
    """The answers of one poll after each one's HTTP status, in order, was checked.

    Statuses come first: the poller stops at the first HTTP error, so a poll that was
    refused on its first request has fewer answers than it asks for.
    """
    for response in responses:
        check(response)
    expect(len(responses) == count, f"expected {count} answer(s), got {len(responses)}")
    return list(responses)


REASON_KEYS = ("error", "message", "msg", "errorMessage")
MAX_REASON = 200


def exchange_reason(body: bytes) -> str:
    """The exchange's own error text, if the body carries one, cut short and storable."""
    try:
        data = loads_exact(body)
    except errors.Malformed:
        return ""
    if isinstance(data, dict):
        for key in REASON_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value:
                return reason(value)
    return ""


def reason(value: object) -> str:
    """An error text from an envelope field, cut short and storable ("" for none)."""
    if value is None or value is False or value == "":
        return ""
    text = value if isinstance(value, str) else str(value)
    return safe_text(text[:MAX_REASON])


def envelope_error(body: dict[str, Any], where: str) -> None:
    """Raise ``ApiError`` if the envelope says it failed, whatever data it also carries.

    ``{"error": "...", "data": []}`` is a refusal, not an account that holds nothing.
    Empty values (null, false, 0, "", [], {}) are how some APIs say "no error".
    """
    value = body.get("error")
    if value is None or value is False or value in (0, "", [], {}):
        return
    raise errors.ApiError(f"{where}: the answer carries an error: {reason(value)}")


# What PostgreSQL text and JSON refuse (NUL), what UTF-8 cannot encode (lone surrogates,
# from "\ud800" escapes) and what breaks a one-line log entry or a terminal (controls).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def safe_text(value: str) -> str:
    """``value`` with every unstorable or control character written as ``\\uXXXX``."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


MAX_SYMBOL = 64  # the holdings' asset column


def require_symbol(value: Any, where: str) -> str:
    """An asset symbol, upper-cased: printable, no surrounding space, at most 64 characters."""
    text = require_str(value, where)
    symbol = text.upper() if len(text) <= MAX_SYMBOL else text
    if len(symbol) > MAX_SYMBOL or not symbol.isprintable() or symbol != symbol.strip():
        raise errors.SchemaMismatch(f"{where}: {text[:40]!r} is not a usable symbol "
                                    f"(printable, at most {MAX_SYMBOL} characters)")
    return symbol


def json_body(response: RawResponse) -> Any:
    """The body as JSON with exact decimals, after the status check."""
    return loads_exact(response.body)


def expect(condition: bool, message: str) -> None:
    """Raise a schema error unless ``condition`` holds."""
    if not condition:
        raise errors.SchemaMismatch(message)


def require_object(value: Any, where: str) -> dict[str, Any]:
    expect(isinstance(value, dict), f"{where}: expected an object, got {type(value).__name__}")
    result: dict[str, Any] = value
    return result


def require_list(value: Any, where: str) -> list[Any]:
    expect(isinstance(value, list), f"{where}: expected a list, got {type(value).__name__}")
    result: list[Any] = value
    return result


def require_str(value: Any, where: str) -> str:
    expect(isinstance(value, str) and value != "", f"{where}: expected a non-empty string")
    result: str = value
    return result
