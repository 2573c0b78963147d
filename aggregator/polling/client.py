"""The one place that decides how HTTP requests are sent (transport, limits, headers)."""

from __future__ import annotations

import httpx

from aggregator import __version__

USER_AGENT = f"aggregator/{__version__}"


def make_client(max_connections: int = 100) -> httpx.AsyncClient:
    """The shared async client; per-request timeouts come from each account."""
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        # Exchanges redirect only to break something (e.g. a login page): never follow.
        follow_redirects=False,
        # Proxies from the environment are honoured as usual (trust_env), certificates
        # are verified.
        timeout=httpx.Timeout(30.0),
    )
