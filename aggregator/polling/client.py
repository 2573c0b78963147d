"""The one place that decides how HTTP requests are sent (transport, limits, headers)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from aggregator import __version__

USER_AGENT = f"aggregator/{__version__}"
TRANSPORTS = ("httpx", "aiohttp")
# Requests in flight at once. Callers must not queue more than this inside httpx: its
# connection pool costs O(waiting x connections) per step (bench/daemon_scale.py: 38 ms
# of CPU per poll at 1,000 accounts with 100 connections, 6 ms with 32), and a request
# signed while queued goes out stale.
MAX_CONNECTIONS = 32
# One host may take at most this many of them: a dead exchange holding its requests until
# they time out never starves the accounts on other hosts.
MAX_PER_HOST = 24


class RequestSlots:
    """Admission to the HTTP client: ``total`` requests at once, ``per_host`` per host."""

    def __init__(self, total: int = MAX_CONNECTIONS, per_host: int = MAX_PER_HOST) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_host = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}

    @contextlib.asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        # The host's slot first: requests queued for a saturated host hold no shared slot.
        gate = self._hosts.setdefault(host, asyncio.Semaphore(self._per_host))
        async with gate, self._total:
            yield


def make_client(max_connections: int = MAX_CONNECTIONS, transport: str = "httpx"
                ) -> httpx.AsyncClient:
    """The shared async client; per-request timeouts come from each account.

    ``transport`` "aiohttp" needs the optional httpx-aiohttp package; bench/poll_cost.py
    measures both.
    """
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max_connections)
    chosen: httpx.AsyncBaseTransport | None = None
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        chosen = AiohttpTransport(limits=limits)
    elif transport != "httpx":
        raise ValueError(f"unknown transport {transport!r}; known: {', '.join(TRANSPORTS)}")
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        limits=limits,
        transport=chosen,
        # Exchanges redirect only to break something (e.g. a login page): never follow.
        follow_redirects=False,
        # Proxies from the environment are honoured as usual (trust_env), certificates
        # are verified.
        timeout=httpx.Timeout(30.0),
    )
