"""BitoPro v3 GET /accounts/balance, with the payload/HMAC-SHA384 headers checked strictly."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

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

PREFIX = "/bitopro/v3"
BALANCE_PATH = PREFIX + "/accounts/balance"
NONCE_TOLERANCE_MS = 30_000


def _error(status: int, message: str, outcome: str, account: str | None = None) -> Reply:
    return json_reply(status, {"error": message}, account=account, outcome=outcome)


def signature(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA384 of the payload header text."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha384).hexdigest()


def decode_payload(payload: str) -> dict[str, Any] | None:
    """The payload's JSON object; None unless standard, canonical base64 of compact JSON."""
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    # validate=True still accepts stray padding bits; re-encoding catches them.
    if base64.b64encode(raw).decode("ascii") != payload:
        return None
    try:
        text = raw.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(value, dict):
        return None
    compact = {
        json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only)
        for ascii_only in (True, False)
    }
    return value if text in compact else None


def handle(state: State, request: Request) -> Reply:
    if request.path != BALANCE_PATH:
        return _error(404, "Resource Not Found", "not_found")
    if request.method != "GET":
        return _error(405, "Method Not Allowed", "bad_method")
    key = request.header("X-BITOPRO-APIKEY")
    payload = request.header("X-BITOPRO-PAYLOAD")
    sign = request.header("X-BITOPRO-SIGNATURE")
    if not key or not payload or not sign:
        return _error(401, "Missing authentication headers", "missing_auth")
    account = state.find("bitopro", "api_key", key)
    if account is None:
        return _error(401, "API key has been deleted", "unknown_key")
    name = account.name
    expected = signature(account.credentials["api_secret"], payload)
    if not hmac.compare_digest(expected.encode(), sign.encode()):
        return _error(401, "Invalid signature", "bad_signature", name)
    body = decode_payload(payload)
    if body is None:
        return _error(400, "Invalid payload", "bad_payload", name)
    ccxt_form = account.ccxt_payload and body.keys() == {"nonce"}
    if body.get("identity") != account.credentials["identity"] and not ccxt_form:
        return _error(401, "Invalid identity", "bad_identity", name)
    nonce = body.get("nonce")
    if isinstance(nonce, bool) or not isinstance(nonce, int):
        return _error(400, "Invalid nonce", "bad_nonce", name)
    if abs(nonce - int(state.clock() * 1000)) > NONCE_TOLERANCE_MS:
        return _error(409, "local machine time mismatch", "clock_skew", name)
    if not state.accept_increasing(key, nonce, name):
        return _error(400, "Invalid nonce", "reused_nonce", name)
    fault = state.take_fault(name)
    if fault is not None:
        return fault_reply(state, account, fault, state.clock(), request)
    return json_reply(200, {"data": balance_rows(state, account)}, account=name)


def balance_rows(state: State, account: FakeAccount) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for currency, balance in state.snapshot(account).items():
        total, available, locked = balance.resolved()
        rows.append(
            {
                "amount": plain(total),
                "available": plain(available),
                "currency": currency,
                "stake": plain(locked),
                "tradable": True,
            }
        )
    return rows


CREDENTIALS = ("api_key", "api_secret", "identity")
SYMBOLS = ("btc", "eth", "usdt", "ltc", "xrp", "twd", "bito", "bnb")


def config_items(account: FakeAccount) -> list[tuple[str, str]]:
    return required(account, CREDENTIALS)


def expected_holdings(account: FakeAccount) -> list[Expected]:
    rows = []
    for asset, balance in account.balances.items():
        total, available, locked = balance.resolved()
        symbol = asset.upper()
        rows.append(holding(account, symbol, "fiat" if symbol == "TWD" else "crypto",
                            total, available, locked))
    return rows


def with_amount(account: FakeAccount, amount: str, now: float) -> Reply:
    return json_reply(200, {"data": [{"currency": "btc", "amount": amount, "available": "0"}]})


def demo_accounts() -> list[FakeAccount]:
    return [FakeAccount(
        name="demo-bitopro",
        source="bitopro",
        credentials={
            "api_key": "demo-bitopro-key-4c1e9a",
            "api_secret": "demo-bitopro-secret-8b2f71d0",
            "identity": "demo@example.com",
        },
        balances={
            "btc": FakeBalance(Decimal("0.04815162"), Decimal("0.04015162")),
            "eth": FakeBalance(Decimal("1.25030000")),
            "twd": FakeBalance(Decimal("152340"), Decimal("150000")),
            "bito": FakeBalance(Decimal("10001.5"), Decimal("1.5"), Decimal("10000")),
        },
    )]


def e2e_accounts(tag: str) -> list[FakeAccount]:
    return [FakeAccount(
        "bp", "bitopro",
        {"api_key": f"bp-key{tag}", "api_secret": f"bp-secret{tag}", "identity": "me@example.com"},
        {"btc": FakeBalance(HUGE, available=HUGE - 1), "eth": FakeBalance(TINY),
         "twd": FakeBalance(Decimal("152340.5"))},
    )]


def make(variant: str, name: str, tag: str, amounts: Sequence[Decimal]) -> FakeAccount:
    return FakeAccount(
        name, "bitopro",
        {"api_key": f"{tag}-bitopro-key", "api_secret": f"{tag}-bitopro-secret",
         "identity": f"{tag}@example.com"},
        balances(SYMBOLS, amounts),
    )


FAKE = Fake(
    source="bitopro",
    prefix=PREFIX,
    handle=handle,
    key_fields=("api_key",),
    config_items=config_items,
    poll_paths=(BALANCE_PATH.removeprefix(PREFIX),),
    expected_holdings=expected_holdings,
    api_error=parameter_error,
    with_amount=with_amount,
    demo_accounts=demo_accounts,
    e2e_accounts=e2e_accounts,
    variants=("",),
    make=make,
    credential_headers=("x-bitopro-apikey", "x-bitopro-signature"),
)
