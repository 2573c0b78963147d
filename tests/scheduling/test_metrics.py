"""The Prometheus endpoint: exact values after a few polls, and a real HTTP exchange."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from aggregator.model import Holding, Kind, PollRecord
from aggregator.polling.service import PollOutcome
from aggregator.scheduling.metrics import (
    CONTENT_TYPE,
    Metrics,
    escape_label,
    format_value,
    serve_metrics,
)
from aggregator.storage.writes import PollWriteResult

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
WRITTEN = PollWriteResult(poll_id=1, opened=0, closed=0)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def holding(asset: str) -> Holding:
    return Holding(asset, Kind.CRYPTO, Decimal("1.5"), Decimal("1.5"), Decimal("0"))


def record(account: str, source: str, error_kind: str | None = None, n_holdings: int = 2,
           finished: datetime = T0) -> PollRecord:
    return PollRecord(
        account=account,
        source=source,
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
        holdings=None if error_kind else [holding(f"A{i}") for i in range(n_holdings)],
        error_kind=error_kind,
        error_message="boom" if error_kind else None,
    )


def outcome(records: list[PollRecord], seconds: float,
            written: PollWriteResult | None = WRITTEN) -> PollOutcome:
    return PollOutcome(records[0].account, records, written, seconds,
                       None if written else "database is locked")


def unescape(value: str) -> str:
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse(text: str) -> tuple[dict[tuple[str, frozenset[tuple[str, str]]], str], dict[str, str]]:
    """Samples keyed by (name, labels), and the TYPE of every family. Fails on bad lines."""
    assert text.endswith("\n")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], str] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels: list[tuple[str, str]] = []
        rest = match.group(3) or ""
        while rest:
            label = LABEL.match(rest)
            assert label, f"bad labels in {line!r}"
            labels.append((label.group(1), unescape(label.group(2))))
            rest = rest[label.end():]
        key = (match.group(1), frozenset(labels))
        assert key not in samples, f"duplicate series {line!r}"
        samples[key] = match.group(4)
    return samples, types


def L(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


@pytest.fixture
def metrics() -> Metrics:
    m = Metrics({"alpha": "bitopro", "beta": "bitz", "idle": "pitrade"})
    m.record(outcome([record("alpha", "bitopro", n_holdings=3)], 0.07))
    m.record(outcome([record("alpha", "bitopro", n_holdings=2,
                             finished=T0 + timedelta(minutes=5))], 0.3))
    # beta: two retried failures, then ok; then a poll that fails for good.
    m.record(outcome([record("beta", "bitz", "timeout"), record("beta", "bitz", "server_error"),
                      record("beta", "bitz", n_holdings=5)], 12.0))
    m.record(outcome([record("beta", "bitz", "rate_limited"),
                      record("beta", "bitz", "bad_credentials",
                             finished=T0 + timedelta(minutes=9))], 61.0))
    return m


def test_render_exact_values(metrics: Metrics) -> None:
    samples, types = parse(metrics.render())
    assert types == {
        "aggregator_poll_duration_seconds": "histogram",
        "aggregator_polls_total": "counter",
        "aggregator_poll_attempts_total": "counter",
        "aggregator_last_success_timestamp_seconds": "gauge",
        "aggregator_holdings": "gauge",
        "aggregator_up": "gauge",
    }
    h = "aggregator_poll_duration_seconds"
    alpha = {"account": "alpha", "source": "bitopro"}
    beta = {"account": "beta", "source": "bitz"}
    expected_alpha = {"0.05": "0", "0.1": "1", "0.25": "1", "0.5": "2", "1": "2", "2.5": "2",
                      "5": "2", "10": "2", "30": "2", "60": "2", "+Inf": "2"}
    for le, value in expected_alpha.items():
        assert samples[(f"{h}_bucket", L(**alpha, le=le))] == value, le
    assert float(samples[(f"{h}_sum", L(**alpha))]) == pytest.approx(0.37)
    assert samples[(f"{h}_count", L(**alpha))] == "2"
    expected_beta = {"0.05": "0", "10": "0", "30": "1", "60": "1", "+Inf": "2"}
    for le, value in expected_beta.items():
        assert samples[(f"{h}_bucket", L(**beta, le=le))] == value, le
    assert samples[(f"{h}_sum", L(**beta))] == "73"
    assert samples[(f"{h}_count", L(**beta))] == "2"

    p = "aggregator_polls_total"
    assert samples[(p, L(**alpha, outcome="ok", error_kind=""))] == "2"
    assert samples[(p, L(**beta, outcome="ok", error_kind=""))] == "1"
    assert samples[(p, L(**beta, outcome="failed", error_kind="bad_credentials"))] == "1"

    a = "aggregator_poll_attempts_total"
    for kind in ("timeout", "server_error", "rate_limited", "bad_credentials"):
        assert samples[(a, L(**beta, error_kind=kind))] == "1"

    g = "aggregator_last_success_timestamp_seconds"
    assert float(samples[(g, L(**alpha))]) == (T0 + timedelta(minutes=5)).timestamp()
    assert float(samples[(g, L(**beta))]) == T0.timestamp()
    assert samples[("aggregator_holdings", L(**alpha))] == "2"
    assert samples[("aggregator_holdings", L(**beta))] == "5"
    assert samples[("aggregator_up", frozenset())] == "1"

    # An account never polled yet: zeroed histogram and ok counter, no gauges.
    idle = {"account": "idle", "source": "pitrade"}
    assert samples[(f"{h}_count", L(**idle))] == "0"
    assert samples[(f"{h}_bucket", L(**idle, le="+Inf"))] == "0"
    assert samples[(p, L(**idle, outcome="ok", error_kind=""))] == "0"
    assert (g, L(**idle)) not in samples
    assert ("aggregator_holdings", L(**idle)) not in samples
    # Nothing else: every sample is one of the above families.
    families = {name for name, _ in samples}
    assert families == {f"{h}_bucket", f"{h}_sum", f"{h}_count", p, a, g,
                        "aggregator_holdings", "aggregator_up"}


def test_histogram_buckets_are_cumulative(metrics: Metrics) -> None:
    samples, _ = parse(metrics.render())
    bounds = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf")
    for account, source in (("alpha", "bitopro"), ("beta", "bitz"), ("idle", "pitrade")):
        buckets = [(labels, v) for (name, labels), v in samples.items()
                   if name == "aggregator_poll_duration_seconds_bucket"
                   and ("account", account) in labels]
        assert len(buckets) == len(bounds)
        values = [int(samples[("aggregator_poll_duration_seconds_bucket",
                               L(account=account, source=source, le=le))]) for le in bounds]
        assert values == sorted(values)


def test_storage_failure_counts_as_failed() -> None:
    m = Metrics({"alpha": "bitopro"})
    m.record(outcome([record("alpha", "bitopro")], 0.2, written=None))
    samples, _ = parse(m.render())
    assert samples[("aggregator_polls_total",
                    L(account="alpha", source="bitopro", outcome="failed",
                      error_kind="storage"))] == "1"
    assert samples[("aggregator_polls_total",
                    L(account="alpha", source="bitopro", outcome="ok", error_kind=""))] == "0"
    assert not any(name == "aggregator_last_success_timestamp_seconds" for name, _ in samples)


def test_unknown_account_uses_the_record_source() -> None:
    m = Metrics({})
    m.record(outcome([record("late", "bitzoom")], 0.01))
    samples, _ = parse(m.render())
    assert samples[("aggregator_holdings", L(account="late", source="bitzoom"))] == "2"


def test_label_values_are_escaped() -> None:
    odd = 'we"ird\\name\nx'
    assert escape_label(odd) == 'we\\"ird\\\\name\\nx'
    m = Metrics({odd: "bitz"})
    m.record(outcome([record(odd, "bitz")], 0.01))
    text = m.render()
    assert "\nx" not in text.replace("\\n", "")  # no raw newline inside a label
    samples, _ = parse(text)
    assert samples[("aggregator_holdings", L(account=odd, source="bitz"))] == "2"


def test_format_value() -> None:
    assert format_value(1.0) == "1"
    assert format_value(0.05) == "0.05"
    assert format_value(float("inf")) == "+Inf"
    assert format_value(float("-inf")) == "-Inf"
    assert format_value(float("nan")) == "NaN"
    assert format_value(1714564800.25) == "1714564800.25"


async def test_http_get_metrics(metrics: Metrics) -> None:
    server = await serve_metrics(metrics, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"] == CONTENT_TYPE
            assert response.text == metrics.render()
            samples, _ = parse(response.text)
            assert samples[("aggregator_up", frozenset())] == "1"

            # The endpoint shows new polls as they are recorded.
            metrics.record(outcome([record("alpha", "bitopro", n_holdings=7)], 0.01))
            samples, _ = parse((await client.get("/metrics?x=1")).text)
            assert samples[("aggregator_holdings",
                            L(account="alpha", source="bitopro"))] == "7"

            head = await client.head("/metrics")
            assert head.status_code == 200 and head.content == b""
            for method, path in (("GET", "/"), ("GET", "/metricsx"), ("POST", "/metrics"),
                                 ("GET", "/favicon.ico")):
                assert (await client.request(method, path)).status_code == 404, path
    finally:
        server.close()
        await server.wait_closed()


async def raw_exchange(port: int, data: bytes, close_write: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if close_write:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_garbage_input_does_not_hurt(metrics: Metrics) -> None:
    server = await serve_metrics(metrics, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await raw_exchange(port, b"\x00\xff\xfe garbage\r\n\r\n")).startswith(
            b"HTTP/1.0 400 ")
        assert await raw_exchange(port, b"") == b""
        assert await raw_exchange(port, b"GET /metrics HTTP/1.0\r\n") == b""  # cut short
        assert await raw_exchange(port, b"A" * 100_000) == b""  # overlong line
        headers = b"".join(b"X-H: %d\r\n" % i for i in range(150))  # too many
        assert (await raw_exchange(port, b"GET /metrics HTTP/1.0\r\n" + headers + b"\r\n")
                ).startswith(b"HTTP/1.0 400 ")
        # A plain HTTP/1.0 request without a Host header, LF line endings.
        answer = await raw_exchange(port, b"GET /metrics HTTP/1.0\n\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200 OK")
        assert b"Connection: close" in head
        assert body.decode() == metrics.render()
        # Still serving after all that.
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert response.status_code == 200
    finally:
        server.close()
        await server.wait_closed()


async def test_slow_client_is_dropped(monkeypatch: pytest.MonkeyPatch,
                                      metrics: Metrics) -> None:
    monkeypatch.setattr("aggregator.scheduling.metrics.REQUEST_TIMEOUT", 0.2)
    server = await serve_metrics(metrics, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metr")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
