"""The sandbox's view of one HTTP exchange, and JSON text with exact decimal numbers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qsl

from aggregator.sandbox.accounts import plain


@dataclass(frozen=True)
class Request:
    """A parsed request; ``path`` and ``query`` are the raw text as received."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query_params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)


@dataclass
class Reply:
    """What to answer, plus what to log about it."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    account: str | None = None
    outcome: str = "ok"
    hang: bool = False  # send nothing; hold the connection open
    chunks: Iterable[bytes] | None = None  # sent chunked instead of body, as made


def dumps(value: object) -> str:
    """Compact JSON where a Decimal is written as its exact number text, never via float."""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("floats are never written by the sandbox; use Decimal")
    return json.dumps(value)


def json_reply(
    status: int,
    value: object,
    *,
    account: str | None = None,
    outcome: str = "ok",
    headers: dict[str, str] | None = None,
) -> Reply:
    return Reply(
        status,
        dumps(value).encode(),
        headers=headers or {},
        account=account,
        outcome=outcome,
    )
