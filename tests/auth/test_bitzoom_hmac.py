"""Bitzoom HMAC-SHA256: the published known answers and the path and query as sent."""

from __future__ import annotations

import httpx
import pytest

from aggregator.auth.bitzoom_hmac import (
    BitzoomHmacAuth,
    canonical_query,
    signature,
    string_to_sign,
)
from aggregator.model import Secret
from aggregator.sources.base import endpoint_url
from tests.auth.conftest import Loopback, Reply, Seen

SECRET = "demo_secret_7f3b9c2d"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

VECTORS = [
    (1712345678901, "nonce-query-001", 5000, "GET", "/api/v1/orders",
     "symbol=BTCUSDT&status=OPEN&symbol=ETHUSDT&note=a+b", b"",
     "d22824629e10376a6f57a6bf070c31a775cd8b2f79c074aff47c64f99fbb3bfe"),
    (1712345678902, "nonce-body-002", 5000, "POST", "/api/v1/order", "",
     b'{"symbol":"BTCUSDT","side":"BUY","quantity":"0.001"}',
     "8ee420956fa04a933228405e2309d758deac840e27775b79327781622cd8b4ac"),
    (1712345678903, "nonce-window-003", None, "GET", "/api/v1/balance", "asset=USDT", b"",
     "5ea342a4c52796528777d9bc1e81425e4ec89e913df342dcca2faad52a8c19ba"),
    (1712345678904, "nonce-ws-004", 5000, "WS", "/ws", "", b"",
     "bf722fcb6a09c94e9edd249d09f22be0ca5870f5de13b9eee2ac59de2fb8a8f4"),
    (1712345678905, "nonce-sort-005", 5000, "GET", "/api/v1/orders", "b=2&a=1&a=0", b"",
     "6f011cb43681f5b2043510af103ce3f1f2c56766fdc1bb80b093c8293e2a1502"),
]


@pytest.mark.parametrize(
    ("timestamp", "nonce", "window", "method", "path", "query", "body", "expected"), VECTORS
)
def test_known_answers(
    timestamp: int, nonce: str, window: int | None, method: str, path: str, query: str,
    body: bytes, expected: str,
) -> None:
    text = string_to_sign(timestamp, nonce, window, method, path, query, body)
    assert signature(SECRET, text) == expected


def test_string_to_sign_lines() -> None:
    text = string_to_sign(1712345678903, "n", None, "get", "/api/v1/balance", "asset=USDT", b"")
    assert text == f"1712345678903\nn\n\nGET\n/api/v1/balance\nasset=USDT\n{EMPTY_SHA256}"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("b=2&a=1&a=0", "a=0&a=1&b=2"),
        ("symbol=BTCUSDT&status=OPEN&symbol=ETHUSDT&note=a+b",
         "note=a+b&status=OPEN&symbol=BTCUSDT&symbol=ETHUSDT"),
        ("x=&flag&y=1", "flag=&x=&y=1"),
        ("q=a%20b&r=%40", "q=a+b&r=%40"),
        ("", ""),
    ],
)
def test_canonical_query(raw: str, canonical: str) -> None:
    assert canonical_query(raw) == canonical


def fixed(window: int | None = 5000) -> BitzoomHmacAuth:
    return BitzoomHmacAuth(Secret("key-1"), Secret(SECRET), recv_window=window,
                           clock=lambda: 1712345678.9051, nonce=lambda: "nonce-x")


def test_flow_signs_the_path_with_the_base_url_prefix() -> None:
    url = endpoint_url("http://127.0.0.1:1/bitzoom", "/api/v1/balance") + "?AssetID=USDT"
    sent = next(fixed().sync_auth_flow(httpx.Request("GET", url)))
    expected = signature(SECRET, string_to_sign(
        1712345678905, "nonce-x", 5000, "GET", "/bitzoom/api/v1/balance", "AssetID=USDT", b""))
    assert sent.headers["X-BZ-SIGNATURE"] == expected
    assert sent.headers["X-BZ-APIKEY"] == "key-1"
    assert sent.headers["X-BZ-TIMESTAMP"] == "1712345678905"
    assert sent.headers["X-BZ-NONCE"] == "nonce-x"
    assert sent.headers["X-BZ-RECVWINDOW"] == "5000"


def test_flow_without_recv_window_omits_the_header() -> None:
    sent = next(fixed(None).sync_auth_flow(httpx.Request("GET", "http://h/api/v1/balance")))
    assert "X-BZ-RECVWINDOW" not in sent.headers
    expected = signature(SECRET, string_to_sign(
        1712345678905, "nonce-x", None, "GET", "/api/v1/balance", "", b""))
    assert sent.headers["X-BZ-SIGNATURE"] == expected


def test_flow_signs_the_body_bytes() -> None:
    body = b'{"symbol":"BTCUSDT"}'
    sent = next(fixed().sync_auth_flow(httpx.Request("POST", "http://h/api/v1/order",
                                                     content=body)))
    expected = signature(SECRET, string_to_sign(
        1712345678905, "nonce-x", 5000, "POST", "/api/v1/order", "", body))
    assert sent.headers["X-BZ-SIGNATURE"] == expected


def test_nonces_are_fresh() -> None:
    auth = BitzoomHmacAuth(Secret("k"), Secret(SECRET))
    nonces = {next(auth.sync_auth_flow(httpx.Request("GET", "http://h/x"))).headers["X-BZ-NONCE"]
              for _ in range(5)}
    assert len(nonces) == 5


def verify(seen: Seen) -> Reply:
    """Check the signature against the request line that actually arrived."""
    h = seen.headers
    text = string_to_sign(int(h["x-bz-timestamp"]), h["x-bz-nonce"],
                          int(h["x-bz-recvwindow"]), seen.method, seen.path, seen.query,
                          seen.body)
    ok = h["x-bz-signature"] == signature(SECRET, text)
    return Reply(200, b'{"code":0,"data":[]}' if ok else b'{"code":-1022,"msg":"bad sig"}')


async def test_server_accepts_what_the_async_client_sends(loopback: Loopback) -> None:
    loopback.route("/bitzoom/api/v1/balance", verify)
    auth = BitzoomHmacAuth(Secret("key-1"), Secret(SECRET))
    url = endpoint_url(loopback.base_url + "/bitzoom/", "/api/v1/balance")
    async with httpx.AsyncClient() as client:
        answer = await client.get(url, params={"AssetID": "USDT", "note": "a b"}, auth=auth)
    assert answer.json()["code"] == 0
    (seen,) = loopback.seen
    assert seen.target == "/bitzoom/api/v1/balance?AssetID=USDT&note=a+b"


def test_server_accepts_what_the_sync_client_sends(loopback: Loopback) -> None:
    loopback.route("/api/v1/balance", verify)
    auth = BitzoomHmacAuth(Secret("key-1"), Secret(SECRET))
    with httpx.Client() as client:
        answer = client.get(loopback.base_url + "/api/v1/balance?b=2&a=1&a=0", auth=auth)
    assert answer.json()["code"] == 0
