"""What the sandbox serves: fake accounts, their balance lines, and the request log."""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from decimal import Decimal

# Amounts carry up to ~40 significant digits in tests; the default context (28) would round.
EXACT = decimal.Context(prec=200)


@dataclass
class FakeBalance:
    """One asset line of an account."""

    total: Decimal
    available: Decimal | None = None  # None: the whole total is available
    locked: Decimal | None = None  # None: total - available

    def resolved(self) -> tuple[Decimal, Decimal, Decimal]:
        """(total, available, locked) with the defaults filled in."""
        available = self.total if self.available is None else self.available
        locked = EXACT.subtract(self.total, available) if self.locked is None else self.locked
        return self.total, available, locked


@dataclass
class FakeAccount:
    """One account at one fake exchange; ``name`` is also the aggregator account name."""

    name: str
    source: str
    credentials: dict[str, str]
    balances: dict[str, FakeBalance]
    cash: Decimal = Decimal(0)  # pitrade only
    currency: str = "USD"  # pitrade only
    cost_basis: dict[str, Decimal] = field(default_factory=dict)  # pitrade only
    envelope: str = "code"  # bitzoom only: "code" or "success"
    # bitopro only, for bench/peer_compare.py only: also take CCXT's payload, which signs
    # {"nonce"} without the documented identity. Off, that payload is refused.
    ccxt_payload: bool = False


@dataclass(frozen=True)
class RequestLog:
    """One answered (or hung) request.

    ``outcome`` is "ok", "token" (a test token issued), "fault:<kind>", or why it was
    refused: missing_auth, unknown_key, unknown_user, bad_signature, bad_token,
    bad_payload, bad_identity, bad_nonce, reused_nonce, clock_skew, expired_token,
    bad_lifetime, missing_param, bad_param, bad_method, not_found, bad_request, crash.
    """

    time: float  # time.monotonic() when the request arrived
    account: str | None  # None until a credential names the account
    path: str  # without the query, which may carry a credential
    status: int  # 0 for a request that was never answered
    outcome: str  # "ok", "fault:<kind>", or the reason for refusing


def plain(amount: Decimal) -> str:
    """Decimal text without exponent, keeping the digits as given (1E-18 → 0.000…1)."""
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount}")
    return format(amount, "f")
