from __future__ import annotations

import json
import time

import httpx
import pytest

from aggregator.sandbox import Sandbox
from aggregator.sandbox.bitzoom import canonical_query, hmac_signature, signed_text
from tests.sandbox.conftest import fresh_accounts
from tests.sandbox.signers import bitzoom_hmac_headers, bitzoom_signature, now_ms

KEY, SECRET = "zh-key", "zh-secret"
BALANCE = "/bitzoom/api/v1/balance"
VECTOR_SECRET = "demo_secret_7f3b9c2d"


@pytest.mark.parametrize(
    ("timestamp", "nonce", "window", "method", "path", "query", "body", "expected"),
    [
        ("1712345678901", "nonce-query-001", "5000", "GET", "/api/v1/orders",
         "symbol=BTCUSDT&status=OPEN&symbol=ETHUSDT&note=a+b", b"",
         "d22824629e10376a6f57a6bf070c31a775cd8b2f79c074aff47c64f99fbb3bfe"),
        ("1712345678902", "nonce-body-002", "5000", "POST", "/api/v1/order", "",
         b'{"symbol":"BTCUSDT","side":"BUY","quantity":"0.001"}',
         "8ee420956fa04a933228405e2309d758deac840e27775b79327781622cd8b4ac"),
        ("1712345678903", "nonce-window-003", "", "GET", "/api/v1/balance", "asset=USDT", b"",
         "5ea342a4c52796528777d9bc1e81425e4ec89e913df342dcca2faad52a8c19ba"),
        ("1712345678904", "nonce-ws-004", "5000", "WS", "/ws", "", b"",
         "bf722fcb6a09c94e9edd249d09f22be0ca5870f5de13b9eee2ac59de2fb8a8f4"),
        ("1712345678905", "nonce-sort-005", "5000", "GET", "/api/v1/orders", "b=2&a=1&a=0", b"",
         "6f011cb43681f5b2043510af103ce3f1f2c56766fdc1bb80b093c8293e2a1502"),
    ],
)
def test_known_answers(
    timestamp: str, nonce: str, window: str, method: str, path: str, query: str, body: bytes,
    expected: str,
) -> None:
    text = signed_text(timestamp, nonce, window, method, path, query, body)
    assert hmac_signature(VECTOR_SECRET, text) == expected
    # The test's own signer agrees, so the e2e checks below test something.
    assert bitzoom_signature(
        VECTOR_SECRET, timestamp, nonce, window, method, path, query, body
    ) == expected


def test_canonical_query_keeps_blanks_and_duplicates() -> None:
    assert canonical_query("b=2&a=1&a=0&c=&d=x y") == "a=0&a=1&b=2&c=&d=x+y"


# bearer


def get_token(sandbox: Sandbox, client: httpx.Client, user_id: str = "user-42") -> httpx.Response:
    return client.get(
        sandbox.url + "/bitzoom/api/servermanage/testtoken", params={"userid": user_id}
    )


def test_token_then_balance(sandbox: Sandbox, client: httpx.Client) -> None:
    answer = get_token(sandbox, client).json()
    assert answer["code"] == 0
    token = answer["data"]["token"]
    response = client.get(sandbox.url + BALANCE, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {
        "code": 0,
        "msg": "success",
        "data": [
            {"asset": "USDT", "walletBalance": "1000.5", "availableBalance": "900.5",
             "unrealizedProfit": "0", "marginBalance": "1000.5"}
        ],
    }


@pytest.mark.parametrize("form", ["text", "json_string", "data_string", "data_token", "top_token"])
def test_token_forms(sandbox: Sandbox, client: httpx.Client, form: str) -> None:
    sandbox.set_token_form(form)
    response = get_token(sandbox, client)
    if form == "text":
        token = response.text
        assert response.headers["content-type"].startswith("text/plain")
    else:
        body = json.loads(response.text)
        token = {
            "json_string": lambda: body,
            "data_string": lambda: body["data"],
            "data_token": lambda: body["data"]["token"],
            "top_token": lambda: body["token"],
        }[form]()
    assert token.count(".") == 2
    ok = client.get(sandbox.url + BALANCE, headers={"Authorization": f"Bearer {token}"})
    assert ok.json()["code"] == 0


def test_unknown_user(sandbox: Sandbox, client: httpx.Client) -> None:
    assert get_token(sandbox, client, "nobody").json() == {
        "code": -1002, "msg": "Unauthorized", "data": None
    }


def test_missing_authorization_401(sandbox: Sandbox, client: httpx.Client) -> None:
    assert client.get(sandbox.url + BALANCE).status_code == 401


def test_forged_token_1022(sandbox: Sandbox, client: httpx.Client) -> None:
    import jwt

    claims = {"userid": "user-42", "iat": 1, "exp": 2**40}
    forged = jwt.encode(claims, "guess-0123456789abcdef0123456789ab", algorithm="HS256")
    for token in (forged, "not-a-jwt"):
        response = client.get(sandbox.url + BALANCE, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.json()["code"] == -1022


def test_expire_tokens(sandbox: Sandbox, client: httpx.Client) -> None:
    old = sandbox.issue_token("user-42")
    sandbox.expire_tokens()
    response = client.get(sandbox.url + BALANCE, headers={"Authorization": f"Bearer {old}"})
    assert response.json() == {"code": -1002, "msg": "Unauthorized", "data": None}
    new = get_token(sandbox, client).json()["data"]["token"]
    response = client.get(sandbox.url + BALANCE, headers={"Authorization": f"Bearer {new}"})
    assert response.json()["code"] == 0


def test_token_ttl_expiry(client: httpx.Client) -> None:
    with Sandbox(fresh_accounts(), token_ttl=0.3) as sandbox:
        token = sandbox.issue_token("user-42")
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get(sandbox.url + BALANCE, headers=headers).json()["code"] == 0
        time.sleep(0.4)
        assert client.get(sandbox.url + BALANCE, headers=headers).json()["code"] == -1002


# hmac


def signed_get(
    sandbox: Sandbox,
    client: httpx.Client,
    query: str = "",
    *,
    nonce: str = "n-0001",
    timestamp: int | None = None,
    recv_window: str | None = "5000",
) -> httpx.Response:
    headers = bitzoom_hmac_headers(
        KEY,
        SECRET,
        path=BALANCE,
        query=query,
        nonce=nonce,
        timestamp=timestamp,
        recv_window=recv_window,
    )
    url = sandbox.url + BALANCE + (f"?{query}" if query else "")
    return client.get(url, headers=headers)


def test_hmac_balance_success_envelope(sandbox: Sandbox, client: httpx.Client) -> None:
    response = signed_get(sandbox, client)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["errorCode"] == 200
    assert set(body) == {
        "traceid", "errorCode", "errorMessage", "success", "duration", "data", "host", "showType"
    }
    assert body["data"] == [
        {"asset": "USDT", "walletBalance": "0.000000000000000001",
         "availableBalance": "0.000000000000000001", "unrealizedProfit": "0",
         "marginBalance": "0.000000000000000001"},
        {"asset": "ETH", "walletBalance": "2", "availableBalance": "2",
         "unrealizedProfit": "0", "marginBalance": "2"},
    ]


def test_hmac_with_query_and_no_window(sandbox: Sandbox, client: httpx.Client) -> None:
    response = signed_get(sandbox, client, query="AssetID=ETH", nonce="n-q", recv_window=None)
    assert [row["asset"] for row in response.json()["data"]] == ["ETH"]


def test_hmac_wrong_signature(sandbox: Sandbox, client: httpx.Client) -> None:
    headers = bitzoom_hmac_headers(KEY, "wrong", path=BALANCE)
    body = client.get(sandbox.url + BALANCE, headers=headers).json()
    assert body["success"] is False and body["errorCode"] == -1022


def test_hmac_path_without_prefix_is_a_wrong_signature(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    headers = bitzoom_hmac_headers(KEY, SECRET, path="/api/v1/balance")
    assert client.get(sandbox.url + BALANCE, headers=headers).json()["errorCode"] == -1022


def test_hmac_unknown_key(sandbox: Sandbox, client: httpx.Client) -> None:
    headers = bitzoom_hmac_headers("who", SECRET, path=BALANCE)
    assert client.get(sandbox.url + BALANCE, headers=headers).json()["code"] == -1022


def test_hmac_stale_timestamp(sandbox: Sandbox, client: httpx.Client) -> None:
    response = signed_get(sandbox, client, timestamp=now_ms() - 6000)
    assert response.json()["errorCode"] == -1021
    # A wider window admits it.
    ok = signed_get(sandbox, client, timestamp=now_ms() - 6000, recv_window="10000", nonce="w")
    assert ok.json()["errorCode"] == 200


def test_hmac_window_over_max_refused(sandbox: Sandbox, client: httpx.Client) -> None:
    assert signed_get(sandbox, client, recv_window="60001").json()["errorCode"] == -1022


def test_hmac_reused_nonce(sandbox: Sandbox, client: httpx.Client) -> None:
    assert signed_get(sandbox, client, nonce="same").json()["errorCode"] == 200
    assert signed_get(sandbox, client, nonce="same").json()["errorCode"] == -1022
    assert sandbox.accepted_nonces("zh") == ["same"]
