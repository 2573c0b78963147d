from __future__ import annotations

import base64
import json

import httpx

from aggregator.sandbox import FakeAccount, Sandbox
from aggregator.sandbox.bitopro import signature
from tests.sandbox.signers import bitopro_headers, bitopro_signed_payload, now_ms

KEY, SECRET, IDENTITY = "bp-key", "bp-secret", "me@example.com"


def balance(sandbox: Sandbox, client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return client.get(sandbox.base_url("bitopro") + "/accounts/balance", headers=headers)


def test_seed_known_answer() -> None:
    payload = "eyJpZGVudGl0eSI6ImhjbWxpbmpAZ21haWwuY29tIiwibm9uY2UiOjE1NTQzODA5MDkxMzF9"
    assert signature("bitopro", payload) == (
        "01a85a9083db47c20da7196380598f3feacd3c76a9077aaf7ffaf08ce0091abf"
        "65b61778792607b010921adfe1c2941a"
    )


def test_signed_request_is_answered_exactly(sandbox: Sandbox, client: httpx.Client) -> None:
    response = balance(sandbox, client, bitopro_headers(KEY, SECRET, IDENTITY, now_ms()))
    assert response.status_code == 200
    assert response.json() == {
        "data": [
            {"amount": "0.000000000000000001", "available": "0.000000000000000001",
             "currency": "btc", "stake": "0.000000000000000000", "tradable": True},
            {"amount": "123456789.123456789012345678", "available": "100",
             "currency": "twd", "stake": "123456689.123456789012345678", "tradable": True},
            {"amount": "10001", "available": "1.0", "currency": "bito", "stake": "10000",
             "tradable": True},
        ]
    }
    assert sandbox.requests[-1].account == "bp"
    assert sandbox.requests[-1].outcome == "ok"


def test_missing_headers_401(sandbox: Sandbox, client: httpx.Client) -> None:
    headers = bitopro_headers(KEY, SECRET, IDENTITY, now_ms())
    del headers["X-BITOPRO-SIGNATURE"]
    assert balance(sandbox, client, headers).status_code == 401


def test_wrong_signature_401(sandbox: Sandbox, client: httpx.Client) -> None:
    response = balance(sandbox, client, bitopro_headers(KEY, "not-the-secret", IDENTITY, now_ms()))
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid signature"}


def test_uppercase_signature_refused(sandbox: Sandbox, client: httpx.Client) -> None:
    headers = bitopro_headers(KEY, SECRET, IDENTITY, now_ms())
    headers["X-BITOPRO-SIGNATURE"] = headers["X-BITOPRO-SIGNATURE"].upper()
    assert balance(sandbox, client, headers).status_code == 401


def test_unknown_key_401(sandbox: Sandbox, client: httpx.Client) -> None:
    response = balance(sandbox, client, bitopro_headers("who", SECRET, IDENTITY, now_ms()))
    assert response.status_code == 401


def test_wrong_identity_refused(sandbox: Sandbox, client: httpx.Client) -> None:
    response = balance(sandbox, client, bitopro_headers(KEY, SECRET, "x@example.com", now_ms()))
    assert response.status_code == 401


def test_stale_nonce_409(sandbox: Sandbox, client: httpx.Client) -> None:
    response = balance(sandbox, client, bitopro_headers(KEY, SECRET, IDENTITY, now_ms() - 31_000))
    assert response.status_code == 409
    assert response.json() == {"error": "local machine time mismatch"}


def test_reused_and_lower_nonce_400(sandbox: Sandbox, client: httpx.Client) -> None:
    nonce = now_ms()
    def send(n: int) -> httpx.Response:
        return balance(sandbox, client, bitopro_headers(KEY, SECRET, IDENTITY, n))

    assert send(nonce).status_code == 200
    again = send(nonce)
    assert again.status_code == 400
    assert again.json() == {"error": "Invalid nonce"}
    assert send(nonce - 1).status_code == 400
    assert send(nonce + 1).status_code == 200
    assert sandbox.accepted_nonces("bp") == [str(nonce), str(nonce + 1)]


def _signed(payload: str, key: str = KEY) -> dict[str, str]:
    return {
        "X-BITOPRO-APIKEY": key,
        "X-BITOPRO-PAYLOAD": payload,
        "X-BITOPRO-SIGNATURE": bitopro_signed_payload(SECRET, payload),
    }


def test_urlsafe_base64_refused(sandbox: Sandbox, client: httpx.Client) -> None:
    # Tildes make the standard encoding carry "+", so the url-safe one differs ("-").
    tilde = FakeAccount("tilde", "bitopro", {"api_key": "t-key", "api_secret": SECRET,
                        "identity": "~~~~~~@example.com"}, {})
    sandbox.add(tilde)
    text = json.dumps({"identity": "~~~~~~@example.com", "nonce": now_ms()}, separators=(",", ":"))
    standard = base64.b64encode(text.encode()).decode()
    urlsafe = base64.urlsafe_b64encode(text.encode()).decode()
    assert standard != urlsafe
    assert balance(sandbox, client, _signed(urlsafe, "t-key")).status_code == 400
    assert balance(sandbox, client, _signed(standard, "t-key")).status_code == 200


def test_bad_padding_and_loose_json_refused(sandbox: Sandbox, client: httpx.Client) -> None:
    text = json.dumps({"identity": IDENTITY, "nonce": now_ms()}, separators=(",", ":"))
    payload = base64.b64encode(text.encode()).decode().rstrip("=")
    if len(text) % 3:
        assert balance(sandbox, client, _signed(payload)).status_code == 400
    spaced = base64.b64encode(json.dumps({"identity": IDENTITY, "nonce": now_ms()}).encode())
    assert balance(sandbox, client, _signed(spaced.decode())).status_code == 400


def test_string_nonce_refused(sandbox: Sandbox, client: httpx.Client) -> None:
    text = json.dumps({"identity": IDENTITY, "nonce": str(now_ms())}, separators=(",", ":"))
    payload = base64.b64encode(text.encode()).decode()
    assert balance(sandbox, client, _signed(payload)).status_code == 400
