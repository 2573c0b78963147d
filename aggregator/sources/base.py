"""What a source module declares: its account config, its requests, its auth, its parser."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
    """One balance API. Register an instance in ``aggregator.sources.SOURCES``."""

    name: str
    config: type[C]
    # None means the base URL is per customer and must be configured.
    default_base_url: str | None
    auth: Callable[[C], httpx.Auth]
    # The requests of one poll, unsigned, in the order they are sent.
    requests: Callable[[C], list[httpx.Request]]
    # Pure: the answers of one poll to holdings; raises a SourceError subclass.
    parse: Callable[[Sequence[RawResponse]], list[Holding]]


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
    reason = _short_reason(response.body)
    message = f"HTTP {status} from {response.endpoint}" + (f": {reason}" if reason else "")
    if status == 429:
        raise errors.RateLimited(message, retry_after=response.retry_after)
    table = {**_GENERIC_STATUS, **(specific or {})}
    if status in table:
        raise table[status](message)
    if status >= 500:
        raise errors.ServerError(message)
    raise errors.ApiError(message, code=status)


def _short_reason(body: bytes) -> str:
    """The exchange's own error text, if the body carries one, cut short."""
    try:
        data = loads_exact(body)
    except errors.Malformed:
        return ""
    if isinstance(data, dict):
        for key in ("error", "message", "msg", "errorMessage"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:200]
    return ""


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
