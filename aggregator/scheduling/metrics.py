"""An optional Prometheus endpoint: poll durations, outcomes, last success, holdings.

Standard library only: the text exposition format 0.0.4 is rendered by hand and served
by a minimal HTTP/1.0-style server on the daemon's event loop (loopback by default).
Labels carry account and source names only, never anything from a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aggregator.polling.service import PollOutcome

log = logging.getLogger("aggregator.metrics")

BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"

# How long a client may take to send its request, and how much it may send.
REQUEST_TIMEOUT = 5.0
MAX_LINE = 8192
MAX_HEADERS = 100

# The error kind of a poll whose answer was fine but could not be stored.
STORAGE_ERROR = "storage"


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value (or ``le`` bound): integers without a fraction, Go-style infinities."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{escape_label(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1


class Metrics:
    """What the daemon's polls did so far, rendered for Prometheus.

    ``accounts`` maps every configured account to its source, so that each account has
    its duration histogram and ok counter (at zero) from the start.
    """

    def __init__(self, accounts: Mapping[str, str]) -> None:
        self._sources = dict(accounts)
        self._durations: dict[tuple[str, str], _Histogram] = {}
        self._polls: dict[tuple[str, str, str, str], int] = {}
        self._attempts: dict[tuple[str, str, str], int] = {}
        self._last_success: dict[tuple[str, str], float] = {}
        self._holdings: dict[tuple[str, str], int] = {}
        for account, source in self._sources.items():
            self._durations[(account, source)] = _Histogram()
            self._polls[(account, source, "ok", "")] = 0

    def record(self, outcome: PollOutcome) -> None:
        """Count one finished poll (all its attempts)."""
        final = outcome.final
        source = self._sources.get(outcome.account, final.source)
        key = (outcome.account, source)
        self._durations.setdefault(key, _Histogram()).observe(max(outcome.seconds, 0.0))
        for attempt in outcome.records:
            if attempt.error_kind is not None:
                kind_key = (*key, attempt.error_kind)
                self._attempts[kind_key] = self._attempts.get(kind_key, 0) + 1
        if outcome.ok:
            poll_key = (*key, "ok", "")
            self._last_success[key] = final.finished_at.timestamp()
            self._holdings[key] = len(final.holdings or ())
        else:
            poll_key = (*key, "failed", final.error_kind or STORAGE_ERROR)
        self._polls[poll_key] = self._polls.get(poll_key, 0) + 1

    def render(self) -> str:
        """The text exposition format 0.0.4, ending in a newline."""
        out: list[str] = []

        def header(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        def sample(name: str, labels: Iterable[tuple[str, str]], value: float) -> None:
            out.append(f"{name}{_labels(labels)} {format_value(value)}")

        name = "aggregator_poll_duration_seconds"
        header(name, "histogram", "Wall time of one poll including retries and the database write.")
        for (account, source), hist in sorted(self._durations.items()):
            base = [("account", account), ("source", source)]
            for bound, count in zip(BUCKETS, hist.counts, strict=True):
                sample(f"{name}_bucket", [*base, ("le", format_value(bound))], count)
            sample(f"{name}_bucket", [*base, ("le", "+Inf")], hist.count)
            sample(f"{name}_sum", base, hist.total)
            sample(f"{name}_count", base, hist.count)

        name = "aggregator_polls_total"
        header(name, "counter", "Polls by outcome; error_kind is that of the final attempt.")
        for (account, source, outcome, kind), value in sorted(self._polls.items()):
            sample(name, [("account", account), ("source", source), ("outcome", outcome),
                          ("error_kind", kind)], value)

        name = "aggregator_poll_attempts_total"
        header(name, "counter", "Failed attempts by error kind, retried or not.")
        for (account, source, kind), value in sorted(self._attempts.items()):
            sample(name, [("account", account), ("source", source), ("error_kind", kind)],
                   value)

        name = "aggregator_last_success_timestamp_seconds"
        header(name, "gauge", "When the last successful poll of the account finished.")
        for (account, source), when in sorted(self._last_success.items()):
            sample(name, [("account", account), ("source", source)], when)

        name = "aggregator_holdings"
        header(name, "gauge", "Number of holdings in the last successful poll.")
        for (account, source), count in sorted(self._holdings.items()):
            sample(name, [("account", account), ("source", source)], count)

        header("aggregator_up", "gauge", "1 while the daemon runs.")
        sample("aggregator_up", (), 1)
        return "\n".join(out) + "\n"


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


async def serve_metrics(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` on ``host:port`` until the returned server is closed.

    One request per connection, answered and closed (HTTP/1.0 style). Any other path or
    method gets 404; a request that is not HTTP gets 400; a slow or oversized one is
    dropped. Nothing a client sends can stop the server.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    request = await _read_request(reader)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError, ConnectionError):
                return
            if request is None:
                answer = _response("400 Bad Request", "text/plain; charset=utf-8",
                                   b"bad request\n")
            else:
                method, target = request
                path = target.split("?", 1)[0]
                if path == PATH and method in ("GET", "HEAD"):
                    body = metrics.render().encode("utf-8")
                    answer = _response("200 OK", CONTENT_TYPE, body, head_only=method == "HEAD")
                else:
                    answer = _response("404 Not Found", "text/plain; charset=utf-8",
                                       b"not found\n")
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        except Exception:  # never let one client's request take the daemon down
            log.exception("metrics: error answering a request")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port, limit=MAX_LINE)
