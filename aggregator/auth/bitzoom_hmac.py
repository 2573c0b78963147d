"""Bitzoom API keys (current docs): seven-line canonical request signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Generator
from urllib.parse import parse_qsl, urlencode

import httpx

from aggregator.model import Secret


def random_nonce() -> str:
    """A fresh 128-bit nonce as hex."""
    return secrets.token_hex(16)


def canonical_query(raw_query: str) -> str:
    """Pairs kept with blanks and duplicates, sorted by key then value, form-encoded."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    return urlencode(sorted(pairs))


def string_to_sign(
    timestamp: int,
    nonce: str,
    recv_window: int | None,
    method: str,
    path: str,
    raw_query: str,
    body: bytes,
) -> str:
    """The seven lines the signature covers, joined by newlines."""
    return "\n".join(
        [
            str(timestamp),
            nonce,
            "" if recv_window is None else str(recv_window),
            method.upper(),
            path,
            canonical_query(raw_query),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def signature(secret: str, text: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``text`` keyed with the secret."""
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


class BitzoomHmacAuth(httpx.Auth):
    """Adds the X-BZ-* headers; no I/O, so one flow serves sync and async clients."""

    requires_request_body = True

    def __init__(
        self,
        api_key: Secret,
        api_secret: Secret,
        *,
        recv_window: int | None = 5000,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = random_nonce,
    ) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._recv_window = recv_window
        self._clock = clock
        self._nonce = nonce

    def sign(self, request: httpx.Request) -> None:
        """Set the auth headers on ``request`` for the path and query as they will be sent."""
        timestamp = int(self._clock() * 1000)
        nonce = self._nonce()
        # raw_path is what goes on the request line: the base URL's prefix included,
        # percent-encoding as sent.
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        query = request.url.query.decode("ascii")
        text = string_to_sign(
            timestamp, nonce, self._recv_window, request.method, path, query, request.content
        )
        request.headers["X-BZ-APIKEY"] = self._api_key.reveal()
        request.headers["X-BZ-TIMESTAMP"] = str(timestamp)
        request.headers["X-BZ-NONCE"] = nonce
        request.headers["X-BZ-SIGNATURE"] = signature(self._api_secret.reveal(), text)
        if self._recv_window is None:
            request.headers.pop("X-BZ-RECVWINDOW", None)
        else:
            request.headers["X-BZ-RECVWINDOW"] = str(self._recv_window)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        self.sign(request)
        yield request
