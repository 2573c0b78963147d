"""BitoPro payload, signature, nonces and the one-request-per-key lock."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid

import httpx

from aggregator.auth import bitopro
from aggregator.auth.bitopro import BitoProAuth, payload, signature
from aggregator.model import Secret
from tests.auth.conftest import Loopback, Reply, Seen

SEED_PAYLOAD = "eyJpZGVudGl0eSI6ImhjbWxpbmpAZ21haWwuY29tIiwibm9uY2UiOjE1NTQzODA5MDkxMzF9"
SEED_SIGNATURE = (
    "01a85a9083db47c20da7196380598f3feacd3c76a9077aaf7ffaf08ce0091abf"
    "65b61778792607b010921adfe1c2941a"
)
PATH = "/v3/accounts/balance"


def unique_key() -> Secret:
    # The nonce registry is process-wide: each test gets a key nobody else used.
    return Secret(f"key-{uuid.uuid4().hex}")


def sign_once(auth: BitoProAuth) -> dict[str, str]:
    flow = auth.sync_auth_flow(httpx.Request("GET", "http://127.0.0.1:1" + PATH))
    request = next(flow)
    flow.close()  # releases the per-key lock, as httpx does after the answer
    names = ("X-BITOPRO-APIKEY", "X-BITOPRO-PAYLOAD", "X-BITOPRO-SIGNATURE")
    return {name: request.headers[name] for name in names}


def nonce_of(headers: dict[str, str]) -> int:
    return int(json.loads(base64.b64decode(headers["X-BITOPRO-PAYLOAD"]))["nonce"])


def test_seed_signature() -> None:
    assert signature(SEED_PAYLOAD, "bitopro") == SEED_SIGNATURE


def test_seed_payloads() -> None:
    assert payload("hcmlinj@gmail.com", 1554380909131) == SEED_PAYLOAD
    assert payload("support@bitoex.com", 1554380909131) == (
        "eyJpZGVudGl0eSI6InN1cHBvcnRAYml0b2V4LmNvbSIsIm5vbmNlIjoxNTU0MzgwOTA5MTMxfQ=="
    )


def test_headers_carry_key_payload_and_signature() -> None:
    auth = BitoProAuth(unique_key(), Secret("bitopro"), "hcmlinj@gmail.com",
                       clock=lambda: 1554380909.131)
    key = auth._api_key.reveal()
    headers = sign_once(auth)
    assert headers["X-BITOPRO-APIKEY"] == key
    assert headers["X-BITOPRO-PAYLOAD"] == SEED_PAYLOAD
    assert headers["X-BITOPRO-SIGNATURE"] == SEED_SIGNATURE


def test_nonce_increases_when_clock_stands_still() -> None:
    auth = BitoProAuth(unique_key(), Secret("s"), "a@b.c", clock=lambda: 1000.0)
    nonces = [nonce_of(sign_once(auth)) for _ in range(3)]
    assert nonces == [1_000_000, 1_000_001, 1_000_002]


def test_nonce_never_repeats_across_instances_sharing_a_key() -> None:
    key = unique_key()
    first = BitoProAuth(key, Secret("s"), "a@b.c", clock=lambda: 1000.0)
    second = BitoProAuth(Secret(key.reveal()), Secret("s"), "a@b.c", clock=lambda: 1000.0)
    nonces = [nonce_of(sign_once(auth)) for auth in (first, second, first, second)]
    assert nonces == sorted(set(nonces)) and len(nonces) == 4


def test_other_keys_keep_their_own_nonces() -> None:
    a = BitoProAuth(unique_key(), Secret("s"), "a@b.c", clock=lambda: 1000.0)
    b = BitoProAuth(unique_key(), Secret("s"), "a@b.c", clock=lambda: 1000.0)
    sign_once(a)
    assert nonce_of(sign_once(b)) == 1_000_000


def test_nonce_follows_the_clock_when_it_moves_on() -> None:
    now = [1000.0]
    auth = BitoProAuth(unique_key(), Secret("s"), "a@b.c", clock=lambda: now[0])
    sign_once(auth)
    now[0] = 2000.5
    assert nonce_of(sign_once(auth)) == 2_000_500


def test_registry_never_holds_the_key() -> None:
    key = unique_key()
    sign_once(BitoProAuth(key, Secret("s"), "a@b.c"))
    assert key.reveal() not in bitopro._last_nonce
    assert bitopro.key_id(key.reveal()) in bitopro._last_nonce


def test_repr_hides_secrets() -> None:
    auth = BitoProAuth(Secret("the-key"), Secret("the-secret"), "a@b.c")
    assert "the-key" not in repr(auth) and "the-secret" not in repr(auth)


def test_refuses_a_request_with_a_body() -> None:
    auth = BitoProAuth(unique_key(), Secret("s"), "a@b.c")
    flow = auth.sync_auth_flow(httpx.Request("POST", "http://127.0.0.1:1/x", content=b"{}"))
    try:
        next(flow)
    except ValueError as exc:
        assert "POST" in str(exc)
    else:
        raise AssertionError("POST was signed")


class InFlight:
    """Counts concurrent requests per API key at the server; records nonces in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.nonces: dict[str, list[int]] = {}
        self.total = self.total_peak = 0

    def __call__(self, seen: Seen) -> Reply:
        key = seen.headers["x-bitopro-apikey"]
        body = seen.headers["x-bitopro-payload"]
        assert seen.headers["x-bitopro-signature"] == signature(body, "s")
        with self.lock:
            self.nonces.setdefault(key, []).append(json.loads(base64.b64decode(body))["nonce"])
            self.now[key] = self.now.get(key, 0) + 1
            self.peak[key] = max(self.peak.get(key, 0), self.now[key])
            self.total += 1
            self.total_peak = max(self.total_peak, self.total)
        time.sleep(0.03)  # long enough for the others to pile up if they could
        with self.lock:
            self.now[key] -= 1
            self.total -= 1
        return Reply(200, b'{"data":[]}')


async def test_lock_sends_one_request_per_key_at_a_time(loopback: Loopback) -> None:
    server = InFlight()
    loopback.route(PATH, server)
    key, other = unique_key(), unique_key()
    auths = [
        BitoProAuth(key, Secret("s"), "a@b.c", clock=lambda: 1000.0),
        BitoProAuth(key, Secret("s"), "a@b.c", clock=lambda: 1000.0),
        BitoProAuth(other, Secret("s"), "a@b.c", clock=lambda: 1000.0),
    ]
    async with httpx.AsyncClient() as client:
        answers = await asyncio.gather(
            *(client.get(loopback.base_url + PATH, auth=auths[i % 3]) for i in range(9))
        )
    assert [a.status_code for a in answers] == [200] * 9
    assert server.peak == {key.reveal(): 1, other.reveal(): 1}
    sent = server.nonces[key.reveal()]
    assert len(sent) == 6 and sent == sorted(set(sent))  # arrived in nonce order
    # Another key is not held up by the first: its requests overlap with the first key's.
    assert server.total_peak == 2


def test_lock_survives_a_new_event_loop(loopback: Loopback) -> None:
    server = InFlight()
    loopback.route(PATH, server)
    auth = BitoProAuth(unique_key(), Secret("s"), "a@b.c")

    async def burst() -> list[int]:
        async with httpx.AsyncClient() as client:
            answers = await asyncio.gather(
                *(client.get(loopback.base_url + PATH, auth=auth) for _ in range(3))
            )
        return [a.status_code for a in answers]

    # An asyncio.Lock that waited in one loop refuses the next one; the registry is per loop.
    assert asyncio.run(burst()) == [200] * 3
    assert asyncio.run(burst()) == [200] * 3


def test_sync_client(loopback: Loopback) -> None:
    server = InFlight()
    loopback.route(PATH, server)
    auth = BitoProAuth(unique_key(), Secret("s"), "a@b.c")
    with httpx.Client() as client:
        assert client.get(loopback.base_url + PATH, auth=auth).status_code == 200
        assert client.get(loopback.base_url + PATH, auth=auth).status_code == 200
    (sent,) = server.nonces.values()
    assert sent[0] < sent[1]
