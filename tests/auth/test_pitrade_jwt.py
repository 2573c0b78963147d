"""PiTrade self-signed HS256 JWT: checked without pyjwt, reuse window, re-sign on 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import jwt
import pytest

from aggregator.auth.pitrade_jwt import PiTradeJwtAuth
from aggregator.model import Secret
from tests.auth.conftest import Loopback, Reply, Seen

SECRET = "partner-secret-of-at-least-32-bytes"


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_by_hand(token: str, secret: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, after checking the HS256 signature with hmac itself."""
    header, claims, sig = token.split(".")
    expected = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(b64url(sig), expected)
    return json.loads(b64url(header)), json.loads(b64url(claims))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bearer(auth: PiTradeJwtAuth) -> str:
    sent = next(auth.sync_auth_flow(httpx.Request("GET", "http://h/portfolio")))
    value = sent.headers["Authorization"]
    assert value.startswith("Bearer ")
    return value.removeprefix("Bearer ")


def test_token_is_hs256_with_the_documented_claims() -> None:
    auth = PiTradeJwtAuth("client-7", Secret(SECRET), clock=lambda: 1700000000.9)
    header, claims = decode_by_hand(bearer(auth), SECRET)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims == {"clientId": "client-7", "iat": 1700000000, "exp": 1700000900}


def test_lifetime_is_kept() -> None:
    auth = PiTradeJwtAuth("c", Secret(SECRET), lifetime=300, clock=lambda: 1000.0)
    _, claims = decode_by_hand(bearer(auth), SECRET)
    assert claims["exp"] - claims["iat"] == 300


@pytest.mark.parametrize("lifetime", [0, -5, 901, 3600])
def test_lifetime_out_of_range(lifetime: int) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        PiTradeJwtAuth("c", Secret(SECRET), lifetime=lifetime)


def test_reused_until_sixty_seconds_before_expiry() -> None:
    clock = Clock(1000.0)
    auth = PiTradeJwtAuth("c", Secret(SECRET), clock=clock)
    first = bearer(auth)
    clock.now = 1000 + 900 - 61  # still more than 60 s to go
    assert bearer(auth) == first
    clock.now = 1000 + 900 - 60  # inside the margin: re-signed
    second = bearer(auth)
    assert second != first
    assert decode_by_hand(second, SECRET)[1]["iat"] == 1840


def test_repr_hides_the_secret() -> None:
    auth = PiTradeJwtAuth("c", Secret(SECRET))
    assert SECRET not in repr(auth)


class Partner:
    """Accepts tokens signed with SECRET and issued at or after ``not_before``."""

    def __init__(self, not_before: int) -> None:
        self.not_before = not_before

    def __call__(self, seen: Seen) -> Reply:
        token = seen.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"],
                                options={"verify_exp": False, "verify_iat": False})
        except jwt.InvalidTokenError:
            return Reply(401, b'{"error":"invalid token"}')
        if claims["iat"] < self.not_before:
            return Reply(401, b'{"error":"token expired"}')
        return Reply(200, b"[]")


async def test_resigns_once_on_401(loopback: Loopback) -> None:
    loopback.route("/portfolio", Partner(not_before=1500))
    clock = Clock(1000.0)
    auth = PiTradeJwtAuth("c", Secret(SECRET), clock=clock)
    async with httpx.AsyncClient() as client:
        url = loopback.base_url + "/portfolio"
        assert (await client.get(url, auth=auth)).status_code == 401  # 401 twice: gives up
        assert len(loopback.seen) == 2
        clock.now = 1500.0  # the cached token is still in its lifetime, but refused
        answer = await client.get(url, auth=auth)
    assert answer.status_code == 200
    iats = [decode_by_hand(s.headers["authorization"][7:], SECRET)[1]["iat"]
            for s in loopback.seen]
    assert iats == [1000, 1000, 1000, 1500]


def test_sync_client(loopback: Loopback) -> None:
    loopback.route("/portfolio", Partner(not_before=0))
    with httpx.Client() as client:
        answer = client.get(loopback.base_url + "/portfolio",
                            auth=PiTradeJwtAuth("c", Secret(SECRET)))
    assert answer.status_code == 200
