from __future__ import annotations

import time

import httpx

from aggregator.sandbox import Sandbox
from tests.sandbox.signers import bitz_form

KEY, SECRET = "bz-key", "bz-secret"


def post(sandbox: Sandbox, client: httpx.Client, form: dict[str, str]) -> httpx.Response:
    return client.post(sandbox.base_url("bitz") + "/Assets/getUserAssets", data=form)


def test_signed_request_is_answered_exactly(sandbox: Sandbox, client: httpx.Client) -> None:
    response = post(sandbox, client, bitz_form(KEY, SECRET))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 200
    assert body["msg"] == ""
    assert body["source"] == "api"
    assert isinstance(body["time"], int)
    fraction, seconds = body["microtime"].split()
    assert int(seconds) == body["time"] and len(fraction) == 10
    info = body["data"]["info"]
    assert info == [
        {"name": "btc", "num": "0.5", "over": "0.4", "lock": "0.1",
         "btc": "0.50000000", "usd": "32500.00000000", "cny": "234000.00000000"},
        {"name": "usdt", "num": "123456789.123456789012345678",
         "over": "123456789.123456789012345678", "lock": "0.000000000000000000",
         "btc": "1899.33521728", "usd": "123456789.12345679", "cny": "888888881.68888889"},
    ]
    assert body["data"]["usd"] == "123489289.12345679"


def test_raw_values_are_signed_not_encoded(sandbox: Sandbox, client: httpx.Client) -> None:
    # An extra field with characters that form-encoding changes: signed over the raw text.
    form = bitz_form(KEY, SECRET, nonce="Zz9yY8", memo="a b&c=d")
    assert post(sandbox, client, form).json()["status"] == 200


def test_wrong_signature(sandbox: Sandbox, client: httpx.Client) -> None:
    body = post(sandbox, client, bitz_form(KEY, "wrong")).json()
    assert body["status"] == -105
    assert body["data"] is None


def test_unknown_key(sandbox: Sandbox, client: httpx.Client) -> None:
    assert post(sandbox, client, bitz_form("nobody", SECRET)).json()["status"] == -109


def test_missing_param(sandbox: Sandbox, client: httpx.Client) -> None:
    form = bitz_form(KEY, SECRET)
    del form["nonce"]
    response = post(sandbox, client, form)
    assert response.status_code == 200
    assert response.json()["status"] == -102


def test_bad_nonce_shape(sandbox: Sandbox, client: httpx.Client) -> None:
    for nonce in ("abc", "abcdefg", "ab-def"):
        assert post(sandbox, client, bitz_form(KEY, SECRET, nonce=nonce)).json()["status"] == -102


def test_stale_timestamp(sandbox: Sandbox, client: httpx.Client) -> None:
    form = bitz_form(KEY, SECRET, timestamp=int(time.time()) - 31)
    assert post(sandbox, client, form).json()["status"] == -103


def test_reused_nonce(sandbox: Sandbox, client: httpx.Client) -> None:
    assert post(sandbox, client, bitz_form(KEY, SECRET, nonce="q1w2e3")).json()["status"] == 200
    assert post(sandbox, client, bitz_form(KEY, SECRET, nonce="q1w2e3")).json()["status"] == -103
    assert post(sandbox, client, bitz_form(KEY, SECRET, nonce="q1w2e4")).json()["status"] == 200


def test_json_body_refused(sandbox: Sandbox, client: httpx.Client) -> None:
    response = client.post(
        sandbox.base_url("bitz") + "/Assets/getUserAssets", json=bitz_form(KEY, SECRET)
    )
    assert response.json()["status"] == -102
