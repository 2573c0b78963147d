"""The BitoPro fake's bench-only tolerance of CCXT's payload (bench/peer_compare.py).

CCXT signs ``{"nonce": ms}`` without the ``identity`` the API documents. The fake refuses
that unless an account opts in with ``ccxt_payload=True``; nothing else is relaxed.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from aggregator.sandbox import FakeAccount, Sandbox
from tests.sandbox.conftest import BITOPRO
from tests.sandbox.signers import bitopro_headers, bitopro_signed_payload, now_ms

KEY, SECRET = BITOPRO.credentials["api_key"], BITOPRO.credentials["api_secret"]


def signed(payload_object: dict[str, object]) -> dict[str, str]:
    payload = base64.b64encode(
        json.dumps(payload_object, separators=(",", ":")).encode()).decode()
    return {"X-BITOPRO-APIKEY": KEY, "X-BITOPRO-PAYLOAD": payload,
            "X-BITOPRO-SIGNATURE": bitopro_signed_payload(SECRET, payload)}


def serve(tolerant: bool) -> Sandbox:
    return Sandbox([replace(copy.deepcopy(BITOPRO), ccxt_payload=tolerant)])


@pytest.fixture(params=[False, True], ids=["strict", "tolerant"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    with serve(request.param) as sb:
        yield sb


def get(sandbox: Sandbox, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(sandbox.base_url("bitopro") + "/accounts/balance", headers=headers,
                     timeout=5)


def tolerant(sandbox: Sandbox) -> bool:
    return sandbox.account(BITOPRO.name).ccxt_payload


def test_off_by_default() -> None:
    account = FakeAccount("a", "bitopro", dict(BITOPRO.credentials), {})
    assert account.ccxt_payload is False


def test_ccxt_form_only_when_opted_in(sandbox: Sandbox) -> None:
    response = get(sandbox, signed({"nonce": now_ms()}))
    if tolerant(sandbox):
        assert response.status_code == 200
        assert sandbox.requests[-1].outcome == "ok"
    else:
        assert (response.status_code, response.json()) == (401, {"error": "Invalid identity"})
        assert sandbox.requests[-1].outcome == "bad_identity"


def test_nothing_else_is_relaxed(sandbox: Sandbox) -> None:
    nonce = now_ms()
    refused = [
        (signed({"nonce": nonce, "extra": 1}), "bad_identity"),
        (signed({"identity": "someone@example.com", "nonce": nonce + 1}), "bad_identity"),
        (signed({"nonce": str(nonce + 2)}), "bad_nonce"),
        (signed({"nonce": nonce - 60_000}), "clock_skew"),
    ]
    for headers, outcome in refused:
        assert get(sandbox, headers).status_code >= 400
        # Strict, none of them gets past the identity check.
        assert sandbox.requests[-1].outcome == (outcome if tolerant(sandbox) else "bad_identity")
    # The documented form still works, and nonces still only go up, whatever the form.
    identity = BITOPRO.credentials["identity"]
    assert get(sandbox, bitopro_headers(KEY, SECRET, identity, nonce + 10)).status_code == 200
    assert get(sandbox, signed({"nonce": nonce + 5})).status_code >= 400


def test_what_ccxt_sends(sandbox: Sandbox) -> None:
    """CCXT's own signing (no network): the fake refuses it unless tolerant."""
    ccxt = pytest.importorskip("ccxt", reason="ccxt is in the bench extra only")
    exchange = ccxt.bitopro({"apiKey": KEY, "secret": SECRET})
    exchange.urls["api"] = {"rest": sandbox.base_url("bitopro")}
    request = exchange.sign("accounts/balance", ["private"], "GET", {})
    assert request["url"] == sandbox.base_url("bitopro") + "/accounts/balance"
    payload = json.loads(base64.b64decode(request["headers"]["X-BITOPRO-PAYLOAD"]))
    assert list(payload) == ["nonce"]
    response = httpx.get(request["url"], headers=request["headers"], timeout=5)
    assert response.status_code == (200 if tolerant(sandbox) else 401)
