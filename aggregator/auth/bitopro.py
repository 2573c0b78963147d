"""BitoPro v3: base64 JSON payload headers signed with HMAC-SHA384."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator

import httpx

from aggregator.auth._locks import LoopLocks, ThreadLocks
from aggregator.model import Secret

# The last nonce used per API key, shared by every BitoProAuth in the process: two
# accounts (or two auth objects) with the same key must never repeat a nonce. Keyed by
# a hash so the key itself is not kept in one more place.
_last_nonce: dict[str, int] = {}
_nonce_guard = threading.Lock()

# The server refuses a nonce not greater than the last one it accepted, so a request
# must not overtake another of the same key: one request in flight per key.
_async_locks = LoopLocks()
_thread_locks = ThreadLocks()


def payload(identity: str, nonce: int) -> str:
    """Standard base64 of the compact JSON ``{"identity":..,"nonce":..}``."""
    text = json.dumps({"identity": identity, "nonce": nonce}, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode("ascii")


def signature(payload: str, secret: str) -> str:
    """Lowercase hex HMAC-SHA384 of the payload, keyed with the API secret."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha384).hexdigest()


def key_id(api_key: str) -> str:
    """A stable name for an API key that does not reveal it."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def next_nonce(key: str, now_ms: int) -> int:
    """``max(now_ms, last + 1)`` for the key named ``key``, and remember it."""
    with _nonce_guard:
        nonce = max(now_ms, _last_nonce.get(key, 0) + 1)
        _last_nonce[key] = nonce
        return nonce


class BitoProAuth(httpx.Auth):
    """Signs body-less requests (GET, DELETE) with the account's identity and a nonce.

    The sync and async flows serialize requests with different locks, so one key should
    not be used by a sync and an async client at the same time.
    """

    def __init__(
        self,
        api_key: Secret,
        api_secret: Secret,
        identity: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._identity = identity
        self._clock = clock
        self._key_id = key_id(api_key.reveal())

    def _sign(self, request: httpx.Request) -> None:
        # POST payloads are the JSON body instead; nothing here sends one, so refuse
        # rather than sign something the server will not check the same way.
        if request.method not in ("GET", "DELETE"):
            raise ValueError(f"BitoProAuth signs GET and DELETE only, not {request.method}")
        nonce = next_nonce(self._key_id, int(self._clock() * 1000))
        body = payload(self._identity, nonce)
        request.headers["X-BITOPRO-APIKEY"] = self._api_key.reveal()
        request.headers["X-BITOPRO-PAYLOAD"] = body
        request.headers["X-BITOPRO-SIGNATURE"] = signature(body, self._api_secret.reveal())

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        with _thread_locks.get(self._key_id):
            # The nonce is taken under the lock so nonces reach the server in order.
            self._sign(request)
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with _async_locks.get(self._key_id):
            self._sign(request)
            yield request
