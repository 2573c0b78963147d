from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import jwt
import pytest

from aggregator.sandbox import Sandbox
from tests.sandbox.signers import pitrade_token

CLIENT, SECRET = "pt-client", "pt-secret-0123456789abcdef0123456789"


def get(sandbox: Sandbox, client: httpx.Client, path: str, token: str) -> httpx.Response:
    return client.get(
        sandbox.base_url("pitrade") + path, headers={"Authorization": f"Bearer {token}"}
    )


def test_portfolio_exact_numbers(sandbox: Sandbox, client: httpx.Client) -> None:
    response = get(sandbox, client, "/portfolio", pitrade_token(CLIENT, SECRET))
    assert response.status_code == 200
    assert response.text == (
        '[{"ticker":"AAPL","quantity":10,"averagePurchasePrice":145.00},'
        '{"ticker":"TINY","quantity":0.000000000000000001,'
        '"averagePurchasePrice":123456789.123456789012345678}]'
    )
    rows = json.loads(response.text, parse_float=Decimal)
    assert rows[1]["quantity"] == Decimal("1E-18")


def test_properties(sandbox: Sandbox, client: httpx.Client) -> None:
    response = get(sandbox, client, "/portfolio-properties", pitrade_token(CLIENT, SECRET))
    assert response.status_code == 200
    assert '"availableBalance":123456789.123456789012345678,' in response.text
    body = json.loads(response.text, parse_float=Decimal)
    assert body["currency"] == "USD"
    assert body["accountId"].startswith("PT-")
    assert body["updatedAt"].endswith("Z")


def test_missing_header_401(sandbox: Sandbox, client: httpx.Client) -> None:
    response = client.get(sandbox.base_url("pitrade") + "/portfolio")
    assert response.status_code == 401
    assert "error" in response.json()


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: pitrade_token(CLIENT, "x" + SECRET), id="bad-signature"),
        pytest.param(lambda: pitrade_token("who", SECRET), id="unknown-client"),
        pytest.param(lambda: pitrade_token(CLIENT, SECRET, lifetime=901), id="too-long"),
        pytest.param(lambda: pitrade_token(CLIENT, SECRET, lifetime=0), id="zero-life"),
        pytest.param(
            lambda: pitrade_token(CLIENT, SECRET, iat=int(time.time()) - 1000), id="expired"
        ),
        pytest.param(
            lambda: pitrade_token(CLIENT, SECRET, iat=int(time.time()) + 120), id="future-iat"
        ),
        pytest.param(
            lambda: pitrade_token(CLIENT, SECRET, algorithm="HS512"),
            id="wrong-alg",
            marks=pytest.mark.filterwarnings("ignore:The HMAC key"),
        ),
        pytest.param(
            lambda: jwt.encode(
                {"clientId": CLIENT, "iat": int(time.time()), "exp": int(time.time()) + 60},
                None,
                algorithm="none",
            ),
            id="alg-none",
        ),
        pytest.param(lambda: "garbage", id="garbage"),
    ],
)
def test_refused_tokens(sandbox: Sandbox, client: httpx.Client, token: object) -> None:
    assert callable(token)
    response = get(sandbox, client, "/portfolio", token())
    assert response.status_code == 401
    assert isinstance(response.json()["error"], str)


def test_slightly_future_iat_accepted(sandbox: Sandbox, client: httpx.Client) -> None:
    token = pitrade_token(CLIENT, SECRET, iat=int(time.time()) + 30)
    assert get(sandbox, client, "/portfolio", token).status_code == 200
