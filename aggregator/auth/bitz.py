"""Bitz: form parameters signed with MD5 over the sorted raw values plus the secret."""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from collections.abc import Callable, Generator, Mapping
from urllib.parse import parse_qsl, urlencode

import httpx

from aggregator.model import Secret

FORM_TYPE = "application/x-www-form-urlencoded"
_NONCE_ALPHABET = string.ascii_letters + string.digits
# Parameters this auth sets; a caller's own values for them would be replaced.
_AUTH_PARAMS = ("apiKey", "timeStamp", "nonce", "sign")


def random_nonce() -> str:
    """Six random letters or digits."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(6))


def sign(params: Mapping[str, str], secret: str) -> str:
    """Lowercase hex MD5 of ``k=v&...`` (sorted by name, raw values, no ``sign``) + secret."""
    names = sorted((k for k in params if k != "sign"), key=lambda k: k.encode())
    text = "&".join(f"{k}={params[k]}" for k in names) + secret
    return hashlib.md5(text.encode()).hexdigest()


def _form_params(request: httpx.Request) -> dict[str, str]:
    body = request.content
    if not body:
        return {}
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise ValueError(f"BitzAuth signs form bodies only, not {content_type or 'untyped'}")
    params: dict[str, str] = {}
    for name, value in parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True):
        # The signature covers one value per name; a repeated name has no defined sign.
        if name in params:
            raise ValueError(f"BitzAuth cannot sign the repeated form field {name!r}")
        params[name] = value
    return params


class BitzAuth(httpx.Auth):
    """Adds apiKey, timeStamp, nonce and sign to the form body of each request."""

    requires_request_body = True

    def __init__(
        self,
        api_key: Secret,
        api_secret: Secret,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = random_nonce,
    ) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._clock = clock
        self._nonce = nonce

    def signed(self, request: httpx.Request) -> httpx.Request:
        """A copy of ``request`` whose body carries the signed parameters."""
        params = {k: v for k, v in _form_params(request).items() if k not in _AUTH_PARAMS}
        params["apiKey"] = self._api_key.reveal()
        params["timeStamp"] = str(int(self._clock()))
        params["nonce"] = self._nonce()
        params["sign"] = sign(params, self._api_secret.reveal())
        body = urlencode(list(params.items())).encode("ascii")
        headers = request.headers.copy()
        # The new body has its own length; httpx sets it only when the header is absent.
        for name in ("Content-Length", "Transfer-Encoding"):
            headers.pop(name, None)
        headers["Content-Type"] = FORM_TYPE
        # extensions carry the per-request timeout the poller set.
        return httpx.Request(
            request.method, request.url, headers=headers, content=body,
            extensions=request.extensions,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        yield self.signed(request)
