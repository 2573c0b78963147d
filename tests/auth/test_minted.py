"""Tokens made at run time are reported before they are sent, and prepare() redacts them."""

from __future__ import annotations

import sys
import threading

import httpx
import pytest

from aggregator.auth.bitzoom_bearer import BitzoomBearerAuth, CommandToken
from aggregator.auth.minted import MintsSecrets
from aggregator.auth.pitrade_jwt import PiTradeJwtAuth
from aggregator.model import Secret
from aggregator.polling.poller import prepare
from aggregator.polling.redact import MARK
from aggregator.sources.bitopro import BitoProConfig
from aggregator.sources.pitrade import PiTradeConfig
from tests.auth.conftest import Loopback, Reply, Seen
from tests.auth.test_bitzoom_bearer import BALANCE, TOKEN_PATH, Bitzoom, endpoint_auth
from tests.auth.test_pitrade_jwt import SECRET, Clock, Partner


class Sink:
    """Collects reported secrets; a route checks each token arrives already reported."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reported: list[str] = []
        self.sent_unreported: list[str] = []

    def __call__(self, secret: Secret) -> None:
        with self.lock:
            self.reported.append(secret.reveal())

    def check(self, seen: Seen) -> None:
        token = seen.headers.get("authorization", "").removeprefix("Bearer ")
        with self.lock:
            if token not in self.reported:
                self.sent_unreported.append(token)


def watched(loopback: Loopback, path: str, sink: Sink) -> None:
    """Wrap the route at ``path`` so that every request is checked against ``sink``."""
    inner = loopback.routes[path]

    def route(seen: Seen) -> Reply:
        sink.check(seen)
        return inner(seen)

    loopback.route(path, route)


async def test_fetched_tokens_are_reported_before_use(loopback: Loopback) -> None:
    server = Bitzoom(loopback)
    sink = Sink()
    watched(loopback, BALANCE, sink)
    auth = endpoint_auth(loopback)
    auth.report_secrets(sink)
    async with httpx.AsyncClient() as client:
        await client.get(loopback.base_url + BALANCE, auth=auth)
        server.expire()  # the next request is refused once, then sent with a new token
        assert (await client.get(loopback.base_url + BALANCE, auth=auth)).json()["code"] == 0
    assert server.count(TOKEN_PATH) == 2 and len(sink.reported) == 2
    assert len(set(sink.reported)) == 2 and sink.sent_unreported == []


@pytest.mark.parametrize("flow", ["sync", "async"])
async def test_command_tokens_are_reported(loopback: Loopback, flow: str) -> None:
    server = Bitzoom(loopback)
    server.valid.add("tok-from-command")
    sink = Sink()
    watched(loopback, BALANCE, sink)
    auth = BitzoomBearerAuth(CommandToken([sys.executable, "-c", "print('tok-from-command')"]))
    auth.report_secrets(sink)
    url = loopback.base_url + BALANCE
    if flow == "sync":
        with httpx.Client() as client:
            assert client.get(url, auth=auth).json()["code"] == 0
    else:
        async with httpx.AsyncClient() as client:
            assert (await client.get(url, auth=auth)).json()["code"] == 0
    assert sink.reported == ["tok-from-command"] and sink.sent_unreported == []


async def test_pitrade_reports_every_signature_before_use(loopback: Loopback) -> None:
    loopback.route("/portfolio", Partner(not_before=1500))
    sink = Sink()
    watched(loopback, "/portfolio", sink)
    clock = Clock(1000.0)
    auth = PiTradeJwtAuth("c", Secret(SECRET), clock=clock)
    auth.report_secrets(sink)
    async with httpx.AsyncClient() as client:
        await client.get(loopback.base_url + "/portfolio", auth=auth)  # refused, re-signed
        clock.now = 1500.0
        assert (await client.get(loopback.base_url + "/portfolio", auth=auth)).status_code == 200
    assert len(set(sink.reported)) == 2 and sink.sent_unreported == []


def test_without_a_sink_nothing_changes(loopback: Loopback) -> None:
    loopback.route("/portfolio", Partner(not_before=0))
    with httpx.Client() as client:
        answer = client.get(loopback.base_url + "/portfolio",
                            auth=PiTradeJwtAuth("c", Secret(SECRET)))
    assert answer.status_code == 200


def test_prepare_connects_the_auth_to_the_account_redactor() -> None:
    config = PiTradeConfig(name="pt", source="pitrade", base_url="https://partner.example/api",
                           client_id="c", secret=Secret(SECRET))
    account = prepare(config)
    assert isinstance(account.auth, MintsSecrets)
    sent = next(account.auth.sync_auth_flow(httpx.Request("GET", "https://h/portfolio")))
    token = sent.headers["Authorization"].removeprefix("Bearer ")
    assert account.redactor.text(f"echo: {token}") == f"echo: {MARK}"
    assert account.redactor.text(SECRET) == MARK


def test_signing_auths_report_nothing() -> None:
    # A signature is bound to one nonce and request and reveals nothing of the key.
    config = BitoProConfig(name="bp", source="bitopro", base_url="https://h/v3",
                           api_key=Secret("k"), api_secret=Secret("s"), identity="me")
    assert not isinstance(prepare(config).auth, MintsSecrets)
