"""Quintet's fake exchange: GET /v1/wallets with the X-QT-* signature checked strictly."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from decimal import Decimal

from aggregator.sandbox.accounts import FakeAccount, FakeBalance, plain
from aggregator.sandbox.fake import (
    HUGE,
    TINY,
    Expected,
    Fake,
    balances,
    holding,
    parameter_error,
    required,
)
from aggregator.sandbox.faults import fault_reply
from aggregator.sandbox.state import State
from aggregator.sandbox.wire import Reply, Request, json_reply
from tests.fifth.source import WALLETS_PATH, signature, signed_text

PREFIX = "/quintet"
TOLERANCE_MS = 30_000
CREDENTIALS = ("api_key", "api_secret")
SYMBOLS = ("BTC", "ETH", "USDT", "SOL", "ADA")


def _refused(message: str, outcome: str, account: str | None = None) -> Reply:
    return json_reply(401, {"error": message}, account=account, outcome=outcome)


def handle(state: State, request: Request) -> Reply:
    if request.path != PREFIX + WALLETS_PATH or request.method != "GET":
        return json_reply(404, {"error": "Not Found"}, outcome="not_found")
    key, stamp, given = (request.header(h) for h in ("X-QT-KEY", "X-QT-TS", "X-QT-SIGN"))
    if not key or not stamp or not given:
        return _refused("missing signature", "missing_auth")
    account = state.find("quintet", "api_key", key)
    if account is None:
        return _refused("unknown key", "unknown_key")
    expected = signature(account.credentials["api_secret"],
                         signed_text(stamp, request.method, request.path))
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return _refused("bad signature", "bad_signature", account.name)
    if not stamp.isdigit() or abs(int(stamp) - state.clock() * 1000) > TOLERANCE_MS:
        return _refused("clock skew", "clock_skew", account.name)
    fault = state.take_fault(account.name)
    if fault is not None:
        return fault_reply(state, account, fault, state.clock(), request)
    wallets = []
    for coin, balance in state.snapshot(account).items():
        _, available, locked = balance.resolved()
        wallets.append({"coin": coin, "free": plain(available), "frozen": plain(locked)})
    return json_reply(200, {"wallets": wallets}, account=account.name)


def expected_holdings(account: FakeAccount) -> list[Expected]:
    return [holding(account, coin, "crypto", *balance.resolved())
            for coin, balance in account.balances.items()]


def with_amount(account: FakeAccount, amount: str, now: float) -> Reply:
    return json_reply(200, {"wallets": [{"coin": "BTC", "free": amount, "frozen": "0"}]})


def make(variant: str, name: str, tag: str, amounts: Sequence[Decimal]) -> FakeAccount:
    return FakeAccount(name, "quintet",
                       {"api_key": f"{tag}-quintet-key", "api_secret": f"{tag}-quintet-secret"},
                       balances(SYMBOLS, amounts))


def demo_accounts() -> list[FakeAccount]:
    return [make("", "demo-quintet", "demo", [Decimal("0.5"), Decimal("3.25")])]


def e2e_accounts(tag: str) -> list[FakeAccount]:
    return [FakeAccount("qt", "quintet",
                        {"api_key": f"qt-key{tag}", "api_secret": f"qt-secret{tag}"},
                        {"BTC": FakeBalance(HUGE, HUGE - 1), "SOL": FakeBalance(TINY)})]


FAKE = Fake(
    source="quintet",
    prefix=PREFIX,
    handle=handle,
    key_fields=("api_key",),
    config_items=lambda account: required(account, CREDENTIALS),
    poll_paths=(WALLETS_PATH,),
    expected_holdings=expected_holdings,
    api_error=parameter_error,
    with_amount=with_amount,
    demo_accounts=demo_accounts,
    e2e_accounts=e2e_accounts,
    variants=("",),
    make=make,
    credential_headers=("x-qt-key", "x-qt-sign"),
)
