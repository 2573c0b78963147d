"""Bitz MD5 sign over sorted raw parameters, and the form body that is actually sent."""

from __future__ import annotations

import hashlib
import string
from urllib.parse import parse_qsl

import httpx
import pytest

from aggregator.auth.bitz import BitzAuth, random_nonce, sign
from aggregator.model import Secret
from tests.auth.conftest import Loopback, Reply, Seen

FORM = "application/x-www-form-urlencoded"
PATH = "/Assets/getUserAssets"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def unsigned(url: str = "http://127.0.0.1:1" + PATH, body: bytes = b"") -> httpx.Request:
    # As aggregator.sources.bitz builds it.
    return httpx.Request("POST", url, headers={"Content-Type": FORM}, content=body)


def auth() -> BitzAuth:
    return BitzAuth(Secret("abc"), Secret("mysecret"), clock=lambda: 1554380909.75,
                    nonce=lambda: "Ab12Cd")


def test_sign_matches_hand_written_preimage() -> None:
    params = {"timeStamp": "1554380909", "nonce": "Ab12Cd", "apiKey": "abc"}
    assert sign(params, "mysecret") == md5("apiKey=abc&nonce=Ab12Cd&timeStamp=1554380909mysecret")


def test_sign_leaves_out_sign_and_sorts_by_bytes() -> None:
    # Byte order puts upper case first: "Zone" < "apiKey".
    params = {"apiKey": "abc", "sign": "old", "Zone": "1", "id": "302221"}
    assert sign(params, "k") == md5("Zone=1&apiKey=abc&id=302221k")


def test_sign_uses_raw_values_not_url_encoded() -> None:
    params = {"apiKey": "abc", "note": "a b@c&d"}
    assert sign(params, "k") == md5("apiKey=abc&note=a b@c&dk")


def test_seed_example_in_sorted_order() -> None:
    # The seed's parameters and secret; its own string is unsorted, its text says sorted.
    params = {"apiKey": "376892265asdad5d12726d8bbfbd8912b3", "id": "302221",
              "timeStamp": "1510235730", "nonce": "309127"}
    secret = "aQmE8U7bxj16KdJcSd3yX8F8Sakd8aO6LopnHXh27d4kWyb28PxcaTvGrajLDvAw"
    assert sign(params, secret) == md5(
        "apiKey=376892265asdad5d12726d8bbfbd8912b3&id=302221&nonce=309127&timeStamp=1510235730"
        + secret
    )


def test_random_nonce_is_six_letters_or_digits() -> None:
    nonces = {random_nonce() for _ in range(50)}
    assert len(nonces) > 1
    for nonce in nonces:
        assert len(nonce) == 6 and set(nonce) <= set(string.ascii_letters + string.digits)


def test_body_of_the_signed_request() -> None:
    sent = next(auth().sync_auth_flow(unsigned()))
    expected_sign = md5("apiKey=abc&nonce=Ab12Cd&timeStamp=1554380909mysecret")
    body = f"apiKey=abc&timeStamp=1554380909&nonce=Ab12Cd&sign={expected_sign}".encode()
    assert sent.content == body
    assert sent.headers["Content-Type"] == FORM
    assert sent.headers["Content-Length"] == str(len(body))
    assert sent.method == "POST" and sent.url.path == PATH


def test_existing_form_fields_are_signed_raw_and_sent_encoded() -> None:
    request = unsigned(body=b"id=302221&note=a+b%40c")
    request.extensions["timeout"] = {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}
    sent = next(auth().sync_auth_flow(request))
    expected_sign = md5("apiKey=abc&id=302221&nonce=Ab12Cd&note=a b@c&timeStamp=1554380909mysecret")
    assert sent.content == (
        b"id=302221&note=a+b%40c&apiKey=abc&timeStamp=1554380909&nonce=Ab12Cd&sign="
        + expected_sign.encode()
    )
    assert sent.headers["Content-Length"] == str(len(sent.content))
    assert sent.extensions["timeout"] == request.extensions["timeout"]


def test_refuses_a_body_that_is_not_a_form() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:1/x", json={"a": 1})
    with pytest.raises(ValueError, match="form bodies only"):
        next(auth().sync_auth_flow(request))


def server_check(seen: Seen) -> Reply:
    """Recompute the sign from the bytes that arrived, as the exchange would."""
    assert seen.headers["content-type"] == FORM
    params = dict(parse_qsl(seen.body.decode(), keep_blank_values=True))
    ok = params.pop("sign") == sign(params, "mysecret") and params["apiKey"] == "abc"
    return Reply(200, b'{"status":200}' if ok else b'{"status":-105}')


async def test_async_client_sends_the_signed_body(loopback: Loopback) -> None:
    loopback.route(PATH, server_check)
    async with httpx.AsyncClient() as client:
        answer = await client.send(unsigned(loopback.base_url + PATH, b"note=a+b%40c"),
                                   auth=auth())
    assert answer.json() == {"status": 200}
    (seen,) = loopback.hits(PATH)
    assert seen.body.startswith(b"note=a+b%40c&apiKey=abc&timeStamp=1554380909&nonce=Ab12Cd&")
    assert seen.headers["content-length"] == str(len(seen.body))


def test_sync_client_sends_the_signed_body(loopback: Loopback) -> None:
    loopback.route(PATH, server_check)
    real = BitzAuth(Secret("abc"), Secret("mysecret"))  # real clock and nonces
    with httpx.Client() as client:
        answer = client.send(unsigned(loopback.base_url + PATH), auth=real)
    assert answer.json() == {"status": 200}
