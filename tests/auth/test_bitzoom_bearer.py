"""Bitzoom v1.0 bearer tokens: providers, answer forms, refresh once, no stampede."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest

from aggregator import errors
from aggregator.auth.bitzoom_bearer import (
    BitzoomBearerAuth,
    CommandToken,
    FixedToken,
    TestTokenEndpoint,
    TokenProvider,
    token_expired,
)
from aggregator.model import Secret
from tests.auth.conftest import Loopback, Reply, Seen

USER_ID = "user-4242-secret"
JWT = jwt.encode({"sub": "x"}, "issuer-key-that-is-at-least-32-bytes", algorithm="HS256")
BALANCE = "/api/v1/balance"
TOKEN_PATH = "/api/servermanage/testtoken"


def answer(body: str | bytes, status: int = 200, content_type: str = "application/json"
           ) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(status, content=content, headers={"Content-Type": content_type})


# --- the test-token answer forms -------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (JWT, "text/plain"),
        (JWT + "\n", "text/plain"),
        (json.dumps(JWT), "application/json"),
        (json.dumps({"code": 0, "msg": "success", "data": JWT}), "application/json"),
        (json.dumps({"code": 0, "msg": "success", "data": {"token": JWT}}), "application/json"),
        (json.dumps({"token": JWT}), "application/json"),
    ],
)
def test_token_answer_forms(body: str, content_type: str) -> None:
    provider = TestTokenEndpoint("http://h", USER_ID)
    assert provider.parse(answer(body, content_type=content_type)) == Secret(JWT)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (json.dumps({"code": -1002, "msg": f"unknown userid {USER_ID}"}), 200),
        (json.dumps({"code": "-1", "msg": "error", "data": JWT}), 200),
        (json.dumps({"code": 0, "msg": "success", "data": {}}), 200),
        (json.dumps({"code": 0, "msg": "success", "data": None}), 200),
        (json.dumps({"code": 0, "msg": "success", "data": {"token": 5}}), 200),
        (json.dumps({"success": True, "data": JWT}), 200),
        (json.dumps(42), 200),
        (json.dumps([JWT]), 200),
        (json.dumps("two words"), 200),
        ("<html><body>Login</body></html>", 200),
        ("", 200),
        (json.dumps({"code": 0, "msg": "success", "data": JWT}), 500),
        (json.dumps({"token": JWT}), 403),
    ],
)
def test_bad_token_answers(body: str, status: int) -> None:
    provider = TestTokenEndpoint("http://h", USER_ID)
    with pytest.raises(errors.TokenRefreshFailed) as caught:
        provider.parse(answer(body, status))
    assert USER_ID not in str(caught.value) and JWT not in str(caught.value)


def test_token_request_keeps_the_base_path() -> None:
    request = TestTokenEndpoint("http://h:8088/prefix/", "u 1@x").token_request()
    assert request.method == "GET"
    assert request.url.path == "/prefix/api/servermanage/testtoken"
    assert parse_qs(request.url.query.decode()) == {"userid": ["u 1@x"]}


def test_repr_hides_the_user_id() -> None:
    provider = TestTokenEndpoint("http://h", USER_ID)
    assert USER_ID not in repr(provider)
    assert USER_ID not in repr(BitzoomBearerAuth(provider))


def test_provider_type_is_checked() -> None:
    with pytest.raises(TypeError):
        BitzoomBearerAuth(TokenProvider())


@pytest.mark.parametrize(
    ("response", "expired"),
    [
        (answer("", 401), True),
        (answer('{"code":-1002,"msg":"Unauthorized"}'), True),
        (answer('{"success":false,"errorCode":-1002,"errorMessage":"Unauthorized"}'), True),
        (answer('{"code":0,"msg":"success","data":[]}'), False),
        (answer('{"code":-1022,"msg":"Invalid signature"}'), False),
        (answer('{"success":true,"errorCode":200,"data":[]}'), False),
        (answer('{"code":-1002}', 500), False),
        (answer("not json"), False),
        (answer("[-1002]"), False),
    ],
)
def test_token_expired(response: httpx.Response, expired: bool) -> None:
    assert token_expired(response) is expired


# --- command and fixed providers -------------------------------------------------------

def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def test_command_token() -> None:
    assert await CommandToken(python("print('tok-1.a_b')")).fetch() == Secret("tok-1.a_b")
    assert CommandToken(python("print('tok-2')")).fetch_sync() == Secret("tok-2")


FAILING = [
    (python("import sys; print('leaked-out'); print('leaked-err', file=sys.stderr); "
            "sys.exit(3)"), "status 3"),
    (python("print('   ')"), "printed nothing"),
    (python("print('two words')"), "not a bearer token"),
    (python("import time; print('late', flush=True); time.sleep(30)"), "did not finish"),
    (["/nonexistent/token-tool", "--password", "hunter2"], "could not start"),
]


@pytest.mark.parametrize(("argv", "message"), FAILING)
async def test_command_token_failures(argv: list[str], message: str) -> None:
    with pytest.raises(errors.TokenRefreshFailed, match=message) as caught:
        await CommandToken(argv, timeout=0.5).fetch()
    check_failure_text(caught.value, argv)


@pytest.mark.parametrize(("argv", "message"), FAILING)
def test_command_token_failures_sync(argv: list[str], message: str) -> None:
    with pytest.raises(errors.TokenRefreshFailed, match=message) as caught:
        CommandToken(argv, timeout=0.5).fetch_sync()
    check_failure_text(caught.value, argv)


def check_failure_text(error: BaseException, argv: list[str]) -> None:
    text = str(error)
    assert argv[0] in text
    for leak in ("leaked", "two words", "late", "hunter2"):
        assert leak not in text
    assert error.__cause__ is None  # a chained error could carry the output


async def test_fixed_token() -> None:
    assert await FixedToken(Secret(JWT)).fetch() == Secret(JWT)
    with pytest.raises(errors.TokenRefreshFailed) as caught:
        await FixedToken(Secret("bad token\nX-Injected: 1")).fetch()
    assert "bad token" not in str(caught.value)


# --- against a loopback Bitzoom --------------------------------------------------------

class Bitzoom:
    """Issues test tokens and answers the balance with -1002 for tokens it expired."""

    def __init__(self, loopback: Loopback, *, style: str = "code",
                 form: Callable[[str], Any] = lambda t: {"code": 0, "msg": "success",
                                                          "data": {"token": t}}) -> None:
        self.lock = threading.Lock()
        self.issued = 0
        self.valid: set[str] = set()
        self.accept_new = True
        self.style = style
        self.form = form
        self.delay = 0.0
        loopback.route(TOKEN_PATH, self.token)
        loopback.route(BALANCE, self.balance)
        self.loopback = loopback

    def token(self, seen: Seen) -> Reply:
        if parse_qs(seen.query).get("userid") != [USER_ID]:
            return Reply(200, json.dumps({"code": -1002, "msg": "unknown userid"}).encode())
        with self.lock:
            self.issued += 1
            token = jwt.encode({"n": self.issued}, "issuer-key-that-is-at-least-32-bytes",
                               algorithm="HS256")
            if self.accept_new:
                self.valid.add(token)
        body = self.form(token)
        if isinstance(body, bytes):
            return Reply(200, body, "text/plain")
        return Reply(200, json.dumps(body).encode())

    def balance(self, seen: Seen) -> Reply:
        time.sleep(self.delay)  # keeps concurrent requests in flight together
        header = seen.headers.get("authorization")
        if header is None or not header.startswith("Bearer "):
            return Reply(401, b'{"code":401}')
        with self.lock:
            ok = header.removeprefix("Bearer ") in self.valid
        if ok:
            return Reply(200, b'{"code":0,"msg":"success","data":[]}')
        if self.style == "401":
            return Reply(401, b"")
        if self.style == "success":
            return Reply(200, b'{"success":false,"errorCode":-1002,"errorMessage":"Unauthorized"}')
        return Reply(200, b'{"code":-1002,"msg":"Unauthorized"}')

    def expire(self) -> None:
        with self.lock:
            self.valid.clear()

    def count(self, path: str) -> int:
        return len(self.loopback.hits(path))


def endpoint_auth(loopback: Loopback, user_id: str = USER_ID) -> BitzoomBearerAuth:
    return BitzoomBearerAuth(TestTokenEndpoint(loopback.base_url, user_id))


async def test_fetches_a_token_first_then_reuses_it(loopback: Loopback) -> None:
    server = Bitzoom(loopback)
    auth = endpoint_auth(loopback)
    async with httpx.AsyncClient() as client:
        for _ in range(3):
            response = await client.get(loopback.base_url + BALANCE, auth=auth)
            assert response.json()["code"] == 0
    assert server.count(TOKEN_PATH) == 1
    assert server.count(BALANCE) == 3
    # The token request carries no Authorization header of its own.
    assert "authorization" not in loopback.hits(TOKEN_PATH)[0].headers


@pytest.mark.parametrize("form", [
    lambda t: t.encode(),  # bare, as text/plain
    lambda t: t,  # a JSON string
    lambda t: {"token": t},
    lambda t: {"code": 0, "msg": "success", "data": t},
])
async def test_other_answer_forms_over_http(loopback: Loopback, form: Callable[[str], Any]
                                            ) -> None:
    Bitzoom(loopback, form=form)
    async with httpx.AsyncClient() as client:
        response = await client.get(loopback.base_url + BALANCE, auth=endpoint_auth(loopback))
    assert response.json()["code"] == 0


@pytest.mark.parametrize("style", ["code", "success", "401"])
async def test_refreshes_once_on_an_expired_token(loopback: Loopback, style: str) -> None:
    server = Bitzoom(loopback, style=style)
    auth = endpoint_auth(loopback)
    async with httpx.AsyncClient() as client:
        await client.get(loopback.base_url + BALANCE, auth=auth)
        server.expire()
        response = await client.get(loopback.base_url + BALANCE, auth=auth)
    assert response.status_code == 200 and response.json()["code"] == 0
    assert server.count(TOKEN_PATH) == 2
    assert server.count(BALANCE) == 3
    first, expired, retried = (s.headers["authorization"] for s in loopback.hits(BALANCE))
    assert first == expired != retried


async def test_a_second_failure_is_returned(loopback: Loopback) -> None:
    server = Bitzoom(loopback)
    server.accept_new = False  # every token is refused
    async with httpx.AsyncClient() as client:
        response = await client.get(loopback.base_url + BALANCE, auth=endpoint_auth(loopback))
    assert response.json() == {"code": -1002, "msg": "Unauthorized"}
    assert server.count(TOKEN_PATH) == 2  # the first token, then one refresh
    assert server.count(BALANCE) == 2  # the request, then one retry


async def test_no_stampede(loopback: Loopback) -> None:
    server = Bitzoom(loopback)
    auth = endpoint_auth(loopback)
    async with httpx.AsyncClient() as client:
        await client.get(loopback.base_url + BALANCE, auth=auth)
        server.expire()
        server.delay = 0.05
        answers = await asyncio.gather(
            *(client.get(loopback.base_url + BALANCE, auth=auth) for _ in range(10))
        )
    assert [a.json()["code"] for a in answers] == [0] * 10
    assert server.count(TOKEN_PATH) == 2  # the first token and exactly one refresh
    refused = [s for s in loopback.hits(BALANCE)[1:]
               if s.headers["authorization"] == loopback.hits(BALANCE)[0].headers["authorization"]]
    assert len(refused) == 10  # all ten really went out with the expired token


async def test_no_stampede_for_the_first_token(loopback: Loopback) -> None:
    server = Bitzoom(loopback)
    auth = endpoint_auth(loopback)
    async with httpx.AsyncClient() as client:
        answers = await asyncio.gather(
            *(client.get(loopback.base_url + BALANCE, auth=auth) for _ in range(10))
        )
    assert [a.json()["code"] for a in answers] == [0] * 10
    assert server.count(TOKEN_PATH) == 1


async def test_refused_user_id_stays_out_of_the_error(loopback: Loopback) -> None:
    Bitzoom(loopback)
    async with httpx.AsyncClient() as client:
        with pytest.raises(errors.TokenRefreshFailed) as caught:
            await client.get(loopback.base_url + BALANCE,
                             auth=endpoint_auth(loopback, "unknown-user-99"))
    assert "unknown-user-99" not in str(caught.value)
    assert "-1002" in str(caught.value)


async def test_fixed_token_is_not_refreshed(loopback: Loopback) -> None:
    server = Bitzoom(loopback)
    auth = BitzoomBearerAuth(FixedToken(Secret(JWT)))  # the server never issued it
    async with httpx.AsyncClient() as client:
        response = await client.get(loopback.base_url + BALANCE, auth=auth)
    assert response.json()["code"] == -1002
    assert server.count(BALANCE) == 1  # the same token again cannot help
    assert server.count(TOKEN_PATH) == 0


async def test_command_token_is_refreshed(loopback: Loopback, tmp_path: Any) -> None:
    server = Bitzoom(loopback)
    # The command prints a new token each run: tok-1, tok-2, ...
    counter = tmp_path / "n"
    counter.write_text("0")
    argv = python(f"import pathlib; p = pathlib.Path({str(counter)!r}); "
                  "n = int(p.read_text()) + 1; p.write_text(str(n)); print(f'tok-{n}')")
    server.valid.update({"tok-1", "tok-2"})
    auth = BitzoomBearerAuth(CommandToken(argv))
    async with httpx.AsyncClient() as client:
        assert (await client.get(loopback.base_url + BALANCE, auth=auth)).json()["code"] == 0
        server.valid.discard("tok-1")
        assert (await client.get(loopback.base_url + BALANCE, auth=auth)).json()["code"] == 0
    assert [s.headers["authorization"] for s in loopback.hits(BALANCE)] == [
        "Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_sync_client_refreshes_once(loopback: Loopback) -> None:
    server = Bitzoom(loopback)
    auth = endpoint_auth(loopback)
    with httpx.Client() as client:
        assert client.get(loopback.base_url + BALANCE, auth=auth).json()["code"] == 0
        server.expire()
        assert client.get(loopback.base_url + BALANCE, auth=auth).json()["code"] == 0
    assert server.count(TOKEN_PATH) == 2
    assert server.count(BALANCE) == 3


def test_auth_survives_a_new_event_loop(loopback: Loopback) -> None:
    server = Bitzoom(loopback)
    server.delay = 0.02
    auth = endpoint_auth(loopback)

    async def burst() -> list[int]:
        async with httpx.AsyncClient() as client:
            answers = await asyncio.gather(
                *(client.get(loopback.base_url + BALANCE, auth=auth) for _ in range(3))
            )
        return [a.json()["code"] for a in answers]

    assert asyncio.run(burst()) == [0, 0, 0]
    server.expire()
    assert asyncio.run(burst()) == [0, 0, 0]
    assert server.count(TOKEN_PATH) == 2
