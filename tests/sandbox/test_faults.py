from __future__ import annotations

import time

import httpx
import pytest

from aggregator.sandbox import Sandbox
from tests.sandbox.signers import (
    bitopro_headers,
    bitz_form,
    bitzoom_hmac_headers,
    now_ms,
    pitrade_token,
)

PT_SECRET = "pt-secret-0123456789abcdef0123456789"
_nonce = [0]


def poll(sandbox: Sandbox, client: httpx.Client, name: str) -> httpx.Response:
    """One correctly signed balance request for one of the conftest accounts."""
    _nonce[0] += 1
    n = _nonce[0]
    if name == "bp":
        return client.get(
            sandbox.base_url("bitopro") + "/accounts/balance",
            headers=bitopro_headers("bp-key", "bp-secret", "me@example.com", now_ms() + n),
        )
    if name == "bz":
        form = bitz_form("bz-key", "bz-secret", nonce=f"f{n:05d}")
        return client.post(sandbox.base_url("bitz") + "/Assets/getUserAssets", data=form)
    if name == "zh":
        path = "/bitzoom/api/v1/balance"
        headers = bitzoom_hmac_headers("zh-key", "zh-secret", path=path, nonce=f"fault-{n}")
        return client.get(sandbox.url + path, headers=headers)
    if name == "zb":
        token = sandbox.issue_token("user-42")
        return client.get(
            sandbox.url + "/bitzoom/api/v1/balance", headers={"Authorization": f"Bearer {token}"}
        )
    token = pitrade_token("pt-client", PT_SECRET)
    return client.get(
        sandbox.base_url("pitrade") + "/portfolio", headers={"Authorization": f"Bearer {token}"}
    )


ALL = ["bp", "bz", "zh", "zb", "pt"]


@pytest.mark.parametrize("name", ALL)
def test_malformed(sandbox: Sandbox, client: httpx.Client, name: str) -> None:
    sandbox.set_fault(name, "malformed", count=1)
    bad = poll(sandbox, client, name)
    assert bad.status_code == 200
    assert bad.text == '{"data": [tru'
    assert poll(sandbox, client, name).status_code == 200
    assert sandbox.requests[-2].outcome == "fault:malformed"
    assert sandbox.requests[-1].outcome == "ok"


@pytest.mark.parametrize("name", ALL)
def test_wrong_shape(sandbox: Sandbox, client: httpx.Client, name: str) -> None:
    sandbox.set_fault(name, "wrong_shape")
    for _ in range(2):
        response = poll(sandbox, client, name)
        assert response.status_code == 200
        assert response.json() == {"result": {"balances": "n/a"}}
    sandbox.set_fault(name, None)
    assert poll(sandbox, client, name).json() != {"result": {"balances": "n/a"}}


@pytest.mark.parametrize("name", ALL)
def test_server_error_counts_down(sandbox: Sandbox, client: httpx.Client, name: str) -> None:
    sandbox.set_fault(name, "server_error", count=2)
    assert [poll(sandbox, client, name).status_code for _ in range(3)] == [500, 500, 200]


def test_rate_limited(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_fault("bp", "rate_limited", count=1, retry_after=7)
    response = poll(sandbox, client, "bp")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    sandbox.set_fault("bz", "rate_limited", count=1, retry_after=0.5)
    assert poll(sandbox, client, "bz").headers["Retry-After"] == "0.5"


def test_api_errors(sandbox: Sandbox, client: httpx.Client) -> None:
    for name in ALL:
        sandbox.set_fault(name, "api_error", count=1)
    bitz = poll(sandbox, client, "bz")
    assert bitz.status_code == 200 and bitz.json()["status"] == -112
    assert bitz.json()["data"] is None
    bearer = poll(sandbox, client, "zb")
    assert bearer.status_code == 200
    assert bearer.json() == {"code": -1001, "msg": "Disconnected", "data": None}
    hmac_body = poll(sandbox, client, "zh").json()
    assert hmac_body["success"] is False and hmac_body["errorCode"] == -1001
    for name in ("bp", "pt"):
        response = poll(sandbox, client, name)
        assert response.status_code == 400 and "error" in response.json()


def test_fault_applies_after_authentication(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_fault("bp", "server_error", count=1)
    wrong = client.get(
        sandbox.base_url("bitopro") + "/accounts/balance",
        headers=bitopro_headers("bp-key", "nope", "me@example.com", now_ms()),
    )
    assert wrong.status_code == 401
    assert poll(sandbox, client, "bp").status_code == 500


def test_hang_does_not_block_others(client: httpx.Client) -> None:
    from tests.sandbox.conftest import fresh_accounts

    with Sandbox(fresh_accounts()) as sandbox:
        sandbox.set_fault("bz", "hang")
        with httpx.Client(timeout=0.5) as short:
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                poll(sandbox, short, "bz")
            assert time.monotonic() - started < 2
        assert poll(sandbox, client, "bp").status_code == 200
        assert sandbox.count("getUserAssets", "bz") == 1
        started = time.monotonic()
    # stop() frees the hung handler instead of waiting 600 s.
    assert time.monotonic() - started < 5


def test_unknown_fault_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.set_fault("bp", "gremlins")
    with pytest.raises(KeyError):
        sandbox.set_fault("nobody", "hang")
