"""The Prometheus endpoint: exact values after a few polls, and a real HTTP exchange."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from aggregator.model import Holding, Kind, PollRecord
from aggregator.polling.ratelimit import RateLimits
from aggregator.polling.service import PollOutcome
from aggregator.scheduling.metrics import CONTENT_TYPE, Metrics, serve_metrics
from aggregator.storage.writer import Health, Stored
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
    stored = Stored(written, "database") if written else Stored(None, "lost", "disk full")
    return PollOutcome(records[0].account, records, stored, seconds)


def unescape(value: str) -> str:
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """Samples keyed by (name, labels), and the TYPE of every family. Fails on bad lines.

    Values are numbers and ``le`` bounds are written as ``1``, ``0.05``, ``+Inf``, however
    the exposition spells them (prometheus_client writes ``1.0``).
    """
    assert text.endswith("\n")
    samples: Samples = {}
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
            name, value = label.group(1), unescape(label.group(2))
            if name == "le" and value != "+Inf":
                value = f"{float(value):g}"
            labels.append((name, value))
            rest = rest[label.end():]
        key = (match.group(1), frozenset(labels))
        assert key not in samples, f"duplicate series {line!r}"
        samples[key] = float(match.group(4))
    return samples, types


def ours(text: str) -> list[str]:
    """The lines of our own families (the process's figures change from one page to the next)."""
    return [line for line in text.splitlines()
            if line.startswith(("aggregator_", "# HELP aggregator_", "# TYPE aggregator_"))]


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
    assert {name: kind for name, kind in types.items() if name.startswith("aggregator_")} == {
        "aggregator_poll_duration_seconds": "histogram",
        "aggregator_polls_total": "counter",
        "aggregator_poll_attempts_total": "counter",
        "aggregator_last_success_timestamp_seconds": "gauge",
        "aggregator_holdings": "gauge",
        "aggregator_up": "gauge",
        "aggregator_spool_polls": "gauge",
        "aggregator_spool_bytes": "gauge",
        "aggregator_spool_replayed_total": "counter",
    }
    h = "aggregator_poll_duration_seconds"
    alpha = {"account": "alpha", "source": "bitopro"}
    beta = {"account": "beta", "source": "bitz"}
    expected_alpha = {"0.05": 0, "0.1": 1, "0.25": 1, "0.5": 2, "1": 2, "2.5": 2,
                      "5": 2, "10": 2, "30": 2, "60": 2, "+Inf": 2}
    for le, value in expected_alpha.items():
        assert samples[(f"{h}_bucket", L(**alpha, le=le))] == value, le
    assert samples[(f"{h}_sum", L(**alpha))] == pytest.approx(0.37)
    assert samples[(f"{h}_count", L(**alpha))] == 2
    expected_beta = {"0.05": 0, "10": 0, "30": 1, "60": 1, "+Inf": 2}
    for le, value in expected_beta.items():
        assert samples[(f"{h}_bucket", L(**beta, le=le))] == value, le
    assert samples[(f"{h}_sum", L(**beta))] == 73
    assert samples[(f"{h}_count", L(**beta))] == 2

    p = "aggregator_polls_total"
    assert samples[(p, L(**alpha, outcome="ok", error_kind=""))] == 2
    assert samples[(p, L(**beta, outcome="ok", error_kind=""))] == 1
    assert samples[(p, L(**beta, outcome="failed", error_kind="bad_credentials"))] == 1

    a = "aggregator_poll_attempts_total"
    for kind in ("timeout", "server_error", "rate_limited", "bad_credentials"):
        assert samples[(a, L(**beta, error_kind=kind))] == 1

    g = "aggregator_last_success_timestamp_seconds"
    assert samples[(g, L(**alpha))] == (T0 + timedelta(minutes=5)).timestamp()
    assert samples[(g, L(**beta))] == T0.timestamp()
    assert samples[("aggregator_holdings", L(**alpha))] == 2
    assert samples[("aggregator_holdings", L(**beta))] == 5
    assert samples[("aggregator_up", frozenset())] == 1

    # An account never polled yet: zeroed histogram and ok counter, no gauges.
    idle = {"account": "idle", "source": "pitrade"}
    assert samples[(f"{h}_count", L(**idle))] == 0
    assert samples[(f"{h}_bucket", L(**idle, le="+Inf"))] == 0
    assert samples[(p, L(**idle, outcome="ok", error_kind=""))] == 0
    assert (g, L(**idle)) not in samples
    assert ("aggregator_holdings", L(**idle)) not in samples
    # Nothing spooled yet; the database's state and the oldest spooled poll unknown.
    assert samples[("aggregator_spool_polls", frozenset())] == 0
    assert samples[("aggregator_spool_bytes", frozenset())] == 0
    assert samples[("aggregator_spool_replayed_total", frozenset())] == 0
    # Nothing else of ours: every sample is one of the above families.
    families = {name for name, _ in samples if name.startswith("aggregator_")}
    assert families == {f"{h}_bucket", f"{h}_sum", f"{h}_count", p, a, g,
                        "aggregator_holdings", "aggregator_up", "aggregator_spool_polls",
                        "aggregator_spool_bytes", "aggregator_spool_replayed_total"}
    # And the process's own figures, from prometheus_client's collectors.
    assert samples[("process_resident_memory_bytes", frozenset())] > 10 * 2**20
    assert samples[("process_start_time_seconds", frozenset())] > T0.timestamp()
    assert any(name == "python_info" for name, _ in samples)


def test_histogram_buckets_are_cumulative(metrics: Metrics) -> None:
    samples, _ = parse(metrics.render())
    bounds = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf")
    for account, source in (("alpha", "bitopro"), ("beta", "bitz"), ("idle", "pitrade")):
        buckets = [(labels, v) for (name, labels), v in samples.items()
                   if name == "aggregator_poll_duration_seconds_bucket"
                   and ("account", account) in labels]
        assert len(buckets) == len(bounds)
        values = [samples[("aggregator_poll_duration_seconds_bucket",
                           L(account=account, source=source, le=le))] for le in bounds]
        assert values == sorted(values)


def test_storage_failure_counts_as_failed() -> None:
    m = Metrics({"alpha": "bitopro"})
    m.record(outcome([record("alpha", "bitopro")], 0.2, written=None))
    samples, _ = parse(m.render())
    assert samples[("aggregator_polls_total",
                    L(account="alpha", source="bitopro", outcome="failed",
                      error_kind="storage"))] == 1
    assert samples[("aggregator_polls_total",
                    L(account="alpha", source="bitopro", outcome="ok", error_kind=""))] == 0
    assert not any(name == "aggregator_last_success_timestamp_seconds" for name, _ in samples)


def test_unknown_account_uses_the_record_source() -> None:
    m = Metrics({})
    m.record(outcome([record("late", "bitzoom")], 0.01))
    samples, _ = parse(m.render())
    assert samples[("aggregator_holdings", L(account="late", source="bitzoom"))] == 2


def test_label_values_are_escaped() -> None:
    odd = 'we"ird\\name\nx'
    m = Metrics({odd: "bitz"})
    m.record(outcome([record(odd, "bitz")], 0.01))
    text = m.render()
    assert 'account="we\\"ird\\\\name\\nx"' in text
    assert "\nx" not in text.replace("\\n", "")  # no raw newline inside a label
    samples, _ = parse(text)
    assert samples[("aggregator_holdings", L(account=odd, source="bitz"))] == 2


async def test_http_get_metrics(metrics: Metrics) -> None:
    server = await serve_metrics(metrics, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"] == CONTENT_TYPE
            assert ours(response.text) == ours(metrics.render())
            samples, _ = parse(response.text)
            assert samples[("aggregator_up", frozenset())] == 1

            # The endpoint shows new polls as they are recorded.
            metrics.record(outcome([record("alpha", "bitopro", n_holdings=7)], 0.01))
            samples, _ = parse((await client.get("/metrics?x=1")).text)
            assert samples[("aggregator_holdings",
                            L(account="alpha", source="bitopro"))] == 7

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
        assert ours(body.decode()) == ours(metrics.render())
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


def test_spool_and_database_figures() -> None:
    m = Metrics({"alpha": "bitopro"})
    samples, _ = parse(m.render())
    assert ("aggregator_database_up", frozenset()) not in samples  # unknown until told
    assert ("aggregator_spool_oldest_timestamp_seconds", frozenset()) not in samples
    m.database_up(False)
    m.spool(polls=3, bytes_=4096, oldest=T0)
    samples, types = parse(m.render())
    assert samples[("aggregator_database_up", frozenset())] == 0
    assert samples[("aggregator_spool_polls", frozenset())] == 3
    assert samples[("aggregator_spool_bytes", frozenset())] == 4096
    assert samples[("aggregator_spool_oldest_timestamp_seconds", frozenset())] == T0.timestamp()
    assert types["aggregator_database_up"] == "gauge"
    assert types["aggregator_spool_oldest_timestamp_seconds"] == "gauge"
    m.database_up(True)
    m.replayed(3)
    m.replayed(2)
    m.spool(polls=0, bytes_=0, oldest=None)
    samples, _ = parse(m.render())
    assert samples[("aggregator_database_up", frozenset())] == 1
    assert samples[("aggregator_spool_replayed_total", frozenset())] == 5
    assert samples[("aggregator_spool_polls", frozenset())] == 0
    assert ("aggregator_spool_oldest_timestamp_seconds", frozenset()) not in samples


def test_host_holds() -> None:
    limits = RateLimits()
    held = limits.hold("bitzoom", "https://api.bitzoom.com")
    limits.hold("bitzoom", "https://API.bitzoom.com/")  # the same host
    limits.hold("bitz", "https://apiv2.bitz.com")
    held.trip(30.0)
    held.trip(20.0)  # an answer to a request sent before the hold: no new hold
    samples, types = parse(Metrics({}, limits).render())
    assert types["aggregator_host_backoff_seconds"] == "gauge"
    assert types["aggregator_host_holds_total"] == "counter"
    zoom = L(source="bitzoom", host="api.bitzoom.com")
    bitz = L(source="bitz", host="apiv2.bitz.com")
    assert 29 < samples[("aggregator_host_backoff_seconds", zoom)] <= 30
    assert samples[("aggregator_host_holds_total", zoom)] == 1
    assert samples[("aggregator_host_backoff_seconds", bitz)] == 0
    assert samples[("aggregator_host_holds_total", bitz)] == 0
    assert len([k for k in samples if k[0] == "aggregator_host_holds_total"]) == 2


def test_each_daemon_has_its_own_registry() -> None:
    # Two at once, as in a test process: the library's global registry would refuse the
    # second set of names.
    a, b = Metrics({"alpha": "bitopro"}), Metrics({"alpha": "bitopro"})
    a.record(outcome([record("alpha", "bitopro")], 0.2))
    key = ("aggregator_polls_total", L(account="alpha", source="bitopro", outcome="ok",
                                       error_kind=""))
    assert parse(a.render())[0][key] == 1
    assert parse(b.render())[0][key] == 0


async def test_clients_beyond_the_limit_are_closed(monkeypatch: pytest.MonkeyPatch,
                                                   metrics: Metrics) -> None:
    monkeypatch.setattr("aggregator.scheduling.metrics.REQUEST_TIMEOUT", 1.0)
    monkeypatch.setattr("aggregator.scheduling.metrics.MAX_CLIENTS", 3)
    server = await serve_metrics(metrics, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    idle = []
    try:
        for _ in range(3):  # connected, sending nothing
            idle.append(await asyncio.open_connection("127.0.0.1", port))
        await asyncio.sleep(0.1)
        began = asyncio.get_running_loop().time()
        # Closed unread: an end of file or, as the kernel sees fit, a reset.
        with contextlib.suppress(ConnectionResetError):
            assert await raw_exchange(port, b"GET /metrics HTTP/1.0\r\n\r\n") == b""
        assert asyncio.get_running_loop().time() - began < 0.5  # closed at once
        for reader, _ in idle:  # the idle ones are dropped at the time limit ...
            assert await asyncio.wait_for(reader.read(), 5) == b""
        answer = await raw_exchange(port, b"GET /metrics HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.0 200 OK")  # ... and then it serves again
    finally:
        for _, writer in idle:
            writer.close()
        server.close()
        await server.wait_closed()


def test_storage_health_sets_every_figure() -> None:
    m = Metrics({})
    down = Health(database_up=False, down_since=T0, reason="frozen", spooled=2, spool_bytes=900,
                  in_memory=0, oldest=T0, replayed=0, lost=0)
    m.storage(down)
    back = dataclasses.replace(down, database_up=True, down_since=None, spooled=0,
                               spool_bytes=0, oldest=None, replayed=2)
    m.storage(back)
    m.storage(back)  # told twice: still 2 replayed
    samples, _ = parse(m.render())
    assert samples[("aggregator_database_up", frozenset())] == 1
    assert samples[("aggregator_spool_replayed_total", frozenset())] == 2
    assert samples[("aggregator_spool_polls", frozenset())] == 0
    assert ("aggregator_spool_oldest_timestamp_seconds", frozenset()) not in samples
    m.storage(down)
    assert parse(m.render())[0][("aggregator_database_up", frozenset())] == 0


def test_the_readme_names_only_metrics_that_exist() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    named = set(re.findall(r"`(aggregator_\w+)`", readme))
    assert named, "the README names no metric"
    limits = RateLimits()
    limits.hold("bitz", "https://apiv2.bitz.com")
    m = Metrics({"alpha": "bitopro"}, limits)
    m.database_up(True)
    m.spool(polls=1, bytes_=1, oldest=T0)
    exported = {name for name, _ in parse(m.render())[0]}
    assert named <= exported
