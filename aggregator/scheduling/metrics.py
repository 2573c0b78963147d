"""An optional Prometheus endpoint: polls, host holds, the spool, the database, the process.

The figures live in a ``prometheus_client`` registry made for the daemon (not the
library's global one) with its process, platform and GC collectors. They are served by a
small HTTP server on the daemon's event loop rather than by ``prometheus_client``'s own
threaded one, which reads a request with no time or size limit on a thread per client:
here a request must arrive within ``REQUEST_TIMEOUT`` and ``MAX_LINE``/``MAX_HEADERS``,
the answer must be taken within the same time, at most ``MAX_CLIENTS`` are served at once,
and the page is rendered in a worker thread, so neither a slow client nor a large fleet
holds up a poll. Labels carry account, source and host names only, never anything from a
credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from aggregator.polling.ratelimit import RateLimits

if TYPE_CHECKING:
    from aggregator.polling.service import PollOutcome
    from aggregator.storage.writer import Health

log = logging.getLogger("aggregator.metrics")

# Our counters start with the process (process_start_time_seconds says when): a _created
# series beside each would only double the page.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# What generate_latest writes: the text format 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"

# How long a client may take to send its request and take the answer, how much it may
# send, and how many are served at once (the others are closed at once).
REQUEST_TIMEOUT = 5.0
MAX_LINE = 8192
MAX_HEADERS = 100
MAX_CLIENTS = 8

# The error kind of a poll whose answer was fine but could not be stored.
STORAGE_ERROR = "storage"


class Metrics:
    """What the daemon did so far, for Prometheus.

    ``accounts`` maps every configured account to its source, so that each account has
    its duration histogram and ok counter (at zero) from the start; ``limits`` gives the
    host holds to show. The spool and database figures are set by whoever knows them.
    """

    def __init__(self, accounts: Mapping[str, str], limits: RateLimits | None = None) -> None:
        self._sources = dict(accounts)
        self._limits = limits
        self._oldest: float | None = None
        self._replayed_count = 0
        self._database_up: bool | None = None
        self.registry = registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=registry)
        per_account = ("account", "source")
        self._durations = Histogram(
            "aggregator_poll_duration_seconds",
            "Wall time of one poll including retries and the database write.",
            per_account, buckets=BUCKETS, registry=registry)
        self._polls = Counter(
            "aggregator_polls", "Polls by outcome; error_kind is that of the final attempt.",
            (*per_account, "outcome", "error_kind"), registry=registry)
        self._attempts = Counter(
            "aggregator_poll_attempts", "Failed attempts by error kind, retried or not.",
            (*per_account, "error_kind"), registry=registry)
        self._last_success = Gauge(
            "aggregator_last_success_timestamp_seconds",
            "When the last successful poll of the account finished.", per_account,
            registry=registry)
        self._holdings = Gauge(
            "aggregator_holdings", "Number of holdings in the last successful poll.",
            per_account, registry=registry)
        Gauge("aggregator_up", "1 while the daemon runs.", registry=registry).set(1)
        self._spool_polls = Gauge(
            "aggregator_spool_polls", "Polls waiting in the spool for the database.",
            registry=registry)
        self._spool_bytes = Gauge(
            "aggregator_spool_bytes", "Size of the spool.", registry=registry)
        self._replayed = Counter(
            "aggregator_spool_replayed", "Spooled polls written to the database since start-up.",
            registry=registry)
        registry.register(_Live(self))
        for account, source in self._sources.items():
            self._durations.labels(account, source)
            self._polls.labels(account, source, "ok", "")

    def record(self, outcome: PollOutcome) -> None:
        """Count one finished poll (all its attempts)."""
        final = outcome.final
        labels = (outcome.account, self._sources.get(outcome.account, final.source))
        self._durations.labels(*labels).observe(max(outcome.seconds, 0.0))
        for attempt in outcome.records:
            if attempt.error_kind is not None:
                self._attempts.labels(*labels, attempt.error_kind).inc()
        if outcome.ok:
            self._polls.labels(*labels, "ok", "").inc()
            self._last_success.labels(*labels).set(final.finished_at.timestamp())
            self._holdings.labels(*labels).set(len(final.holdings or ()))
        else:
            self._polls.labels(*labels, "failed", final.error_kind or STORAGE_ERROR).inc()

    def spool(self, *, polls: int, bytes_: int, oldest: datetime | None) -> None:
        """What the spool holds now; ``oldest``: the start of its oldest poll (None: empty)."""
        self._spool_polls.set(polls)
        self._spool_bytes.set(bytes_)
        self._oldest = None if oldest is None else oldest.timestamp()

    def replayed(self, n: int) -> None:
        """``n`` spooled polls reached the database."""
        self._replayed.inc(n)
        self._replayed_count += n

    def database_up(self, up: bool) -> None:
        """Whether the database takes writes (the series is absent until first told)."""
        self._database_up = up

    def storage(self, health: Health) -> None:
        """All of the above from the writer's health (its ``replayed`` counts since start)."""
        self.database_up(health.database_up)
        self.spool(polls=health.spooled, bytes_=health.spool_bytes, oldest=health.oldest)
        if health.replayed > self._replayed_count:
            self.replayed(health.replayed - self._replayed_count)

    def render(self) -> str:
        """The text exposition format 0.0.4."""
        return prometheus_client.generate_latest(self.registry).decode("utf-8")


class _Live:
    """The figures read at scrape time: host holds, the oldest spooled poll, the database."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m = self._metrics
        if m._oldest is not None:
            yield GaugeMetricFamily(
                "aggregator_spool_oldest_timestamp_seconds",
                "When the oldest poll still in the spool started (absent: the spool is empty).",
                value=m._oldest)
        if m._database_up is not None:
            yield GaugeMetricFamily(
                "aggregator_database_up", "1 while the database takes writes, else 0.",
                value=1.0 if m._database_up else 0.0)
        if m._limits is None:
            return
        labels = ("source", "host")
        backoff = GaugeMetricFamily(
            "aggregator_host_backoff_seconds",
            "Seconds until a host on hold after a rate limit may be asked again (0: not held).",
            labels=labels)
        holds = CounterMetricFamily(
            "aggregator_host_holds", "Holds of a host after a rate limit, since start-up.",
            labels=labels)
        for hold in m._limits.holds():
            backoff.add_metric([hold.source, hold.host], hold.remaining())
            holds.add_metric([hold.source, hold.host], hold.holds)
        yield backoff
        yield holds


def _response(status: str, content_type: str, body: bytes, head_only: bool = False) -> bytes:
    lines = [
        f"HTTP/1.0 {status}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("ascii") + (b"" if head_only else body)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """The request's method and path, after reading its headers; None if it is garbage."""
    line = await reader.readuntil(b"\n")
    parts = line.decode("latin-1").split()
    for _ in range(MAX_HEADERS):
        header = await reader.readuntil(b"\n")
        if header in (b"\r\n", b"\n"):
            break
    else:
        return None
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    return parts[0], parts[1]


async def _answer(metrics: Metrics, reader: asyncio.StreamReader) -> bytes | None:
    """The whole answer to one request; None to just close the connection."""
    try:
        request = await _read_request(reader)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return None
    if request is None:
        return _response("400 Bad Request", "text/plain; charset=utf-8", b"bad request\n")
    method, target = request
    if target.split("?", 1)[0] != PATH or method not in ("GET", "HEAD"):
        return _response("404 Not Found", "text/plain; charset=utf-8", b"not found\n")
    body = (await asyncio.to_thread(metrics.render)).encode("utf-8")
    return _response("200 OK", CONTENT_TYPE, body, head_only=method == "HEAD")


async def serve_metrics(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` on ``host:port`` until the returned server is closed.

    One request per connection, answered and closed (HTTP/1.0 style). Any other path or
    method gets 404; a request that is not HTTP gets 400; a slow or oversized one, or
    one beyond ``MAX_CLIENTS`` at once, is dropped. Nothing a client sends can stop the
    server.
    """
    active = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active
        if active >= MAX_CLIENTS:
            writer.close()
            return
        active += 1
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                answer = await _answer(metrics, reader)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # the loop is closing: nobody awaits this task, so nothing to pass it on to
        except Exception:  # never let one client's request take the daemon down
            log.exception("metrics: error answering a request")
        finally:
            active -= 1
            if writer.transport.get_write_buffer_size():
                # A client that does not read would keep a closing connection, and the
                # answer it did not take, open for good.
                writer.transport.abort()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port, limit=MAX_LINE)
