"""The values that flow from a source to storage: secrets, raw responses, holdings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypeAlias

# Extra per-holding facts a source gives (stake, cost basis, valuation...). Decimals are
# kept as canonical strings so the mapping serializes to JSON without floats.
Detail: TypeAlias = str | bool | int | None
Details: TypeAlias = Mapping[str, Detail]


class Secret:
    """A credential whose value never shows in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class Kind(StrEnum):
    CRYPTO = "crypto"
    FIAT = "fiat"
    STOCK = "stock"


@dataclass(frozen=True, slots=True)
class Holding:
    """One asset held by one account, as one poll saw it."""

    asset: str
    kind: Kind
    total: Decimal
    available: Decimal | None
    locked: Decimal | None
    details: Details = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RawResponse:
    """One HTTP answer of a poll, kept byte for byte for diagnosis and re-parsing."""

    endpoint: str  # the request path relative to the base URL, e.g. "/accounts/balance"
    status: int
    body: bytes
    content_type: str | None = None
    retry_after: float | None = None  # seconds, from a Retry-After header


@dataclass(frozen=True, slots=True)
class PollRecord:
    """Everything one poll of one account produced, written in one transaction."""

    account: str
    source: str
    started_at: datetime  # aware, UTC
    finished_at: datetime  # aware, UTC; when the last answer arrived
    holdings: Sequence[Holding] | None  # None when the poll failed
    responses: Sequence[RawResponse] = ()
    error_kind: str | None = None
    error_message: str | None = None
    attempts: int = 1

    @property
    def status(self) -> str:
        return "ok" if self.error_kind is None else "failed"
