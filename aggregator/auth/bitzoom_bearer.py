"""Bitzoom v1.0: ``Authorization: Bearer <JWT>`` with one refresh on an expired token.

Tokens come from a provider: a fixed one from the configuration, a command that prints
one, or the test-token endpoint. The endpoint is asked through the auth flow itself
(httpx sends whatever request a flow yields), so it shares the client's transport,
proxies and timeouts.
"""

from __future__ import annotations

import abc
import asyncio
import json
import re
import subprocess
import threading
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx

from aggregator import errors
from aggregator.auth._locks import LoopLocks
from aggregator.auth.minted import MintsSecrets
from aggregator.model import Secret

TEST_TOKEN_PATH = "/api/servermanage/testtoken"
EXPIRED_CODE = -1002  # "Unauthorized": the token expired or is unknown

# RFC 6750 b64token. Anything else (spaces, line breaks) would corrupt the header, and
# the HTTP library's complaint about a bad header value would quote the token.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _checked(token: str, where: str) -> Secret:
    if not _TOKEN.fullmatch(token):
        raise errors.TokenRefreshFailed(f"{where}: not a bearer token")
    return Secret(token)


class TokenProvider:
    """Where bearer tokens come from: subclass DirectTokenProvider or HttpTokenProvider."""


class DirectTokenProvider(TokenProvider, abc.ABC):
    """A provider that produces a token by itself, without the auth flow's help."""

    @abc.abstractmethod
    async def fetch(self) -> Secret:
        """A token, fresh where the provider can make one."""

    @abc.abstractmethod
    def fetch_sync(self) -> Secret:
        """The same, for synchronous clients."""


class HttpTokenProvider(TokenProvider, abc.ABC):
    """A provider whose token is the answer to a request the auth flow sends."""

    @abc.abstractmethod
    def token_request(self) -> httpx.Request:
        """The request that fetches a new token."""

    @abc.abstractmethod
    def parse(self, response: httpx.Response) -> Secret:
        """The token in the (read) answer; raises ``TokenRefreshFailed`` otherwise."""


class FixedToken(DirectTokenProvider):
    """A token from the configuration; it cannot be refreshed, so it is always the same."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    async def fetch(self) -> Secret:
        return self.fetch_sync()

    def fetch_sync(self) -> Secret:
        return _checked(self._token.reveal(), "configured token")


class CommandToken(DirectTokenProvider):
    """Runs a command (no shell) whose standard output is the token."""

    def __init__(self, argv: list[str], *, timeout: float = 30) -> None:
        if not argv:
            raise ValueError("token command is empty")
        self._argv = list(argv)
        self._timeout = timeout

    def _name(self) -> str:
        # Only the program: later arguments may well hold a password.
        return f"token command {self._argv[0]!r}"

    def _token(self, returncode: int | None, stdout: bytes) -> Secret:
        # The output is never quoted: it may be a token, or a secret the command leaked.
        if returncode != 0:
            raise errors.TokenRefreshFailed(f"{self._name()} exited with status {returncode}")
        try:
            text = stdout.decode().strip()
        except UnicodeDecodeError:
            raise errors.TokenRefreshFailed(f"{self._name()} printed non-UTF-8 output") from None
        if not text:
            raise errors.TokenRefreshFailed(f"{self._name()} printed nothing")
        return _checked(text, self._name())

    async def fetch(self) -> Secret:
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise errors.TokenRefreshFailed(
                f"{self._name()} could not start: {type(exc).__name__}"
            ) from None
        try:
            stdout, _ = await asyncio.wait_for(process.communicate(), self._timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise errors.TokenRefreshFailed(
                f"{self._name()} did not finish within {self._timeout:g}s"
            ) from None
        except BaseException:
            # Cancelled: do not leave the child running.
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        return self._token(process.returncode, stdout)

    def fetch_sync(self) -> Secret:
        try:
            done = subprocess.run(
                self._argv, stdin=subprocess.DEVNULL, capture_output=True,
                timeout=self._timeout, check=False,
            )
        except OSError as exc:
            raise errors.TokenRefreshFailed(
                f"{self._name()} could not start: {type(exc).__name__}"
            ) from None
        except subprocess.TimeoutExpired:
            # `from None`: TimeoutExpired carries the captured output.
            raise errors.TokenRefreshFailed(
                f"{self._name()} did not finish within {self._timeout:g}s"
            ) from None
        return self._token(done.returncode, done.stdout)


class TestTokenEndpoint(HttpTokenProvider):
    """``GET {base_url}/api/servermanage/testtoken?userid=<id>``; the user id is a secret."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, base_url: str, user_id: str) -> None:
        self._url = base_url.rstrip("/") + TEST_TOKEN_PATH
        self._user_id = user_id

    def token_request(self) -> httpx.Request:
        return httpx.Request("GET", self._url, params={"userid": self._user_id})

    def parse(self, response: httpx.Response) -> Secret:
        where = "test token endpoint"
        if not 200 <= response.status_code < 300:
            raise errors.TokenRefreshFailed(f"{where} answered HTTP {response.status_code}")
        text = response.content.decode("utf-8", errors="replace").strip()
        try:
            body: Any = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            # Not JSON: the bare token as text/plain.
            return _checked(text, where)
        token = _find_token(body, where)
        if token is None:
            raise errors.TokenRefreshFailed(f"{where}: no token in the answer")
        return _checked(token, where)


def _find_token(body: Any, where: str) -> str | None:
    """The token in any of the answer forms servers use, or None."""
    if isinstance(body, str):
        return body  # "<jwt>"
    if not isinstance(body, dict):
        return None
    if "code" in body:
        code = body["code"]
        if code not in (0, "0") or isinstance(code, bool):
            # The message is left out: it may echo the user id.
            raise errors.TokenRefreshFailed(f"{where} refused: code {str(code)[:20]}")
        data = body.get("data")
        if isinstance(data, str):
            return data  # {"code":0,"data":"<jwt>"}
        if isinstance(data, dict) and isinstance(data.get("token"), str):
            return str(data["token"])  # {"code":0,"data":{"token":"<jwt>"}}
    token = body.get("token")
    return token if isinstance(token, str) else None  # {"token":"<jwt>"}


def token_expired(response: httpx.Response) -> bool:
    """HTTP 401, or HTTP 200 with an envelope carrying code -1002 (read response)."""
    if response.status_code == 401:
        return True
    if response.status_code != 200:
        return False
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return False
    if not isinstance(body, dict):
        return False
    if "code" in body:
        return _is_expired_code(body["code"])
    return body.get("success") is False and _is_expired_code(body.get("errorCode"))


def _is_expired_code(code: object) -> bool:
    return isinstance(code, int) and not isinstance(code, bool) and code == EXPIRED_CODE


class BitzoomBearerAuth(MintsSecrets, httpx.Auth):
    """Sends the provider's token; on an expired answer gets a new one and re-sends once.

    One refresh at a time: a request that failed with a token somebody has already
    replaced just re-sends with the new one, so N expired requests cost one fetch. The
    sync and async flows use different locks; use one auth with one kind of client.
    Every token is reported (``MintsSecrets``) before it is sent.
    """

    requires_response_body = True

    def __init__(self, provider: TokenProvider) -> None:
        if not isinstance(provider, DirectTokenProvider | HttpTokenProvider):
            raise TypeError("provider must be a DirectTokenProvider or an HttpTokenProvider")
        self._provider = provider
        self._token: Secret | None = None
        self._async_locks = LoopLocks()
        self._thread_lock = threading.Lock()

    def _needs(self, stale: Secret | None) -> bool:
        """Whether the current token is missing or is the one that just failed."""
        return self._token is None or self._token == stale

    @staticmethod
    def _authorize(request: httpx.Request, token: Secret) -> None:
        request.headers["Authorization"] = f"Bearer {token.reveal()}"

    @staticmethod
    def _token_request(provider: HttpTokenProvider, request: httpx.Request) -> httpx.Request:
        token_request = provider.token_request()
        # The poller's per-request timeout applies to the token fetch as well.
        if "timeout" in request.extensions:
            token_request.extensions["timeout"] = request.extensions["timeout"]
        return token_request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        stale: Secret | None = None
        for attempt in range(2):
            fetched_over_http = False
            if self._needs(stale):
                async with self._async_locks.get():
                    # Checked again: whoever held the lock may have refreshed already.
                    if self._needs(stale):
                        provider = self._provider
                        if isinstance(provider, HttpTokenProvider):
                            answer = yield self._token_request(provider, request)
                            await answer.aread()
                            fetched_over_http = True
                            self._token = self.minted(provider.parse(answer))
                        else:
                            assert isinstance(provider, DirectTokenProvider)
                            self._token = self.minted(await provider.fetch())
            token = self._token
            assert token is not None
            if attempt and token == stale and not fetched_over_http:
                # Same token again (a fixed one): re-sending cannot help, and the last
                # answer the client saw is still the failed one, so stop here.
                return
            self._authorize(request, token)
            response = yield request
            await response.aread()
            if not token_expired(response):
                return
            stale = token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        stale: Secret | None = None
        for attempt in range(2):
            fetched_over_http = False
            if self._needs(stale):
                with self._thread_lock:
                    if self._needs(stale):
                        provider = self._provider
                        if isinstance(provider, HttpTokenProvider):
                            answer = yield self._token_request(provider, request)
                            answer.read()
                            fetched_over_http = True
                            self._token = self.minted(provider.parse(answer))
                        else:
                            assert isinstance(provider, DirectTokenProvider)
                            self._token = self.minted(provider.fetch_sync())
            token = self._token
            assert token is not None
            if attempt and token == stale and not fetched_over_http:
                return
            self._authorize(request, token)
            response = yield request
            response.read()
            if not token_expired(response):
                return
            stale = token
