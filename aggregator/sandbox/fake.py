"""What one fake exchange declares: where it is served, how it answers, what it serves.

Each exchange module (``bitopro.py``, ...) ends with ``FAKE = Fake(...)``, and
``registry.FAKES`` lists them. The sandbox routes by ``prefix``, the config writer asks
``config_items``; the demo, the tests and the benchmarks take their accounts, and what
the aggregator must make of them, from here, so a new exchange is one module and one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from aggregator.amounts import canonical
from aggregator.sandbox.accounts import FakeAccount, FakeBalance
from aggregator.sandbox.wire import Reply, Request, json_reply

if TYPE_CHECKING:
    from aggregator.sandbox.state import State

# One holding as `aggregator holdings --format json` shows it (the amount columns).
Expected = dict[str, str | None]

# Amounts at the edges of what must stay exact: 18 decimals, and 27 significant digits.
TINY = Decimal("0.000000000000000001")
HUGE = Decimal("123456789.123456789012345678")


@dataclass(frozen=True)
class Fake:
    """One fake exchange. Register it in ``aggregator.sandbox.registry.FAKES``."""

    # The balance source it fakes: its key in ``aggregator.sources.registry.SOURCES``.
    source: str
    # Where it is served on the sandbox's one host: base URL = sandbox URL + prefix.
    prefix: str
    handle: Callable[[State, Request], Reply]
    # The credentials that name an account in a request; unique within the exchange.
    key_fields: tuple[str, ...]
    # The account's credentials as its config table names them, in order; ValueError
    # for an account the fake could never authenticate.
    config_items: Callable[[FakeAccount], list[tuple[str, str]]]
    # The paths after ``prefix`` of one successful poll's requests, in order.
    poll_paths: tuple[str, ...]
    # What `holdings --format json` shows for an account of it (SOURCES.md's mapping).
    expected_holdings: Callable[[FakeAccount], list[Expected]]
    # The exchange's own "try later" refusal, for the ``api_error`` fault.
    api_error: Callable[[FakeAccount, float], Reply]
    # A success answer in the account's own shape whose one amount is this text.
    with_amount: Callable[[FakeAccount, str, float], Reply]
    # The demo's accounts: plausible amounts, one per variant.
    demo_accounts: Callable[[], list[FakeAccount]]
    # The end-to-end tests' accounts: amounts at the edges, the tag in every credential.
    e2e_accounts: Callable[[str], list[FakeAccount]]
    # The kinds of account it has (auth schemes, answer envelopes); ("",) for one kind.
    variants: tuple[str, ...]
    # make(variant, name, tag, amounts): an account of that variant, ``tag`` in every
    # credential (so tags keep accounts apart), one balance line per amount.
    make: Callable[[str, str, str, Sequence[Decimal]], FakeAccount]
    # Request headers of its own that carry a credential (lower case), for the ``echo``
    # fault that reflects them; Authorization is everyone's.
    credential_headers: tuple[str, ...] = ()

    @property
    def poll_marker(self) -> str:
        """The path of a poll's last request: one request there is one poll."""
        return self.prefix + self.poll_paths[-1]


def required(account: FakeAccount, keys: Iterable[str]) -> list[tuple[str, str]]:
    """``(key, value)`` of each of ``keys`` in the credentials; ValueError if one is missing."""
    keys = tuple(keys)
    missing = [k for k in keys if not account.credentials.get(k)]
    if missing:
        raise ValueError(f"{account.name}: missing credentials {', '.join(missing)}")
    return [(k, account.credentials[k]) for k in keys]


def holding(account: FakeAccount, asset: str, kind: str, total: Decimal,
            available: Decimal | None, locked: Decimal | None) -> Expected:
    """One expected holding of ``account``, amounts as canonical text."""
    return {"account": account.name, "source": account.source, "asset": asset, "kind": kind,
            "total": canonical(total),
            "available": None if available is None else canonical(available),
            "locked": None if locked is None else canonical(locked)}


def balances(symbols: Sequence[str], amounts: Sequence[Decimal]) -> dict[str, FakeBalance]:
    """One whole-available balance per amount, on the first ``len(amounts)`` symbols."""
    if len(amounts) > len(symbols):
        raise ValueError(f"at most {len(symbols)} amounts, got {len(amounts)}")
    return {s: FakeBalance(a) for s, a in zip(symbols, amounts, strict=False)}


def parameter_error(account: FakeAccount, now: float) -> Reply:
    """A plain HTTP 400 refusal, for exchanges without an error envelope of their own."""
    return json_reply(400, {"error": "Request parameters mismatch"})
