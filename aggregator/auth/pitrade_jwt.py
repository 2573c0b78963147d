"""PiTrade partner API: a self-signed HS256 JWT as bearer token."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Generator

import httpx
import jwt
from jwt.warnings import InsecureKeyLengthWarning

from aggregator.auth.minted import MintsSecrets
from aggregator.model import Secret

# The partner issues the secret and chooses its length; warning about it in every
# daemon's journal helps nobody.
warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning, module="jwt")

MAX_LIFETIME = 900  # seconds; the server refuses longer-lived tokens
# Re-sign this long before expiry, so a token cannot expire between signing and arrival.
RENEW_MARGIN = 60


class PiTradeJwtAuth(MintsSecrets, httpx.Auth):
    """Signs ``{"clientId", "iat", "exp"}`` with the partner secret; re-signs once on 401.

    Each signed token is a bearer credential for its lifetime, so it is reported
    (``MintsSecrets``) before it is sent.
    """

    def __init__(
        self,
        client_id: str,
        secret: Secret,
        *,
        lifetime: int = MAX_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= lifetime <= MAX_LIFETIME:
            raise ValueError(f"lifetime must be between 1 and {MAX_LIFETIME} seconds")
        self._client_id = client_id
        self._secret = secret
        self._lifetime = lifetime
        self._clock = clock
        # Guards the cached token; signing is local, so there is no I/O under it.
        self._guard = threading.Lock()
        self._token: str | None = None
        self._expires = 0

    def _sign(self) -> str:
        issued = int(self._clock())
        claims = {"clientId": self._client_id, "iat": issued, "exp": issued + self._lifetime}
        token = jwt.encode(claims, self._secret.reveal(), algorithm="HS256")
        self.minted(Secret(token))
        self._token, self._expires = token, issued + self._lifetime
        return token

    def token(self, *, fresh: bool = False) -> str:
        """The cached token, re-signed when ``fresh`` or within the renewal margin of expiry."""
        with self._guard:
            if fresh or self._token is None or self._clock() >= self._expires - RENEW_MARGIN:
                return self._sign()
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        if response.status_code == 401:
            # A 401 also means a token the server thinks expired (its clock, or a
            # revoked secret): one fresh signature settles which.
            request.headers["Authorization"] = f"Bearer {self.token(fresh=True)}"
            yield request
