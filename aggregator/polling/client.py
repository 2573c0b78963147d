"""The one place that decides how HTTP requests are sent (transport, limits, headers)."""

from __future__ import annotations

import httpx

from aggregator import __version__

USER_AGENT = f"aggregator/{__version__}"
TRANSPORTS = ("httpx", "aiohttp")
# Requests in flight at once. Callers must not queue more than this inside httpx: its
# connection pool costs O(waiting x connections) per step (bench/daemon_scale.py: 38 ms
# of CPU per poll at 1,000 accounts with 100 connections, 6 ms with 32), and a request
# signed while queued goes out stale.
MAX_CONNECTIONS = 32


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
